"""Writing a live stream's events straight to its client's socket.

Served the usual way, a change reaches an open stream like this: the process's change reader
wakes the stream's greenlet, which takes the batch, yields its bytes, and the bytes go down
through Flask's and werkzeug's iterators and gunicorn's response as one HTTP chunk. At 1,000
open streams that was the API workers' largest cost beside the REST requests themselves, and
it came in bursts that the REST requests waited behind (docs/performance.md, "The fan-out's
per-stream cost, and the sockets written directly").

A `ChunkWriter` lets the reader write each batch to every such stream's socket itself: one
non-blocking `write` of a chunk framed once for all the streams. What the socket cannot take
at once is kept, in order, and the stream's own greenlet is woken to send it (it may wait for
a slow client; the reader never does). A stream whose client lets more than `limit` bytes pile
up is too far behind: it is closed, as a stream whose queue is full is, and the client
reconnects with Last-Event-ID.

The server decides whether a response may be written this way: gunicorn's gevent worker
(entrypoints/gunicorn_worker) puts a `DIRECT_WRITER` factory into a stream request's WSGI
environ, which gives a writer once the response's head is out, framed as gunicorn frames the
body (chunks for HTTP/1.1, the bytes as they are for HTTP/1.0), on a non-blocking socket;
else None. Each stream has its own writer, used by the process's change reader and by the
stream's own greenlet; gevent switches only where a greenlet waits, so the writer needs no
lock (it is never offered to threads)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable

from application.use_cases.live_updates import RenderedUpdate

# the WSGI environ key under which the server offers a direct writer for a stream response
DIRECT_WRITER = "devicelab.direct_writer"

# bytes a client may let pile up before its stream is closed (at about 1 kB per change, a
# thousand changes; a stream's queue held 1,000 batches)
PENDING_LIMIT = 1 << 20


def chunk(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk."""
    return b"%X\r\n%s\r\n" % (len(data), data)


class _LastFramed:
    """The last batch framed, shared by every writer of the process: the reader hands the
    same batch to all its streams, so it is joined and framed once (each way)."""

    batch: list[RenderedUpdate] | None = None
    data = b""
    framed: bytes | None = None

    @classmethod
    def of(cls, batch: list[RenderedUpdate], chunked: bool) -> bytes:
        if batch is not cls.batch:
            cls.batch, cls.data, cls.framed = batch, RenderedUpdate.joined(batch), None
        if not chunked:
            return cls.data
        if cls.framed is None:
            cls.framed = chunk(cls.data)
        return cls.framed


class ChunkWriter:
    """One response's body, written to its socket as HTTP/1.1 chunks (`chunked`), or as it
    is (an HTTP/1.0 response, which ends when the connection closes). The socket is a gevent
    socket: its descriptor does not block, its `sendall` waits cooperatively."""

    def __init__(self, sock, chunked: bool = True, limit: int = PENDING_LIMIT) -> None:
        self.sock, self.fd, self.chunked, self.limit = sock, sock.fileno(), chunked, limit
        self.pending = bytearray()  # what the socket could not take yet, in order
        self.flushing = False
        self.broken = False  # the client is gone: the stream ends
        self.written_at = time.monotonic()
        self.wake: Callable[[], None] = lambda: None  # the stream's greenlet, to flush

    def deliver(self, batch: list[RenderedUpdate]) -> bool:
        """The change reader's delivery of a batch: never waits. False when the client is
        too far behind (the stream is closed)."""
        return not batch or self.offer(_LastFramed.of(batch, self.chunked))

    def offer(self, framed: bytes) -> bool:
        """Write `framed` now as far as the socket takes it and keep the rest for `flush`;
        False (nothing kept) when more than `limit` bytes would be waiting."""
        if self.broken:
            return True  # the stream ends at its next look; nothing more to write
        if self.pending or self.flushing:
            if len(self.pending) + len(framed) > self.limit:
                return False
            self.pending += framed
            self.wake()
            return True
        try:
            written = os.write(self.fd, framed)
        except BlockingIOError:
            written = 0
        except OSError:  # reset or a broken pipe: the client is gone
            self.broken = True
            self.wake()
            return True
        self.written_at = time.monotonic()
        if written < len(framed):
            self.pending += framed[written:]
            self.wake()
        return True

    def write(self, data: bytes) -> None:
        """The stream's own bytes (a keepalive, its last event), after all that is waiting;
        from the stream's greenlet, which may wait for the client."""
        if self.offer(chunk(data) if self.chunked else data):
            self.flush()
        else:
            self.broken = True

    def abort(self) -> None:
        """End the connection without sending what waits: a chunk cut in two cannot be
        finished, and a client that does not read would hold the stream's last write."""
        self.broken = True
        self.pending.clear()
        with contextlib.suppress(OSError):  # already gone
            self.sock.shutdown(socket.SHUT_RDWR)

    def flush(self) -> None:
        """Send what waits, from the stream's greenlet (it waits for the client as long as
        it must); the reader adds to `pending` meanwhile and does not write itself."""
        if self.flushing:
            return
        self.flushing = True
        try:
            while self.pending and not self.broken:
                data = bytes(self.pending)
                self.pending.clear()
                self.sock.sendall(data)
                self.written_at = time.monotonic()
        except OSError:
            self.broken = True
        finally:
            self.flushing = False
