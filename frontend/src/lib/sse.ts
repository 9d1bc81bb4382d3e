// A Server-Sent Events parser for a fetch() body stream. The browser's EventSource cannot send an
// Authorization header, so the live connection reads the stream itself and feeds it here.
// Follows the WHATWG "interpreting an event stream" rules: lines end in CR, LF or CRLF; a blank
// line dispatches; `data` lines join with LF; lines starting with ':' are comments (keepalives).

export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

export class SseParser {
  private buffer = '';
  private eventType = '';
  private data: string[] = [];
  private lastId: string | null = null;
  private hasData = false;
  /** Reconnection delay the server asked for with a `retry:` line, in ms. */
  retry: number | null = null;

  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    const event = this.hasData
      ? { event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastId }
      : null;
    this.eventType = '';
    this.data = [];
    this.hasData = false;
    return event;
  }
}

/** Delay before reconnect attempt `attempt` (1-based): doubling from 1 s, capped, with jitter. */
export function reconnectDelay(attempt: number, random: () => number = Math.random, capMs = 30_000): number {
  const base = Math.min(capMs, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + (random() * base) / 2);
}

/**
 * A Retry-After header in ms: delay-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent
 * or unreadable. Never negative.
 */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  if (!/GMT$/.test(value)) return null; // an HTTP date ends so; Date.parse would take '-3' as a year
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
