import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import CaseTrend from './CaseTrend.svelte';

let fetchMock: ReturnType<typeof vi.fn>;

const answer = (metric: string) => ({
  test_case_id: 'c1',
  test_case_name: 'voltage',
  metric,
  metrics: ['voltage', 'current'],
  condition: '<=',
  threshold: 240,
  unit: 'V',
  points: [
    { run_id: 'r1', finished_at: '2026-01-01T10:00:00+00:00', device_id: 'd1', device_name: 'meter-1', model: 'EM-340', firmware_version: '1.0.0', value: 230, verdict: 'pass' },
    { run_id: 'r2', finished_at: '2026-01-02T10:00:00+00:00', device_id: 'd1', device_name: 'meter-1', model: 'EM-340', firmware_version: '1.1.0', value: 245, verdict: 'fail' },
  ],
  firmware_changes: [{ device_id: 'd1', at: '2026-01-02T10:00:00+00:00', run_id: 'r2', previous: '1.0.0', firmware_version: '1.1.0' }],
  pass_rate: [
    { day: '2026-01-01', pass: 1, fail: 0, inconclusive: 0 },
    { day: '2026-01-02', pass: 0, fail: 1, inconclusive: 0 },
  ],
  results: 2,
  truncated: false,
});

beforeEach(() => {
  fetchMock = vi.fn((url: string) => {
    const metric = new URL(url, 'http://x').searchParams.get('metric') ?? 'voltage';
    return Promise.resolve(new Response(JSON.stringify(answer(metric)), { status: 200 }));
  });
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => vi.unstubAllGlobals());

describe('the trend of a test case', () => {
  it('draws the values, the threshold, the firmware change and the pass rate', async () => {
    render(CaseTrend, { props: { testCaseId: 'c1' } });
    expect(await screen.findByTestId('trend-threshold')).toBeTruthy();
    expect(fetchMock.mock.calls[0][0]).toBe('/api/test-cases/c1/trend');
    expect(screen.getAllByTestId('trend-series')).toHaveLength(1);
    expect(screen.getByTestId('trend-firmware-change').textContent).toContain('meter-1: 1.0.0 → 1.1.0');
    const rows = screen.getByTestId('trend-pass-rate').querySelectorAll('tbody tr');
    expect([...rows].map((r) => r.querySelector('td')?.textContent)).toEqual(['2026-01-02', '2026-01-01']);
  });

  it('asks for another metric when one is chosen', async () => {
    render(CaseTrend, { props: { testCaseId: 'c1' } });
    const select = await screen.findByTestId('trend-metric');
    await fireEvent.change(select, { target: { value: 'current' } });
    await vi.waitFor(() => expect(fetchMock.mock.calls.at(-1)?.[0]).toBe('/api/test-cases/c1/trend?metric=current'));
  });
});
