import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, within } from '@testing-library/svelte';
import Environments from './Environments.svelte';
import { session } from '../lib/session.svelte';

const bench = { id: 'e1', name: 'Bench', description: 'lab bench', variables: { temperature_c: '23' }, created_at: '', updated_at: '' };
const chamber = { id: 'e2', name: 'Chamber', description: '', variables: {}, created_at: '', updated_at: '' };

const reply = (status: number, body?: unknown) => new Response(body === undefined ? null : JSON.stringify(body), { status });

const fetchMock = vi.fn<(url: string, init?: RequestInit) => Promise<Response>>();

beforeEach(() => {
  session.mode = 'open'; // everyone may edit, as on a server without the auth service
  vi.stubGlobal('fetch', fetchMock);
});
afterEach(() => {
  fetchMock.mockReset();
  vi.unstubAllGlobals();
});

describe('the environment list', () => {
  it('shows the first page and fetches the next one on request', async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { items: [bench], next_cursor: 'c2' }))
      .mockResolvedValueOnce(reply(200, { items: [chamber], next_cursor: null }));
    render(Environments);
    const table = await screen.findByTestId('environments-table');
    expect(within(table).getByText('temperature_c=23')).toBeTruthy();
    expect(fetchMock.mock.calls[0][0]).toBe('/api/environments?limit=100');
    await fireEvent.click(screen.getByRole('button', { name: 'Load more' }));
    expect(await within(table).findByText('Chamber')).toBeTruthy();
    expect(fetchMock.mock.calls[1][0]).toBe('/api/environments?limit=100&cursor=c2');
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
  });

  it('says when there is none yet and links to creating one', async () => {
    fetchMock.mockResolvedValue(reply(200, { items: [], next_cursor: null }));
    render(Environments);
    expect(await screen.findByText('No environments yet.')).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Create the first environment.' }).getAttribute('href')).toBe('/environments/new');
  });

  it('deletes an environment after asking, and takes it off the list', async () => {
    fetchMock
      .mockResolvedValueOnce(reply(200, { items: [bench, chamber], next_cursor: null }))
      .mockResolvedValueOnce(reply(204));
    render(Environments);
    const row = (await screen.findByText('Bench')).closest('tr') as HTMLElement;
    await fireEvent.click(within(row).getByRole('button', { name: 'Delete' }));
    expect(await screen.findByText('Delete “Bench”?')).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Delete environment' }));
    await vi.waitFor(() => expect(screen.queryByText('Bench')).toBeNull());
    const [url, init] = fetchMock.mock.calls[1];
    expect([url, init?.method]).toEqual(['/api/environments/e1', 'DELETE']);
    expect(screen.getByText('Chamber')).toBeTruthy();
  });

  it('shows a failure with a way to try again', async () => {
    fetchMock
      .mockResolvedValueOnce(reply(500, { code: 'internal', message: 'boom' }))
      .mockResolvedValueOnce(reply(200, { items: [bench], next_cursor: null }));
    render(Environments);
    expect(await screen.findByText(/The server failed to handle this request/)).toBeTruthy();
    await fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByText('Bench')).toBeTruthy();
  });
});
