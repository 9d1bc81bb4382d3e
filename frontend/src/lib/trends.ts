// A test case's trend: the call to /api/test-cases/{id}/trend, and the geometry of its chart
// (scales, one series per device, the threshold line, the firmware change markers) for a
// plain inline SVG.

import { send } from './api';

export interface TrendPoint {
  run_id: string;
  finished_at: string;
  device_id: string;
  device_name: string;
  model: string;
  firmware_version: string;
  value: number;
  verdict: string;
}

export interface FirmwareChange {
  device_id: string;
  at: string;
  run_id: string;
  previous: string;
  firmware_version: string;
}

export interface DayRate {
  day: string;
  pass: number;
  fail: number;
  inconclusive: number;
}

export interface Trend {
  test_case_id: string;
  test_case_name: string;
  metric: string | null;
  metrics: string[];
  condition: string | null;
  threshold: number | null;
  unit: string;
  points: TrendPoint[];
  firmware_changes: FirmwareChange[];
  pass_rate: DayRate[];
  results: number;
  truncated: boolean;
}

export interface TrendQuery {
  metric?: string;
  model?: string;
  device_id?: string;
  limit?: number;
}

/** The answer with every list present: a server without the trend endpoint's newest fields
 * (or a stand-in in a test) must not break the test case page it sits on. */
export function completeTrend(answer: Partial<Trend> | null | undefined, testCaseId: string): Trend {
  const list = <T>(value: T[] | undefined): T[] => (Array.isArray(value) ? value : []);
  return {
    test_case_id: answer?.test_case_id ?? testCaseId,
    test_case_name: answer?.test_case_name ?? '',
    metric: answer?.metric ?? null,
    metrics: list(answer?.metrics),
    condition: answer?.condition ?? null,
    threshold: typeof answer?.threshold === 'number' ? answer.threshold : null,
    unit: answer?.unit ?? '',
    points: list(answer?.points),
    firmware_changes: list(answer?.firmware_changes),
    pass_rate: list(answer?.pass_rate),
    results: answer?.results ?? 0,
    truncated: answer?.truncated ?? false,
  };
}

export const trends = {
  get: async (testCaseId: string, query: TrendQuery = {}, signal?: AbortSignal) =>
    completeTrend(
      await send<Partial<Trend>>('GET', `/api/test-cases/${encodeURIComponent(testCaseId)}/trend`, {
        query: {
          metric: query.metric || undefined,
          model: query.model || undefined,
          device_id: query.device_id || undefined,
          limit: query.limit === undefined ? undefined : String(query.limit),
        },
        signal,
      }),
      testCaseId,
    ),
};

export interface Box {
  width: number;
  height: number;
  left: number; // room for the value axis labels
  right: number;
  top: number; // room for the marker labels
  bottom: number; // room for the time axis labels
}

export const DEFAULT_BOX: Box = { width: 720, height: 280, left: 56, right: 16, top: 28, bottom: 28 };

/** A linear map of [d0, d1] onto [r0, r1]; a domain of one value maps to the range's middle. */
export function linear(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  if (d1 === d0) return () => (r0 + r1) / 2;
  return (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);
}

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^n). */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const found: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    found.push(Number(v.toFixed(10)));
  }
  return found;
}

export interface ChartPoint {
  x: number;
  y: number;
  point: TrendPoint;
}

export interface Series {
  device_id: string;
  label: string; // device name (model)
  path: string; // an SVG path through the device's points, oldest first
  points: ChartPoint[];
}

export interface Marker {
  x: number;
  label: string; // e.g. "meter-1: 1.0.0 → 1.1.0"
  change: FirmwareChange;
}

export interface Geometry {
  box: Box;
  series: Series[];
  threshold: number | null; // y of the threshold line, if any
  markers: Marker[];
  xTicks: { x: number; label: string }[];
  yTicks: { y: number; label: string }[];
}

const time = (iso: string) => new Date(iso).getTime();

function dayLabel(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Where everything of a trend goes in a `box`: the values and the threshold share the value
 * scale (padded by 5 %), time runs left (oldest) to right. */
export function chartGeometry(trend: Trend, box: Box = DEFAULT_BOX): Geometry {
  const x0 = box.left;
  const x1 = box.width - box.right;
  const y0 = box.height - box.bottom; // bottom: the smallest value
  const y1 = box.top;
  const times = [...trend.points.map((p) => time(p.finished_at)), ...trend.firmware_changes.map((c) => time(c.at))];
  const values = trend.points.map((p) => p.value);
  if (trend.threshold !== null) values.push(trend.threshold);
  if (!trend.points.length) return { box, series: [], threshold: null, markers: [], xTicks: [], yTicks: [] };
  const tLo = Math.min(...times);
  const tHi = Math.max(...times);
  let vLo = Math.min(...values);
  let vHi = Math.max(...values);
  const pad = (vHi - vLo) * 0.05 || Math.abs(vHi) * 0.05 || 1;
  vLo -= pad;
  vHi += pad;
  const x = linear(tLo, tHi, x0, x1);
  const y = linear(vLo, vHi, y0, y1);

  const byDevice = new Map<string, Series>();
  for (const point of trend.points) {
    let series = byDevice.get(point.device_id);
    if (!series) {
      series = { device_id: point.device_id, label: `${point.device_name} (${point.model || 'no model'})`, path: '', points: [] };
      byDevice.set(point.device_id, series);
    }
    series.points.push({ x: x(time(point.finished_at)), y: y(point.value), point });
  }
  const names = new Map(trend.points.map((p) => [p.device_id, p.device_name]));
  for (const series of byDevice.values()) {
    series.points.sort((a, b) => a.x - b.x);
    series.path = series.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
  }
  const markers = trend.firmware_changes.map((change) => ({
    x: x(time(change.at)),
    label: `${names.get(change.device_id) ?? change.device_id}: ${change.previous} → ${change.firmware_version}`,
    change,
  }));
  const spanDays = (tHi - tLo) / 86_400_000;
  const xTicks = (tHi === tLo ? [tLo] : [tLo, (tLo + tHi) / 2, tHi]).map((t) => ({
    x: x(t),
    label: spanDays < 2 ? new Date(t).toISOString().slice(5, 16).replace('T', ' ') : dayLabel(t),
  }));
  const yTicks = ticks(vLo, vHi).map((v) => ({ y: y(v), label: String(v) }));
  return {
    box,
    series: [...byDevice.values()],
    threshold: trend.threshold === null ? null : y(trend.threshold),
    markers,
    xTicks,
    yTicks,
  };
}

/** The share of passing results of a day, 0..1 (null: none decided). */
export function passShare(day: DayRate): number | null {
  const total = day.pass + day.fail + day.inconclusive;
  return total ? day.pass / total : null;
}
