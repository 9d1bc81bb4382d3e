import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import Runners from './Runners.svelte';
import { jsonResponse, notFound, signedInWith, signOutAfterTest } from '../lib/testing/fixtures';

const busy = {
  id: 'bench-pc-3-0',
  host: 'bench-pc-3',
  version: '0.1.0',
  executors: ['simulate'],
  state: 'online',
  busy: true,
  current_run_ids: ['5d0f1c2a-0000-4000-8000-000000000001'],
  first_seen_at: '2026-12-01T08:00:00+00:00',
  last_seen_at: new Date().toISOString(),
  runs_done: 40,
  failures: 2,
  drained: false,
  drained_by: '',
  drained_at: null,
  drain_reason: '',
};
const silent = { ...busy, id: 'old-runner', host: '', version: '', executors: [], state: 'silent', busy: false, current_run_ids: [], runs_done: 0, failures: 0 };

function serve(onDrain = vi.fn()) {
  return (url: string, init?: RequestInit) => {
    if (url === '/api/runners') return jsonResponse({ items: [silent, busy] });
    if (url === `/api/runners/${busy.id}/drain` && init?.method === 'POST') {
      onDrain(JSON.parse(String(init.body)));
      return jsonResponse({ ...busy, drained: true, drained_by: 'ada@lab.test' });
    }
    if (url === `/api/runners/${busy.id}`) {
      return jsonResponse({
        ...busy,
        recent_runs: [{ id: 'run-9-abcdef', status: 'failed', verdict: null, created_at: busy.first_seen_at, started_at: busy.first_seen_at, finished_at: null, failure_reason: 'PSU silent' }],
      });
    }
    return notFound(url);
  };
}

afterEach(signOutAfterTest);

describe('the runners page', () => {
  it('shows each runner online or silent, busy with a link to its run, its counts; no drain for engineers', async () => {
    signedInWith({ email: 'eve@lab.test', role: 'engineer' }, serve());
    render(Runners);
    const table = await screen.findByTestId('runners-table');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => r.getAttribute('data-runner'))).toEqual([busy.id, 'old-runner']);
    expect(rows[0].getAttribute('data-state')).toBe('online');
    expect(within(rows[0]).getByText('running')).toBeTruthy();
    expect(within(rows[0]).getByRole('link').getAttribute('href')).toBe(`/runs/${busy.current_run_ids[0]}`);
    expect(within(rows[0]).getByText('2 of 40 (5 %)')).toBeTruthy();
    expect(within(rows[0]).getByText('bench-pc-3 · v0.1.0 · simulate')).toBeTruthy();
    expect(within(rows[1]).getByText('silent')).toBeTruthy();
    expect(within(rows[1]).getByText('idle')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Drain' })).toBeNull();
  });

  it('lets an admin drain a runner after confirming, and shows its recent runs', async () => {
    const drained = vi.fn();
    signedInWith({ email: 'ada@lab.test', role: 'admin' }, serve(drained));
    render(Runners);
    const table = await screen.findByTestId('runners-table');
    const row = within(table).getAllByRole('row')[1];
    await fireEvent.click(within(row).getByRole('button', { name: 'Drain' }));
    const dialog = document.querySelector('dialog')!;
    expect(dialog.textContent).toContain(`Drain runner ${busy.id}?`);
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Drain', hidden: true }));
    await vi.waitFor(() => expect(drained).toHaveBeenCalledWith({ reason: '' }));

    await fireEvent.click(within(row).getByRole('button', { name: 'Recent runs' }));
    const recent = await screen.findByTestId('runner-recent-runs');
    expect(within(recent).getByText('PSU silent')).toBeTruthy();
    expect(within(recent).getByRole('link').getAttribute('href')).toBe('/runs/run-9-abcdef');
  });
});
