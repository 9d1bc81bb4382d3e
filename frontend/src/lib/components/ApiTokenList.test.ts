import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import ApiTokenList from './ApiTokenList.svelte';
import { session } from '../session.svelte';

const at = '2026-12-01T09:00:00+00:00';
const existing = {
  id: 't1',
  user_id: 'u1',
  name: 'nightly',
  scope: 'read',
  created_at: at,
  created_by: 'u1',
  expires_at: '2027-01-01T09:00:00+00:00',
  last_used_at: null,
};
const SECRET = 'dlp_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHxyz';

let fetchMock: ReturnType<typeof vi.fn>;
const json = (body: unknown, status = 200) =>
  new Response(body === null ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

beforeEach(() => {
  session.mode = 'required';
  session.token = 'token';
  fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    if (url === '/auth/tokens/policy') return json({ max_days: 60, allow_no_expiry: false });
    if (url.startsWith('/auth/tokens?')) return json({ items: [existing], next_cursor: null });
    if (url === '/auth/tokens' && init?.method === 'POST') {
      const body = JSON.parse(String(init.body));
      return json({ ...existing, id: 't2', name: body.name, scope: body.scope, token: SECRET }, 201);
    }
    if (url === '/auth/tokens/t1' && init?.method === 'DELETE') return new Response(null, { status: 204 });
    return json({ code: 'not_found', message: `unexpected ${url}`, errors: {} }, 404);
  });
  vi.stubGlobal('fetch', fetchMock);
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) {
    this.open = true;
  };
  HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) {
    this.open = false;
  };
});
afterEach(() => {
  vi.unstubAllGlobals();
  session.token = null;
});

describe('API tokens', () => {
  it('are listed with scope and last use, and a new one is shown once with its secret', async () => {
    render(ApiTokenList);
    const table = await screen.findByTestId('tokens-table');
    expect(within(table).getByText('nightly')).toBeTruthy();
    expect(within(table).getByText('read')).toBeTruthy();
    expect(within(table).getByText('never')).toBeTruthy(); // not used yet

    await fireEvent.click(screen.getByRole('button', { name: 'New token' }));
    const options = screen.getAllByRole('option').map((o) => o.textContent);
    expect(options).toEqual(['7 days', '30 days', '60 days']); // the server's maximum is 60
    await fireEvent.input(screen.getByLabelText('Name'), { target: { value: 'firmware CI' } });
    await fireEvent.click(screen.getByLabelText(/^run/));
    await fireEvent.click(screen.getByRole('button', { name: 'Create token' }));

    expect((await screen.findByTestId('new-token')).textContent).toBe(SECRET);
    const [, init] = fetchMock.mock.calls.find(([url, i]) => url === '/auth/tokens' && i?.method === 'POST')!;
    expect(JSON.parse(String(init.body))).toEqual({ name: 'firmware CI', scope: 'run', expires_in_days: 30 });
    expect(within(table).getByText('firmware CI')).toBeTruthy();
    expect(table.textContent).not.toContain(SECRET); // the list never holds the secret

    await fireEvent.click(screen.getByRole('button', { name: 'Done' }));
    await vi.waitFor(() => expect(screen.queryByTestId('new-token')).toBeNull());
  });

  it('an empty name is refused before anything is sent', async () => {
    render(ApiTokenList);
    await screen.findByTestId('tokens-table');
    await fireEvent.click(screen.getByRole('button', { name: 'New token' }));
    await fireEvent.click(screen.getByRole('button', { name: 'Create token' }));
    expect(await screen.findByText(/Say what it is for/)).toBeTruthy();
    expect(fetchMock.mock.calls.some(([, i]) => i?.method === 'POST')).toBe(false);
  });

  it('a service account’s tokens are asked for by its user id', async () => {
    render(ApiTokenList, { userId: 'svc-1', owner: 'ci-firmware' });
    await screen.findByTestId('tokens-table');
    expect(fetchMock.mock.calls.some(([url]) => String(url).includes('user_id=svc-1'))).toBe(true);
    expect(screen.getByText(/ci-firmware’s role/)).toBeTruthy();
  });
});
