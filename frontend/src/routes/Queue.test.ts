import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { render, screen, within } from '@testing-library/svelte';
import Queue from './Queue.svelte';
import { features } from '../lib/features.svelte';
import { jsonResponse, notFound, signedInWith, signOutAfterTest } from '../lib/testing/fixtures';

const user = { email: 'ada@lab.test', role: 'engineer' as const };
const inTwelveMinutes = () => new Date(Date.now() + 12 * 60_000 + 20_000).toISOString();
const run = {
  id: 'r1',
  status: 'waiting',
  started_by: 'ada@lab.test',
  priority: 'high',
  created_at: '2026-12-01T09:00:00+00:00',
  test_cases: [{ name: 'Voltage accuracy' }],
};
const hold = { id: 'h1', status: 'waiting', holder: 'bob@lab.test', reason: 'probe swap', priority: 'normal', created_at: '2026-12-01T09:05:00+00:00' };

beforeEach(() => {
  features.forget();
  signedInWith(user, (url) => {
    if (url === '/api/queue') {
      return jsonResponse({
        items: [
          { position: 1, kind: 'run', run, hold: null, waiting_for: { devices: { d1: 'busy' }, requests: [] }, estimated_start_at: inTwelveMinutes() },
          { position: 2, kind: 'hold', run: null, hold, waiting_for: null, estimated_start_at: null },
        ],
      });
    }
    if (url.startsWith('/api/devices?')) return jsonResponse({ items: [{ id: 'd1', name: 'meter-01' }], next_cursor: null });
    if (url.startsWith('/api/holds?')) return jsonResponse({ items: [], next_cursor: null });
    return notFound(url);
  });
});
afterEach(signOutAfterTest);

describe('the queue page', () => {
  it('lists runs and holds in order with what they wait for and the estimate; only the owner may cancel', async () => {
    render(Queue);
    const table = await screen.findByTestId('queue-table');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => r.getAttribute('data-kind'))).toEqual(['run', 'hold']);
    await vi.waitFor(() => expect(within(rows[0]).getByText('meter-01: busy')).toBeTruthy());
    expect(rows[0].querySelector('[data-field="estimate"]')!.textContent!.trim()).toBe('in ~12 min');
    expect(rows[1].querySelector('[data-field="estimate"]')!.textContent!.trim()).toBe('unknown');
    expect(within(rows[0]).getByRole('button', { name: 'Cancel' })).toBeTruthy();
    expect(within(rows[1]).queryByRole('button', { name: 'Cancel' })).toBeNull();
    expect(within(rows[1]).getByText('probe swap')).toBeTruthy();
    // holds answer here, so the user's own holds are listed below
    expect(await screen.findByTestId('my-holds')).toBeTruthy();
  });
});
