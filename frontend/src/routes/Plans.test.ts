import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import Plans from './Plans.svelte';
import PlanRunDetail from './PlanRunDetail.svelte';
import { session } from '../lib/session.svelte';
import { router } from '../lib/router.svelte';

const nightly = {
  id: 'p1',
  name: 'Nightly',
  version: 2,
  test_case_ids: ['c1', 'c2'],
  environment_ids: ['e1'],
  device_ids: ['d1'],
  device_requests: [],
  models: ['EM-340'],
  parameters: {},
  priority: 'normal',
  triggers: [
    { kind: 'cron', cron: '0 2 * * *', timezone: 'Europe/Berlin' },
    { kind: 'new_firmware', cron: null, timezone: 'UTC' },
  ],
  created_at: '2026-03-01T08:00:00+00:00',
  updated_at: '2026-03-01T08:00:00+00:00',
  last_runs: [{ id: 'pr1', created_at: '2026-03-01T02:00:00+00:00', finished_at: '2026-03-01T03:00:00+00:00', verdict: 'fail', cause: 'cron' }],
};

const planRun = (verdict: string | null, status = 'running') => ({
  id: 'pr2',
  plan_id: 'p1',
  plan: nightly,
  cause: { kind: 'manual', by: 'alice@lab', slot: null, device_id: '', firmware_version: '' },
  runs: [{ run_id: 'r1', environment_id: 'e1', environment_name: 'bench', model: 'EM-340', status, verdict: verdict, progress: 0.5 }],
  skipped: [],
  progress: { total: 1, finished: verdict ? 1 : 0, by_status: { [status]: 1 }, fraction: verdict ? 1 : 0.5 },
  verdict,
  created_at: '2026-03-01T08:00:00+00:00',
  finished_at: null,
});

const reply = (status: number, body?: unknown) => new Response(body === undefined ? null : JSON.stringify(body), { status });
const fetchMock = vi.fn<(url: string, init?: RequestInit) => Promise<Response>>();

beforeEach(() => {
  session.mode = 'open';
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => {
  fetchMock.mockReset();
  vi.unstubAllGlobals();
});

describe('the plans page', () => {
  it('lists plans with their triggers and last verdicts', async () => {
    fetchMock.mockResolvedValueOnce(reply(200, { items: [nightly], next_cursor: null }));
    render(Plans);
    const table = await screen.findByTestId('plans-table');
    expect(within(table).getByText('Nightly')).toBeTruthy();
    expect(within(table).getByText('cron 0 2 * * * (Europe/Berlin)')).toBeTruthy();
    expect(within(table).getByText('on new firmware')).toBeTruthy();
    expect(within(table).getByText('fail')).toBeTruthy();
    expect(within(table).getByRole('link', { name: /fail/ }).getAttribute('href')).toBe('/plan-runs/pr1');
    expect(fetchMock.mock.calls[0][0]).toBe('/api/plans?limit=200');
  });

  it('starts a plan and goes to its plan run', async () => {
    fetchMock.mockResolvedValueOnce(reply(200, { items: [nightly], next_cursor: null })).mockResolvedValueOnce(reply(201, planRun(null)));
    render(Plans);
    await fireEvent.click(await screen.findByRole('button', { name: 'Start' }));
    await vi.waitFor(() => expect(router.path).toBe('/plan-runs/pr2'));
    const [url, init] = fetchMock.mock.calls[1];
    expect([url, init?.method]).toEqual(['/api/plans/p1/start', 'POST']);
  });

  it('says when there are none, and shows a failure with a retry', async () => {
    fetchMock.mockResolvedValueOnce(reply(503, { code: 'service_unavailable', message: 'database down', errors: {} }));
    render(Plans);
    expect(await screen.findByText(/server is not ready/)).toBeTruthy();
    fetchMock.mockResolvedValueOnce(reply(200, { items: [], next_cursor: null }));
    await fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('No plans yet.')).toBeTruthy();
  });
});

describe('the plan run page', () => {
  it('shows its runs with links and follows it until the verdict', async () => {
    fetchMock.mockResolvedValueOnce(reply(200, planRun(null))).mockResolvedValue(reply(200, planRun('pass', 'completed')));
    render(PlanRunDetail, { id: 'pr2', pollMs: 20 });
    const runs = await screen.findByTestId('plan-run-runs');
    expect(within(runs).getByRole('link').getAttribute('href')).toBe('/runs/r1');
    expect(within(runs).getByText('bench')).toBeTruthy();
    expect(screen.getByText('0 of 1 run finished (1 running)')).toBeTruthy();
    await vi.waitFor(() => expect(within(screen.getByTestId('plan-run-verdict')).getByText('pass')).toBeTruthy());
    expect(screen.getByText('1 of 1 run finished')).toBeTruthy();
    const calls = fetchMock.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(fetchMock.mock.calls.length).toBe(calls); // finished: no more looks
  });
});
