import { describe, expect, it } from 'vitest';
import { segmentTitle, segments } from './utilisation';

describe('a day of device utilisation', () => {
  it('stacks the statuses in a fixed order, filling the bar', () => {
    const bar = segments({ day: '2026-03-01', device_seconds: 100, shares: { available: 0.5, in_test: 0.25, offline: 0.2501 } });
    expect(bar.map((s) => s.status)).toEqual(['in_test', 'available', 'offline']);
    expect(bar[0]).toMatchObject({ start: 0 });
    expect(bar[0].width).toBeCloseTo(24.998, 2);
    expect(bar[1].start).toBeCloseTo(bar[0].width);
    expect(bar.at(-1)!.start + bar.at(-1)!.width).toBe(100);
    expect(segmentTitle(bar[1])).toBe('Available 50 %');
  });

  it('is empty on a day without device time', () => {
    expect(segments({ day: '2026-03-01', device_seconds: 0, shares: {} })).toEqual([]);
  });
});
