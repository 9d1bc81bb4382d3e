import { describe, expect, it } from 'vitest';
import {
  compareLink,
  compareQuery,
  defaultPair,
  formatDifference,
  formatMean,
  metricVerdict,
  runsLink,
  selectionFrom,
  summaryLine,
  type MetricComparison,
} from './comparison';

const metric = (over: Partial<MetricComparison> = {}): MetricComparison => ({
  metric: 'voltage',
  unit: 'V',
  condition: '<=',
  threshold: 240,
  base: { count: 3, mean: 230, stddev: 0.5 },
  target: { count: 3, mean: 245, stddev: 0.5 },
  difference: 15,
  direction: 'worse',
  beyond_spread: true,
  ...over,
});

describe('the comparison query', () => {
  it('names each side by firmware or by run', () => {
    expect(compareQuery({ mode: 'firmware', base: '4.2.0', target: ' 4.2.1 ', model: '' })).toEqual({
      base_firmware: '4.2.0',
      target_firmware: '4.2.1',
      model: undefined,
      environment_id: undefined,
    });
    expect(compareQuery({ mode: 'runs', base: 'r1', target: 'r2', model: 'EM-340' })).toMatchObject({
      base_run: 'r1',
      target_run: 'r2',
      model: 'EM-340',
    });
  });

  it('round-trips through the page URL', () => {
    const selection = { mode: 'firmware' as const, base: '1.0.0', target: '1.1.0-rc.1', model: 'EM-340' };
    const url = new URL(compareLink(selection), 'http://lab');
    expect(url.pathname).toBe('/compare');
    expect(selectionFrom(url.searchParams)).toEqual({ ...selection, environment_id: undefined });
    expect(selectionFrom(new URLSearchParams('base_run=a&target_run=b'))).toMatchObject({ mode: 'runs', base: 'a', target: 'b' });
  });

  it('is incomplete without both sides', () => {
    expect(selectionFrom(new URLSearchParams('base_firmware=1.0.0'))).toBeNull();
    expect(selectionFrom(new URLSearchParams(''))).toBeNull();
  });
});

describe('choices', () => {
  it('compares the newest firmware version with the one before by default', () => {
    const v = (version: string) => ({ version, first_seen: '2026-01-01T00:00:00Z', results: 1 });
    expect(defaultPair([v('1.0'), v('1.1'), v('1.2')])).toEqual({ base: '1.1', target: '1.2' });
    expect(defaultPair([v('1.0')])).toEqual({ base: '1.0', target: '' });
    expect(defaultPair([])).toEqual({ base: '', target: '' });
  });

  it('drills down to the completed runs of one side', () => {
    const link = runsLink('4.2.1', {
      test_case_id: 'c 1',
      test_case_name: 'voltage',
      model: 'EM-340',
      environment_id: 'e1',
      environment_name: 'bench',
    });
    const url = new URL(link, 'http://lab');
    expect(url.pathname).toBe('/runs');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      firmware: '4.2.1',
      test_case_id: 'c 1',
      environment_id: 'e1',
      status: 'completed',
    });
  });
});

describe('how metrics read', () => {
  it('shows means and signed differences with their unit', () => {
    expect(formatMean({ count: 3, mean: 230.04, stddev: 0 }, 'V')).toBe('230 V');
    expect(formatMean(null, 'V')).toBe('—');
    expect(formatDifference(metric())).toBe('+15 V');
    expect(formatDifference(metric({ difference: -0.1234, unit: '' }))).toBe('−0.123');
    expect(formatDifference(metric({ difference: 0 }))).toBe('±0 V');
    expect(formatDifference(metric({ difference: null }))).toBe('—');
  });

  it('says worse beyond the spread in red, within the spread quietly', () => {
    expect(metricVerdict(metric())).toEqual({ text: 'worse, beyond 3σ', tone: 'bad' });
    expect(metricVerdict(metric({ direction: 'better' }))).toEqual({ text: 'better, beyond 3σ', tone: 'ok' });
    expect(metricVerdict(metric({ beyond_spread: false }))).toEqual({ text: 'worse, within the spread', tone: 'idle' });
    expect(metricVerdict(metric({ beyond_spread: null })).text).toBe('worse (too few runs to tell)');
    expect(metricVerdict(metric({ direction: null })).text).toBe('');
  });

  it('sums up what changed', () => {
    expect(summaryLine({ regression: 2, fix: 1, unchanged: 5, new: 0, missing: 0 })).toBe('2 regressions · 1 fix · 5 unchanged');
    expect(summaryLine({ regression: 0, fix: 0, unchanged: 0, new: 0, missing: 0 })).toBe('nothing to compare');
  });
});
