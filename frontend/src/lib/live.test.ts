import { afterEach, describe, expect, it, vi } from 'vitest';
import { limitedMessage, LiveEvents, sessionEndedMessage } from './live.svelte';
import type { Device, TestRun } from './types';

function streamOf(chunks: string[], keepOpen = false): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      if (!keepOpen) controller.close();
    },
  });
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

let live: LiveEvents | null = null;
afterEach(() => {
  live?.stop();
  vi.useRealTimers();
});

describe('LiveEvents', () => {
  it('hands device and run events to subscribers and sends the resume id on reconnect', async () => {
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(
        new Response(
          streamOf([
            'retry: 10\n: stream open\n\n',
            'id: 5\nevent: device\ndata: {"id":"d1","status":"in_test"}\n\n',
            ': keepalive\n\nid: 6\nevent: run\ndata: {"id":"r1","status":"running"}\n\n',
            'id: 7\nevent: device_deleted\ndata: {"id":"d9"}\n\n',
          ]),
          { status: 200 },
        ),
      )
      .mockResolvedValue(new Response(streamOf([], true), { status: 200 }));
    live = new LiveEvents({ fetch: fetchMock });
    const devices: Device[] = [];
    const runs: TestRun[] = [];
    const deleted: string[] = [];
    live.subscribe({ device: (d) => devices.push(d), run: (r) => runs.push(r), deviceDeleted: (id) => deleted.push(id) });
    live.start();
    await until(() => fetchMock.mock.calls.length === 2);
    expect(devices.map((d) => d.status)).toEqual(['in_test']);
    expect(runs.map((r) => r.id)).toEqual(['r1']);
    expect(deleted).toEqual(['d9']);
    expect(fetchMock.mock.calls[1][1].headers['Last-Event-ID']).toBe('7');
    expect(live.mode).toBe('live');
  });

  it('polls subscribers when the server has no event stream', async () => {
    const fetchMock = vi.fn().mockResolvedValue(new Response('{}', { status: 404 }));
    live = new LiveEvents({ fetch: fetchMock, pollIntervalMs: 10 });
    let polls = 0;
    live.subscribe({ poll: () => void polls++ });
    live.start();
    await until(() => polls >= 2);
    expect(live.mode).toBe('polling');
  });

  it('stops and reports a rejected session', async () => {
    const fetchMock = vi.fn().mockResolvedValue(new Response('{}', { status: 401 }));
    const onUnauthorized = vi.fn();
    live = new LiveEvents({ fetch: fetchMock, onUnauthorized });
    live.start();
    await until(() => onUnauthorized.mock.calls.length === 1);
    expect(live.mode).toBe('off');
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('keeps going when a handler throws', async () => {
    live = new LiveEvents({ fetch: vi.fn() });
    const seen: string[] = [];
    live.subscribe({ device: () => { throw new Error('boom'); } });
    live.subscribe({ device: (d) => seen.push(d.id) });
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    live.emit('device', { id: 'd1' });
    expect(seen).toEqual(['d1']);
    expect(error).toHaveBeenCalled();
  });

  it('hands hold and queue events to the subscribers that want them', () => {
    live = new LiveEvents({ fetch: vi.fn() });
    const seen: string[] = [];
    live.subscribe({ hold: (h) => seen.push(`hold ${h.id}`), queue: (q) => seen.push(`queue ${q.length}`) });
    live.subscribe({ run: () => seen.push('run') });
    live.emit('hold', { id: 'h1', status: 'active' });
    live.emit('queue', { length: 2, items: [] });
    expect(seen).toEqual(['hold h1', 'queue 2']);
  });

  it('goes to the login screen when the server ends the stream with session_ended, without reconnecting', async () => {
    const fetchMock = vi.fn().mockResolvedValue(
      new Response(
        streamOf(
          [
            'retry: 10\n: stream open\n\n',
            'id: 5\nevent: device\ndata: {"id":"d1","status":"offline"}\n\n',
            'event: session_ended\ndata: {"reason":"session_ended","message":"your session has ended; sign in again"}\n\n',
          ],
          true, // the server closes after the event; even a stream left open must not be read on
        ),
        { status: 200 },
      ),
    );
    const onUnauthorized = vi.fn();
    live = new LiveEvents({ fetch: fetchMock, onUnauthorized });
    const devices: Device[] = [];
    live.subscribe({ device: (d) => devices.push(d) });
    live.start();
    await until(() => onUnauthorized.mock.calls.length === 1);
    expect(onUnauthorized).toHaveBeenCalledWith('Your session has ended. Please log in again.');
    expect(devices.map((d) => d.id)).toEqual(['d1']);
    expect(live.mode).toBe('off');
    await new Promise((r) => setTimeout(r, 50)); // the retry hint (10 ms) has long passed
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('says why the session ended', () => {
    expect(sessionEndedMessage('{"reason":"forbidden","message":"x"}')).toMatch(/role may no longer/);
    expect(sessionEndedMessage('{"reason":"session_ended"}')).toMatch(/session has ended/);
    expect(sessionEndedMessage('not json')).toMatch(/session has ended/);
  });

  it('on 429 says so once, polls meanwhile and reconnects no sooner than Retry-After', async () => {
    vi.useFakeTimers();
    const limited = () =>
      new Response('{"code":"too_many_streams","message":"too many","errors":{},"retry_after":5}', {
        status: 429,
        headers: { 'Retry-After': '5' },
      });
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(limited())
      .mockResolvedValueOnce(limited())
      .mockResolvedValue(new Response(streamOf(['retry: 10\n: stream open\n\n'], true), { status: 200 }));
    const onLimited = vi.fn();
    const onUnauthorized = vi.fn();
    live = new LiveEvents({ fetch: fetchMock, onLimited, onUnauthorized, pollIntervalMs: 1000 });
    let polls = 0;
    live.subscribe({ poll: () => void polls++ });
    live.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(live.mode).toBe('polling');
    expect(live.notice).toBe(limitedMessage(5000));
    expect(onLimited).toHaveBeenCalledTimes(1);
    expect(onLimited.mock.calls[0][0]).toMatch(/too many live connections/);

    await vi.advanceTimersByTimeAsync(4900); // not before the server said
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(polls).toBeGreaterThanOrEqual(4); // the page kept itself up to date meanwhile
    await vi.advanceTimersByTimeAsync(200);
    expect(fetchMock).toHaveBeenCalledTimes(2); // refused again: no second message
    expect(onLimited).toHaveBeenCalledTimes(1);

    await vi.advanceTimersByTimeAsync(5100);
    expect(fetchMock).toHaveBeenCalledTimes(3);
    expect(live.mode).toBe('live');
    expect(live.notice).toBeNull();
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('backs off on 429 even when Retry-After is missing', async () => {
    vi.useFakeTimers();
    const fetchMock = vi.fn().mockResolvedValue(new Response('{}', { status: 429 }));
    live = new LiveEvents({ fetch: fetchMock });
    live.start();
    await vi.advanceTimersByTimeAsync(4900);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(200);
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });
});
