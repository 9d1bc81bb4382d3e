import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import Account from './Account.svelte';
import { session } from '../lib/session.svelte';

const user = { id: 'u1', email: 'ada@lab.test', name: 'Ada', role: 'engineer' };
const at = '2026-12-01T09:00:00+00:00';
const sessionRow = (id: string, user_agent: string, client_ip: string, current = false) => ({
  id,
  created_at: at,
  last_used_at: at,
  expires_at: '2026-12-01T21:00:00+00:00',
  absolute_expires_at: '2026-12-08T09:00:00+00:00',
  user_agent,
  client_ip,
  current,
});
const here = sessionRow('s1', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', '10.0.0.5', true);
const laptop = sessionRow('s2', 'curl/8.5.0', '192.0.2.7');

let fetchMock: ReturnType<typeof vi.fn>;
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

beforeEach(() => {
  session.mode = 'required';
  session.token = 'token';
  session.setUser(user as never);
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (url.startsWith('/auth/session?') || url === '/auth/session') return json({ user, session: here });
    if (url.startsWith('/auth/sessions?')) return json({ items: [here, laptop], next_cursor: null });
    if (url === '/auth/sessions/end-others' && init?.method === 'POST') return json({ sessions_ended: 1 });
    return json({ code: 'not_found', message: `unexpected ${url}`, errors: {} }, 404);
  });
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => {
  vi.unstubAllGlobals();
  session.token = null;
  session.user = null;
});

describe('my sessions', () => {
  it('name the client in words and its address, and end all the others at once', async () => {
    render(Account);
    const table = await screen.findByTestId('sessions-table');
    expect(within(table).getByText('Firefox 128 on Linux').getAttribute('title')).toContain('Gecko/20100101');
    expect(within(table).getByText('curl 8.5.0')).toBeTruthy();
    expect(within(table).getByText('192.0.2.7')).toBeTruthy();

    await fireEvent.click(screen.getByRole('button', { name: 'End all other sessions' }));
    await vi.waitFor(() => expect(within(table).queryByText('curl 8.5.0')).toBeNull());
    expect(fetchMock.mock.calls.some(([url, init]) => url === '/auth/sessions/end-others' && init?.method === 'POST')).toBe(true);
    expect(within(table).getByText('Firefox 128 on Linux')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'End all other sessions' })).toBeNull();
  });
});
