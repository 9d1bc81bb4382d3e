// Live device and run changes from GET /api/events (Server-Sent Events, read with fetch so the
// Authorization header can be sent). Reconnects with backoff; while the stream is down (or the
// server has none) subscribers are polled instead, and after a reconnect they are polled once
// to catch up on what was missed.
//
// The server re-checks an open stream's session every few seconds and ends it with a
// `session_ended` event once the session is over: then the connection stops for good and the
// app goes to the login screen, as it does on a 401. A user holds a limited number of streams
// (tabs, the CLI ...): beyond it the server answers 429 with Retry-After; the connection says so
// once (`notice`, `onLimited`), polls meanwhile and tries again no sooner than asked.

import { authHeader } from './api';
import { session } from './session.svelte';
import { reconnectDelay, retryAfterMs, SseParser } from './sse';
import { toasts } from './toast.svelte';
import type { Device, Hold, TestRun } from './types';

/** `event: queue` data: the queue changed (an item entered or left it, or estimates moved). */
export interface QueueChange {
  length: number;
  items: { kind: 'run' | 'hold'; id: string; position: number; estimated_start_at: string | null }[];
}

export type LiveMode = 'off' | 'connecting' | 'live' | 'polling';

export interface LiveSubscriber {
  device?: (device: Device) => void;
  deviceDeleted?: (deviceId: string) => void;
  run?: (run: TestRun) => void;
  hold?: (hold: Hold) => void;
  queue?: (change: QueueChange) => void;
  /** A runner changed (registered, its run started or ended, drained); only its id comes. */
  runner?: (runnerId: string) => void;
  /** Re-read what the page shows; called while events are unavailable and after reconnects. */
  poll?: () => void | Promise<void>;
  /** Every event by its name, for streams with events of their own (a run's log). */
  any?: (kind: string, payload: unknown) => void;
}

export interface LiveOptions {
  url?: string;
  pollIntervalMs?: number;
  /** No bytes for this long (keepalives included) means the stream is dead. */
  silenceTimeoutMs?: number;
  fetch?: typeof fetch;
  /** The session is over (a 401, or the stream's `session_ended` event); `message` says why. */
  onUnauthorized?: (message: string) => void;
  /** The server refused the stream: too many open for this user. Called once per episode. */
  onLimited?: (message: string) => void;
}

type Outcome = 'ended' | 'failed' | 'absent' | 'unauthorized' | 'session_ended' | 'limited';

const SESSION_OVER = 'Your session has ended. Please log in again.';
const SESSION_ENDED_TEXT: Record<string, string> = {
  session_ended: SESSION_OVER,
  forbidden: 'Your role may no longer see the lab. Please log in again or ask an admin.',
};

/** What the UI says when a `session_ended` event arrives, from its data. */
export function sessionEndedMessage(data: string): string {
  try {
    const reason = (JSON.parse(data) as { reason?: unknown }).reason;
    return (typeof reason === 'string' && SESSION_ENDED_TEXT[reason]) || SESSION_OVER;
  } catch {
    return SESSION_OVER;
  }
}

export function limitedMessage(retryMs: number): string {
  const seconds = Math.max(1, Math.round(retryMs / 1000));
  return (
    'Live updates are paused: your account has too many live connections open (other tabs, ' +
    `screens or the CLI). Close some; this page refreshes itself meanwhile and tries again in ${seconds} s.`
  );
}

export class LiveEvents {
  mode = $state<LiveMode>('off');
  /** When the last event or keepalive arrived (ms since epoch). */
  lastSignalAt = $state<number | null>(null);
  /** Why live updates are held back (too many streams open), or null. */
  notice = $state<string | null>(null);

  private subscribers = new Set<LiveSubscriber>();
  private controller: AbortController | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly options: Required<Omit<LiveOptions, 'onUnauthorized' | 'onLimited'>> &
    Pick<LiveOptions, 'onUnauthorized' | 'onLimited'>;

  constructor(options: LiveOptions = {}) {
    this.options = {
      url: options.url ?? '/api/events',
      pollIntervalMs: options.pollIntervalMs ?? 5000,
      silenceTimeoutMs: options.silenceTimeoutMs ?? 45_000,
      fetch: options.fetch ?? ((...args) => fetch(...args)),
      onUnauthorized: options.onUnauthorized,
      onLimited: options.onLimited,
    };
  }

  subscribe(subscriber: LiveSubscriber): () => void {
    this.subscribers.add(subscriber);
    return () => this.subscribers.delete(subscriber);
  }

  start(): void {
    if (this.controller) return;
    this.controller = new AbortController();
    void this.loop(this.controller.signal);
  }

  stop(): void {
    this.controller?.abort();
    this.controller = null;
    this.stopPolling();
    this.lastEventId = null;
    this.notice = null;
    this.mode = 'off';
  }

  /** Try to reconnect now instead of waiting out the backoff (e.g. the tab became visible). */
  retryNow(): void {
    this.wakeUp?.();
  }

