"""`DEVICELAB_WORKER_CLASS=split` (opt-in while it is measured; docs/performance.md): threaded workers for the REST API, gevent
workers for the live streams, behind one port.

Why: a live stream lasts minutes and must not hold an OS thread, so streams need the gevent
worker; but the gevent worker serves REST reads at about two thirds of the threaded worker's
rate on these machines, and a REST request in it waits behind the fan-out of every change to
every stream the same process holds (gevent does not preempt). docs/performance.md has the
measurements. Here the REST requests never share a process with the streams.

How: one gunicorn master runs `DEVICELAB_WORKERS` threaded workers (`RestWorker`) and
`DEVICELAB_STREAM_WORKERS` gevent workers (`StreamWorker`). Only the threaded ones accept on
the public port. When one reads a request for a stream path (`/api/events`, a run's
`/logs/stream`), it does not serve it: it sends the client's socket, with the request's head
as read, to the stream workers over a Unix socket pair the master made before forking
(SCM_RIGHTS), and forgets the connection without closing it on the client. A stream worker
takes it, replays the head to gunicorn's parser and serves the request (and any request that
follows on that connection) with the same app. The URL space, Last-Event-ID, the session
re-check and the per-user cap are untouched: it is the same app, the same request.

If no stream worker takes a connection in time (every one of them full or restarting), the
client gets 503 with Retry-After, in the API's error shape; a head too large to pass gets 431.
While a stream worker restarts, the hand-offs wait in the socket pair (the kernel keeps the
descriptors in flight) and its replacement picks them up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

from gunicorn import util
from gunicorn.arbiter import Arbiter

from entrypoints.gunicorn_worker import (
    JsonErrorsGeventWorker,
    JsonErrorsWorker,
    is_stream_path,
    json_error_response,
)

# The largest request head a threaded worker passes on (request line, headers and whatever
# the client sent after them). A stream request from a browser or the CLI is about 1 kB.
MAX_HANDOFF_BYTES = 64 * 1024
# How long a threaded worker waits for room in the socket pair before it answers 503.
HANDOFF_TIMEOUT_S = 5.0
RETRY_AFTER_S = 2


def handoff_pair() -> tuple[socket.socket, socket.socket]:
    """(the end the threaded workers send on, the end the stream workers receive on).
    SOCK_SEQPACKET: each hand-off is one message, whole or not at all, whichever worker
    process sends it and whichever takes it."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def request_head(req) -> bytes:
    """The request line and headers of a request gunicorn has parsed, as bytes a parser reads
    back to the same request (header names come back upper-cased, which HTTP ignores)."""
    major, minor = req.version
    lines = [f"{req.method} {req.uri} HTTP/{major}.{minor}"]
    lines += [f"{name}: {value}" for name, value in req.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HandOffRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def hand_off(outbox: socket.socket, client: socket.socket, head: bytes) -> None:
    """Pass `client` and the bytes already read from it to a stream worker."""
    if len(head) > MAX_HANDOFF_BYTES:
        raise HandOffRefused(
            431,
            "headers_too_large",
            f"the request headers of a stream are limited to {MAX_HANDOFF_BYTES} bytes",
        )
    try:
        socket.send_fds(outbox, [head], [client.fileno()])
    except OSError:  # full until the timeout, or the kernel's limit on descriptors in flight
        raise HandOffRefused(
            503, "streams_unavailable", "no stream worker took the stream in time; retry"
        ) from None


class ReplayedSocket:
    """A client socket whose first reads return the bytes another process already read."""

    def __init__(self, sock, already_read: bytes) -> None:
        self._sock, self._pending = sock, already_read

    def recv(self, size: int, *flags) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._sock.recv(size, *flags)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class RestWorker(JsonErrorsWorker):
    """A threaded worker that passes stream requests on to the stream workers."""

    outbox: socket.socket | None = None  # set in the master, before the fork

    def init_process(self):
        self.outbox.settimeout(HANDOFF_TIMEOUT_S)
        super().init_process()

    def handle_request(self, req, conn):
        if self.cfg.is_ssl or conn.is_http2 or not is_stream_path(req.path):
            return super().handle_request(req, conn)
        head = request_head(req) + conn.parser.unreader.take_buffered()
        try:
            hand_off(self.outbox, conn.sock, head)
        except HandOffRefused as refused:
            self.log.warning("could not pass a stream on: %s", refused.message)
            extra = {"Retry-After": str(RETRY_AFTER_S)} if refused.status == 503 else {}
            body = json_error_response(refused.status, refused.code, refused.message, extra)
            with contextlib.suppress(OSError):
                conn.sock.sendall(body)
            return False
        conn.handed_off = True
        return False

    def finish_request(self, conn, fs):
        if getattr(conn, "handed_off", False):
            # a stream worker has the connection now: close this process's descriptor only
            # (gunicorn's graceful close would shut the connection down for both)
            self.nr_conns -= 1
            util.close(conn.sock)
            return
        super().finish_request(conn, fs)


class _Listener:
    """What gunicorn's request handling asks of a listener: the address it is bound to."""

    def __init__(self, name) -> None:
        self.name = name

    def getsockname(self):
        return self.name


class StreamWorker(JsonErrorsGeventWorker):
    """A gevent worker that takes its connections from the threaded workers only."""

    inbox: socket.socket | None = None  # set in the master, before the fork

    def patch(self):
        super().patch()  # gevent's sockets from here on
        from gevent import socket as gevent_socket

        self.listener = _Listener(self.sockets[0].getsockname())
        for public in self.sockets:  # it never accepts on the public port
            public.close()
        self.sockets = []
        self.handoffs = gevent_socket.socket(fileno=os.dup(self.inbox.fileno()))

    def run(self):
        import gevent
        from gevent.pool import Pool

        pool = Pool(self.worker_connections)
        receiver = gevent.spawn(self.receive, pool)
        while self.alive:
            self.notify()
            gevent.sleep(1.0)
        receiver.kill()
        self.handoffs.close()
        stop_by = time.monotonic() + self.cfg.graceful_timeout
        while len(pool) and time.monotonic() < stop_by:
            self.notify()
            gevent.sleep(0.2)
        if len(pool):
            self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
            pool.kill(timeout=1)

    def receive(self, pool) -> None:
        from gevent import socket as gevent_socket

        while True:
            pool.wait_available()  # a connection taken waits for nothing in this process
            try:
                head, fds, flags, _ = socket.recv_fds(self.handoffs, MAX_HANDOFF_BYTES, 1)
            except OSError:
                self.log.exception("could not take a stream from the threaded workers")
                continue
            if not fds:
                continue
            client = gevent_socket.socket(fileno=fds[0])
            for extra in fds[1:]:
                os.close(extra)
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                client.close()
                continue
            try:
                peer = client.getpeername()
            except OSError:  # the client left meanwhile
                client.close()
                continue
            pool.spawn(self.handle, self.listener, ReplayedSocket(client, head), peer)


class SplitArbiter(Arbiter):
    """gunicorn's master, keeping `stream_workers` StreamWorkers and the rest RestWorkers.
    Each role is kept by itself: a dead stream worker is replaced by a stream worker, and a
    reload (HUP) replaces the old workers of each role by new ones of the same role."""

    def __init__(self, app, stream_workers: int) -> None:
        super().__init__(app)
        self.stream_workers = stream_workers
        self.generation = 0  # workers older than this are being replaced by a reload
        RestWorker.outbox, StreamWorker.inbox = handoff_pair()

    def reload(self):
        self.generation = self.worker_age
        super().reload()

    def spawn_worker(self):
        current = [w for w in self.WORKERS.values() if w.age > self.generation]
        streams = sum(isinstance(w, StreamWorker) for w in current)
        self.worker_class = StreamWorker if streams < self.stream_workers else RestWorker
        return super().spawn_worker()

    def manage_workers(self):
        if len(self.WORKERS) < self.num_workers:
            self.spawn_workers()
        wanted = {
            StreamWorker: self.stream_workers,
            RestWorker: self.num_workers - self.stream_workers,
        }
        for role, count in wanted.items():
            mine = sorted((w.age, pid) for pid, w in self.WORKERS.items() if isinstance(w, role))
            for _, pid in mine[: max(0, len(mine) - count)]:
                self.kill_worker(pid, signal.SIGTERM)
