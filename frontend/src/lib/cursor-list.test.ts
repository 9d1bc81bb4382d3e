import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { CursorList, type PageFetcher } from './cursor-list.svelte';
import type { Page } from './types';

type Row = { id: string };
const rows = (...ids: string[]): Row[] => ids.map((id) => ({ id }));
const page = (items: Row[], next_cursor: string | null = null): Page<Row> => ({ items, next_cursor });

/** A fetcher whose answers the test hands out one call at a time. */
function controlledFetcher() {
  const calls: { cursor: string | null; signal: AbortSignal; answer: (p: Page<Row>) => void; fail: (e: unknown) => void }[] = [];
  const fetch: PageFetcher<Row> = (cursor, signal) =>
    new Promise((resolve, reject) => calls.push({ cursor, signal, answer: resolve, fail: reject }));
  return { fetch, calls };
}

describe('CursorList', () => {
  it('loads the first page, then appends the next ones without rows it already shows', async () => {
    const fetch = vi
      .fn<PageFetcher<Row>>()
      .mockResolvedValueOnce(page(rows('a', 'b'), 'c1'))
      .mockResolvedValueOnce(page(rows('b', 'c'), null));
    const list = new CursorList(fetch);
    expect(list.loading).toBe(true);
    await list.load();
    expect(list.loading).toBe(false);
    expect(list.items.map((r) => r.id)).toEqual(['a', 'b']);
    expect(list.nextCursor).toBe('c1');
    await list.loadMore();
    expect(fetch.mock.calls[1][0]).toBe('c1');
    expect(list.items.map((r) => r.id)).toEqual(['a', 'b', 'c']);
    expect(list.nextCursor).toBeNull();
    await list.loadMore(); // no next page: nothing to fetch
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('keeps the rows while reloading and shows "loading" only when there are none', async () => {
    const { fetch, calls } = controlledFetcher();
    const list = new CursorList(fetch);
    const first = list.load();
    expect(list.loading).toBe(true);
    calls[0].answer(page(rows('a')));
    await first;
    const second = list.load();
    expect(list.loading).toBe(false);
    expect(list.items.map((r) => r.id)).toEqual(['a']);
    calls[1].answer(page([]));
    await second;
    expect(list.items).toEqual([]);
    void list.load();
    expect(list.loading).toBe(true);
  });

  it('drops the answer to an older request when the filters changed in the meantime', async () => {
    const { fetch, calls } = controlledFetcher();
    const list = new CursorList(fetch);
    const older = list.load();
    const newer = list.load();
    expect(calls[0].signal.aborted).toBe(true);
    calls[1].answer(page(rows('new')));
    await newer;
    calls[0].answer(page(rows('old')));
    await older;
    expect(list.items.map((r) => r.id)).toEqual(['new']);
    expect(list.loading).toBe(false);
  });

  it('drops a next page that was on its way when the list reloaded', async () => {
    const { fetch, calls } = controlledFetcher();
    const list = new CursorList(fetch);
    const first = list.load();
    calls[0].answer(page(rows('a'), 'c1'));
    await first;
    const more = list.loadMore();
    expect(list.loadingMore).toBe(true);
    const reload = list.load();
    expect(calls[1].signal.aborted).toBe(true);
    calls[1].fail(new DOMException('aborted', 'AbortError'));
    await more;
    calls[2].answer(page(rows('b')));
    await reload;
    expect(list.items.map((r) => r.id)).toEqual(['b']);
    expect(list.loadingMore).toBe(false);
    expect(list.error).toBe('');
  });

  it('shows a failure and clears it on the next successful load', async () => {
    const fetch = vi
      .fn<PageFetcher<Row>>()
      .mockRejectedValueOnce(new ApiError(503, 'http_503', 'The server is not ready.'))
      .mockResolvedValueOnce(page(rows('a'), 'c1'))
      .mockRejectedValueOnce(new Error('offline'));
    const list = new CursorList(fetch);
    await list.load();
    expect(list.error).toBe('The server is not ready.');
    expect(list.loading).toBe(false);
    await list.load();
    expect(list.error).toBe('');
    await list.loadMore();
    expect(list.error).toBe('Error: offline');
    expect(list.items.map((r) => r.id)).toEqual(['a']);
    expect(list.loadingMore).toBe(false);
  });

  it('throws from refresh() for a caller whose page depends on the list', async () => {
    const list = new CursorList<Row>(() => Promise.reject(new ApiError(404, 'not_found', 'Not found.')));
    await expect(list.refresh()).rejects.toThrow('Not found.');
    expect(list.error).toBe('');
  });
});