  emit(kind: string, payload: unknown): void {
    for (const subscriber of [...this.subscribers]) {
      try {
        if (kind === 'device') subscriber.device?.(payload as Device);
        else if (kind === 'device_deleted') subscriber.deviceDeleted?.((payload as { id: string }).id);
        else if (kind === 'run') subscriber.run?.(payload as TestRun);
        else if (kind === 'hold') subscriber.hold?.(payload as Hold);
        else if (kind === 'queue') subscriber.queue?.(payload as QueueChange);
        else if (kind === 'runner') subscriber.runner?.((payload as { id: string }).id);
        subscriber.any?.(kind, payload);
      } catch (error) {
        console.error('live event handler failed', error);
      }
    }
  }

  pollAll(): void {
    for (const subscriber of [...this.subscribers]) {
      void Promise.resolve()
        .then(() => subscriber.poll?.())
        .catch(() => {});
    }
  }

  private startPolling(): void {
    this.mode = 'polling';
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => {
      if (typeof document === 'undefined' || document.visibilityState !== 'hidden') this.pollAll();
    }, this.options.pollIntervalMs);
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  private lastEventId: string | null = null;
  private retryHintMs: number | null = null;
  /** Set by connectOnce for the outcomes that carry more: why the session ended, how long to wait. */
  private endedBecause = SESSION_OVER;
  private limitedForMs = 0;

  private async loop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let opened = 0;
    while (!signal.aborted) {
      if (this.mode !== 'live' && failures === 0) this.mode = 'connecting';
      const resumable = this.lastEventId !== null;
      const outcome = await this.connectOnce(signal, () => {
        // After an outage, or a reconnect that cannot resume by event id, re-read everything.
        if (opened > 0 && (failures > 0 || !resumable)) this.pollAll();
        opened++;
        failures = 0;
        this.stopPolling();
        this.notice = null;
        this.mode = 'live';
      });
      if (signal.aborted) return;
      if (outcome === 'unauthorized' || outcome === 'session_ended') {
        // Reconnecting cannot help: the session is over. Go to the login screen.
        const message = outcome === 'session_ended' ? this.endedBecause : SESSION_OVER;
        this.stop();
        this.options.onUnauthorized?.(message);
        return;
      }
      if (outcome === 'limited') {
        failures++;
        this.startPolling();
        const delay = Math.max(this.limitedForMs, reconnectDelay(failures));
        if (this.notice === null) {
          this.notice = limitedMessage(delay);
          this.options.onLimited?.(this.notice);
        }
        await this.sleep(delay, signal);
        continue;
      }
      if (outcome === 'ended') {
        // The server closes streams after a while; come back as soon as it asked.
        await this.sleep(this.retryHintMs ?? 2000, signal);
        continue;
      }
      failures++;
      this.startPolling();
      // No event stream on this server: keep polling, and look again only now and then.
      const delay = outcome === 'absent' ? 60_000 : reconnectDelay(failures);
      await this.sleep(delay, signal);
    }
  }

  private async connectOnce(
    signal: AbortSignal,
    onOpen: () => void,
  ): Promise<Outcome> {
    const attempt = new AbortController();
    const abort = () => attempt.abort();
    signal.addEventListener('abort', abort);
    let watchdog: ReturnType<typeof setTimeout> | null = null;
    const feedWatchdog = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(abort, this.options.silenceTimeoutMs);
    };
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeader() };
      if (this.lastEventId !== null) headers['Last-Event-ID'] = this.lastEventId;
      const response = await this.options.fetch(this.options.url, {
        headers,
        cache: 'no-store',
        signal: attempt.signal,
      });
      if (response.status === 401) return 'unauthorized';
      if (response.status === 429) {
        // No sooner than the server asked (at least 5 s if it did not say), never hammering it.
        this.limitedForMs = retryAfterMs(response.headers.get('Retry-After')) ?? 5000;
        return 'limited';
      }
      if (response.status === 404 || response.status === 405) return 'absent';
      if (!response.ok || !response.body) return 'failed';
      onOpen();
      feedWatchdog();
      const parser = new SseParser();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'ended';
        feedWatchdog();
        this.lastSignalAt = Date.now();
        for (const event of parser.feed(value)) {
          if (event.event === 'session_ended') {
            this.endedBecause = sessionEndedMessage(event.data);
            return 'session_ended';
          }
          if (event.id !== null) this.lastEventId = event.id;
          try {
            this.emit(event.event, JSON.parse(event.data));
          } catch {
            console.warn('ignoring a live event that is not JSON', event);
          }
        }
        if (parser.retry !== null) this.retryHintMs = parser.retry;
      }
    } catch {
      return 'failed';
    } finally {
      if (watchdog) clearTimeout(watchdog);
      signal.removeEventListener('abort', abort);
      attempt.abort();
    }
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      this.wakeUp = done;
    });
  }
}

/** The app's one live connection; started once the user is signed in. */
export const live = new LiveEvents({
  onUnauthorized: (message) => session.expire(message),
  onLimited: (message) => toasts.show(message, 'info', 15_000),
});
