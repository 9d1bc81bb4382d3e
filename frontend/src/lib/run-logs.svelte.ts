// Follows one run's log while its page is open: the per-run stream
// (GET /api/test-runs/{id}/logs/stream, through the same LiveEvents connection code as the
// lab's events: backoff, Last-Event-ID resumption, polling while the stream is away), until
// the server says the log is complete (`end`). The lines read before are fetched page by page.

import { send } from './api';
import { LiveEvents } from './live.svelte';
import { lastSeq, mergeLines, type LogLine } from './run-logs';
import { session } from './session.svelte';
import type { Page } from './types';

export class RunLogFollower {
  lines = $state<LogLine[]>([]);
  complete = $state(false);
  error = $state<string | null>(null);
  private live: LiveEvents | null = null;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly runId: string,
    private readonly fetcher: typeof fetch = (...args) => fetch(...args),
  ) {}

  /** The log so far, then its new lines as they come. */
  start(): void {
    if (this.live) return;
    const path = `/api/test-runs/${encodeURIComponent(this.runId)}/logs`;
    this.live = new LiveEvents({
      url: `${path}/stream`,
      pollIntervalMs: 3000,
      fetch: (input, init) => {
        // resume after what the pages brought (before the stream has sent an id of its own)
        const headers = { ...(init?.headers as Record<string, string>) };
        headers['Last-Event-ID'] ??= String(lastSeq(this.lines));
        return this.fetcher(input, { ...init, headers });
      },
      onUnauthorized: (message) => session.expire(message),
    });
    this.live.subscribe({
      any: (kind, payload) => {
        if (kind === 'log') this.lines = mergeLines(this.lines, [payload as LogLine]);
        if (kind === 'end') this.finish();
      },
      poll: () => this.readPages(),
    });
    void this.readPages().then(() => this.live?.start());
  }

  stop(): void {
    this.live?.stop();
    this.live = null;
  }

  private finish(): void {
    this.complete = true;
    this.stop();
  }

  /** The lines after the last one known, page by page (also while the stream is away). */
  readPages(): Promise<void> {
    this.reading ??= (async () => {
      try {
        let cursor: string | null = null;
        const after = lastSeq(this.lines);
        do {
          const page: Page<LogLine> = await send<Page<LogLine>>(
            'GET',
            `/api/test-runs/${encodeURIComponent(this.runId)}/logs`,
            { query: cursor ? { limit: 200, cursor } : { limit: 200, after } },
          );
          this.lines = mergeLines(this.lines, page.items);
          cursor = page.next_cursor;
        } while (cursor);
        this.error = null;
      } catch (error) {
        this.error = error instanceof Error ? error.message : String(error);
      } finally {
        this.reading = null;
      }
    })();
    return this.reading;
  }
}
