import { afterEach, describe, expect, it, vi } from 'vitest';
import { RunLogFollower } from './run-logs.svelte';

function line(seq: number) {
  return { seq, at: '2026-03-01T08:00:00+00:00', level: 'info', message: `line ${seq}`, device_id: null, test_case_id: null };
}

function sse(text: string): Response {
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

afterEach(() => vi.unstubAllGlobals());

describe('RunLogFollower', () => {
  it('reads the log so far, follows the stream after it and stops at its end', async () => {
    const fetchMock = vi.fn(async (url: string, _init?: RequestInit) => {
      if (url.includes('/logs/stream')) {
        return sse(`id: 3\nevent: log\ndata: ${JSON.stringify(line(3))}\n\nid: 2\nevent: log\ndata: ${JSON.stringify(line(2))}\n\nevent: end\ndata: {}\n\n`);
      }
      return new Response(JSON.stringify({ items: [line(1), line(2)], next_cursor: null }), {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
      });
    });
    vi.stubGlobal('fetch', fetchMock);
    const follower = new RunLogFollower('run-1', fetchMock as unknown as typeof fetch);
    follower.start();
    await until(() => follower.complete);
    expect(follower.lines.map((l) => l.seq)).toEqual([1, 2, 3]);
    const streamCall = fetchMock.mock.calls.find(([url]) => String(url).includes('/logs/stream'))!;
    expect((streamCall[1] as unknown as { headers: Record<string, string> }).headers['Last-Event-ID']).toBe('2');
    follower.stop();
  });
});
