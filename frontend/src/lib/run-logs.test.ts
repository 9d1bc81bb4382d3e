import { describe, expect, it } from 'vitest';
import { formatBytes, lastSeq, levelRank, lineTime, mergeLines, visibleLines, type LogLine } from './run-logs';

function line(seq: number, message = `line ${seq}`, level: LogLine['level'] = 'info', device_id: string | null = null): LogLine {
  return { seq, at: '2026-03-01T08:00:00.250+00:00', level, message, device_id, test_case_id: null };
}

describe('visibleLines', () => {
  const lines = [line(1, 'run started'), line(2, 'Relay engaged', 'warning', 'd1'), line(3, 'boot', 'debug', 'd2'), line(4, 'broke', 'error', 'd2')];

  it('shows a device its own lines and the run-wide ones', () => {
    const shown = visibleLines(lines, { device: 'd2', minLevel: 'debug', search: '' });
    expect(shown.map((l) => l.seq)).toEqual([1, 3, 4]);
  });

  it('keeps the chosen level and the more severe ones', () => {
    expect(visibleLines(lines, { device: null, minLevel: 'warning', search: '' }).map((l) => l.seq)).toEqual([2, 4]);
  });

  it('searches without case', () => {
    expect(visibleLines(lines, { device: null, minLevel: 'debug', search: 'relay' }).map((l) => l.seq)).toEqual([2]);
  });
});

describe('mergeLines', () => {
  it('appends new lines and ignores ones it has', () => {
    const merged = mergeLines([line(1), line(2)], [line(2), line(3)]);
    expect(merged.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(lastSeq(merged)).toBe(3);
  });

  it('keeps the newest when there are too many', () => {
    const merged = mergeLines([line(1), line(2)], [line(3), line(4)], 3);
    expect(merged.map((l) => l.seq)).toEqual([2, 3, 4]);
  });

  it('leaves the known lines alone when nothing came', () => {
    const known = [line(1)];
    expect(mergeLines(known, [])).toBe(known);
  });
});

describe('formatting', () => {
  it('ranks unknown levels as info', () => {
    expect(levelRank('loud')).toBe(levelRank('info'));
  });

  it('shows the time of day in UTC with milliseconds', () => {
    expect(lineTime('2026-03-01T08:00:00.250+00:00')).toBe('08:00:00.250');
    expect(lineTime('not a time')).toBe('not a time');
  });

  it('reads sizes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2048)).toBe('2.0 KiB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MiB');
  });
});
