// A list the API hands out in cursor pages (devices, runs, test cases, environments), as reactive
// state for a page: the rows so far, whether the first page or the next one is on its way, and
// the last failure. Pages keep `items` current themselves as live events arrive.

import { errorMessage } from './api';
import type { Page } from './types';

/** Fetches one page: the first when `cursor` is null, else the one after it. */
export type PageFetcher<T> = (cursor: string | null, signal: AbortSignal) => Promise<Page<T>>;

export class CursorList<T extends { id: string }> {
  items = $state<T[]>([]);
  nextCursor = $state<string | null>(null);
  /** True only while there is nothing to show: a reload keeps the rows until the new ones arrive. */
  loading = $state(true);
  loadingMore = $state(false);
  error = $state('');

  /** The latest first-page request; a newer one (new filters) makes the answers to it obsolete. */
  #request: AbortController | null = null;

  constructor(private readonly fetchPage: PageFetcher<T>) {}

  /** Fetches the first page again (the filters may have changed); a failure lands in `error`. */
  load = async (): Promise<void> => {
    try {
      await this.refresh();
    } catch (e) {
      this.error = errorMessage(e);
    }
  };

  /** Like `load()`, but a failure is thrown to the caller (whose page depends on the list). */
  async refresh(): Promise<void> {
    this.#request?.abort();
    const controller = (this.#request = new AbortController());
    this.loading = this.items.length === 0;
    try {
      const page = await this.fetchPage(null, controller.signal);
      if (controller.signal.aborted) return;
      this.items = page.items;
      this.nextCursor = page.next_cursor;
      this.error = '';
    } catch (e) {
      if (controller.signal.aborted) return;
      throw e;
    } finally {
      if (this.#request === controller) this.loading = false;
    }
  }

  /** Appends the next page, leaving out rows a live event has already added. */
  loadMore = async (): Promise<void> => {
    const controller = this.#request;
    if (!this.nextCursor || !controller || this.loadingMore) return;
    this.loadingMore = true;
    try {
      // Under the first page's signal: a reload in the meantime drops this page too.
      const page = await this.fetchPage(this.nextCursor, controller.signal);
      if (controller.signal.aborted) return;
      const shown = new Set(this.items.map((item) => item.id));
      this.items = [...this.items, ...page.items.filter((item) => !shown.has(item.id))];
      this.nextCursor = page.next_cursor;
    } catch (e) {
      if (!controller.signal.aborted) this.error = errorMessage(e);
    } finally {
      this.loadingMore = false;
    }
  };
}
