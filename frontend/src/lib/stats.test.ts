import { describe, expect, it } from 'vitest';
import { countByStatus, passRateSeries } from './stats';
import type { Device } from './types';

describe('passRateSeries', () => {
  it('fills the days between reported ones and computes the pass rate', () => {
    const series = passRateSeries([
      { day: '2026-05-01', pass: 3, fail: 1, inconclusive: 0 },
      { day: '2026-05-03', pass: 0, fail: 0, inconclusive: 2 },
    ]);
    expect(series.days).toEqual([Date.UTC(2026, 4, 1) / 1000, Date.UTC(2026, 4, 2) / 1000, Date.UTC(2026, 4, 3) / 1000]);
    expect(series.rate).toEqual([75, null, 0]);
    expect(series.fail).toEqual([1, 0, 0]);
  });

  it('is empty without data', () => {
    expect(passRateSeries([]).days).toEqual([]);
  });
});

describe('countByStatus', () => {
  it('counts devices per status', () => {
    const devices = [{ status: 'available' }, { status: 'offline' }, { status: 'available' }, { status: 'maintenance' }] as Device[];
    expect(countByStatus(devices)).toEqual({ available: 2, in_test: 0, held: 0, offline: 1, maintenance: 1, retired: 0 });
  });
});
