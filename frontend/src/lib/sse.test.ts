import { describe, expect, it } from 'vitest';
import { reconnectDelay, retryAfterMs, SseParser } from './sse';

describe('SseParser', () => {
  it('dispatches named events on a blank line', () => {
    const parser = new SseParser();
    expect(parser.feed('id: 7\nevent: device\ndata: {"id":"d1"}\n\n')).toEqual([{ event: 'device', data: '{"id":"d1"}', id: '7' }]);
  });

  it('reassembles events split anywhere across chunks, CRLF included', () => {
    const parser = new SseParser();
    const text = 'event: run\r\ndata: {"id":"r1",\r\ndata: "status":"running"}\r\n\r\n';
    const events = [];
    for (const char of text) events.push(...parser.feed(char));
    expect(events).toEqual([{ event: 'run', data: '{"id":"r1",\n"status":"running"}', id: null }]);
  });

  it('ignores comments such as keepalives and events without data', () => {
    const parser = new SseParser();
    expect(parser.feed(': keepalive\n\nevent: device\n\n: stream open\n\n')).toEqual([]);
  });

  it('defaults the event name to message, keeps the last id, reads retry', () => {
    const parser = new SseParser();
    const events = parser.feed('retry: 2000\nid: 1\ndata: a\n\ndata: b\n\n');
    expect(events).toEqual([
      { event: 'message', data: 'a', id: '1' },
      { event: 'message', data: 'b', id: '1' },
    ]);
    expect(parser.retry).toBe(2000);
  });

  it('keeps an unfinished event for the next chunk', () => {
    const parser = new SseParser();
    expect(parser.feed('event: device\ndata: x')).toEqual([]);
    expect(parser.feed('y\n\n')).toEqual([{ event: 'device', data: 'xy', id: null }]);
  });
});

describe('reconnectDelay', () => {
  it('doubles from one second up to a cap, with jitter in the upper half', () => {
    expect(reconnectDelay(1, () => 0)).toBe(500);
    expect(reconnectDelay(1, () => 1)).toBe(1000);
    expect(reconnectDelay(3, () => 1)).toBe(4000);
    expect(reconnectDelay(20, () => 1)).toBe(30000);
    expect(reconnectDelay(20, () => 0)).toBe(15000);
  });
});

describe('retryAfterMs', () => {
  it('reads delay-seconds and HTTP dates, and nothing else', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs(' 0 ')).toBe(0);
    const now = Date.parse('2026-12-01T10:00:00Z');
    expect(retryAfterMs('Tue, 01 Dec 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Tue, 01 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(null)).toBeNull();
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs('-3')).toBeNull();
  });
});
