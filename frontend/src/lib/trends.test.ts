import { describe, expect, it } from 'vitest';
import { DEFAULT_BOX, chartGeometry, completeTrend, linear, passShare, ticks, type Trend, type TrendPoint } from './trends';

const point = (over: Partial<TrendPoint>): TrendPoint => ({
  run_id: 'r1',
  finished_at: '2026-01-01T00:00:00+00:00',
  device_id: 'd1',
  device_name: 'meter-1',
  model: 'EM-340',
  firmware_version: '1.0.0',
  value: 230,
  verdict: 'pass',
  ...over,
});

const trend = (over: Partial<Trend> = {}): Trend => ({
  test_case_id: 'c1',
  test_case_name: 'voltage',
  metric: 'voltage',
  metrics: ['voltage'],
  condition: '<=',
  threshold: 240,
  unit: 'V',
  points: [
    point({ run_id: 'r1', finished_at: '2026-01-01T00:00:00+00:00', value: 230 }),
    point({ run_id: 'r2', finished_at: '2026-01-03T00:00:00+00:00', value: 250, firmware_version: '1.1.0', verdict: 'fail' }),
    point({ run_id: 'r3', finished_at: '2026-01-02T00:00:00+00:00', device_id: 'd2', device_name: 'em24-1', model: 'EM-24', value: 220 }),
  ],
  firmware_changes: [
    { device_id: 'd1', at: '2026-01-03T00:00:00+00:00', run_id: 'r2', previous: '1.0.0', firmware_version: '1.1.0' },
  ],
  pass_rate: [],
  results: 3,
  truncated: false,
  ...over,
});

describe('scales', () => {
  it('maps a domain linearly, a single value to the middle', () => {
    const f = linear(0, 10, 100, 200);
    expect([f(0), f(5), f(10)]).toEqual([100, 150, 200]);
    expect(linear(3, 3, 0, 10)(3)).toBe(5);
  });

  it('picks round ticks within the range', () => {
    expect(ticks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(ticks(218.5, 251.5)).toEqual([220, 230, 240, 250]);
    expect(ticks(0.1, 0.35)).toEqual([0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
    expect(ticks(4, 4)).toEqual([4]);
  });
});

describe('the chart geometry', () => {
  const box = DEFAULT_BOX;
  const bottom = box.height - box.bottom;
  const right = box.width - box.right;

  it('draws one series per device, oldest to newest, left to right', () => {
    const g = chartGeometry(trend());
    expect(g.series.map((s) => s.label)).toEqual(['meter-1 (EM-340)', 'em24-1 (EM-24)']);
    const [meter, em24] = g.series;
    expect(meter.points.map((p) => p.point.run_id)).toEqual(['r1', 'r2']);
    expect(meter.points[0].x).toBe(box.left);
    expect(meter.points[1].x).toBe(right);
    expect(em24.points[0].x).toBe((box.left + right) / 2);
    expect(meter.path).toMatch(/^M56\.0,[\d.]+ L704\.0,[\d.]+$/);
  });

  it('puts values and threshold on one padded scale, larger values higher', () => {
    const g = chartGeometry(trend());
    const [meter, em24] = g.series;
    // 220..250 padded by 5 % of the span: 218.5..251.5
    const y = (v: number) => bottom + ((v - 218.5) / 33) * (box.top - bottom);
    expect(em24.points[0].y).toBeCloseTo(y(220));
    expect(meter.points[1].y).toBeCloseTo(y(250));
    expect(g.threshold).toBeCloseTo(y(240));
    expect(meter.points[1].y).toBeLessThan(g.threshold!);
    expect(g.yTicks.map((t) => t.label)).toEqual(['220', '230', '240', '250']);
  });

  it('marks firmware changes where they happened, labelled by device and versions', () => {
    const [marker] = chartGeometry(trend()).markers;
    expect(marker.x).toBe(right);
    expect(marker.label).toBe('meter-1: 1.0.0 → 1.1.0');
  });

  it('widens the scale to a threshold beyond every value, and copes with one point', () => {
    const far = chartGeometry(trend({ threshold: 300 }));
    // 220..300 padded by 4 on each side: the threshold is 4/88 of the height below the top
    expect(far.threshold).toBeCloseTo(box.top + (4 / 88) * (bottom - box.top));
    const one = chartGeometry(trend({ points: [point({})], firmware_changes: [], threshold: null }));
    expect(one.series[0].points[0]).toMatchObject({ x: (box.left + right) / 2, y: (box.top + bottom) / 2 });
    expect(one.threshold).toBeNull();
    expect(one.xTicks).toHaveLength(1);
  });

  it('has nothing to draw without points', () => {
    const none = chartGeometry(trend({ points: [], firmware_changes: [] }));
    expect(none).toMatchObject({ series: [], markers: [], threshold: null, xTicks: [], yTicks: [] });
  });
});

describe('an incomplete answer', () => {
  it('becomes an empty trend, not an error on the test case page', () => {
    const trend = completeTrend({ metric: 'voltage' } as Partial<Trend>, 'tc-1');
    expect(trend).toMatchObject({ test_case_id: 'tc-1', metric: 'voltage', metrics: [], points: [] });
    expect(() => chartGeometry(trend)).not.toThrow();
    expect(completeTrend(undefined, 'tc-2').pass_rate).toEqual([]);
  });
});

describe('the pass rate', () => {
  it('is the passing share of a day, none without results', () => {
    expect(passShare({ day: '2026-01-01', pass: 3, fail: 1, inconclusive: 0 })).toBe(0.75);
    expect(passShare({ day: '2026-01-01', pass: 0, fail: 0, inconclusive: 0 })).toBeNull();
  });
});
