// Turning /api/stats answers into chart series, and counting devices when there is no /api/stats.

import type { Device, DeviceStatus, Stats } from './types';

export interface PassRateSeries {
  /** Day starts, as Unix seconds (UTC midnight). */
  days: number[];
  /** Pass rate in percent among judged runs that day, null when nothing was judged. */
  rate: (number | null)[];
  pass: number[];
  fail: number[];
  inconclusive: number[];
}

const DAY = 86400;

function dayStart(day: string): number {
  return Date.UTC(Number(day.slice(0, 4)), Number(day.slice(5, 7)) - 1, Number(day.slice(8, 10))) / 1000;
}

/** One point per calendar day from the first to the last reported day, gaps filled with zeros. */
export function passRateSeries(rows: Stats['pass_rate_by_day']): PassRateSeries {
  const series: PassRateSeries = { days: [], rate: [], pass: [], fail: [], inconclusive: [] };
  if (!rows.length) return series;
  const byDay = new Map(rows.map((row) => [dayStart(row.day), row]));
  const starts = [...byDay.keys()].sort((a, b) => a - b);
  for (let t = starts[0]; t <= starts[starts.length - 1]; t += DAY) {
    const row = byDay.get(t);
    const pass = row?.pass ?? 0;
    const fail = row?.fail ?? 0;
    const inconclusive = row?.inconclusive ?? 0;
    const judged = pass + fail + inconclusive;
    series.days.push(t);
    series.pass.push(pass);
    series.fail.push(fail);
    series.inconclusive.push(inconclusive);
    series.rate.push(judged ? Math.round((pass / judged) * 1000) / 10 : null);
  }
  return series;
}

export function countByStatus(devices: Device[]): Record<DeviceStatus, number> {
  const counts: Record<DeviceStatus, number> = { available: 0, in_test: 0, held: 0, offline: 0, maintenance: 0, retired: 0 };
  for (const device of devices) counts[device.status] = (counts[device.status] ?? 0) + 1;
  return counts;
}
