"""The gunicorn workers devicelab's servers run: gunicorn's gevent worker (the default) or its
threaded one, except that the requests gunicorn refuses itself, before the app sees them, are
answered in the API's JSON error shape rather than as an HTML page.

Why gevent: a live event stream is a request that lasts minutes. In the threaded worker each
one holds an OS thread, and 32 open streams took every thread of the default set-up (the REST
API stopped answering). In the gevent worker a request is a greenlet: an open stream waiting
for its next change costs a few kilobytes and no thread, and so does any other endpoint that
streams by sleeping between polls. The worker monkey-patches the standard library when it
starts (sockets, `time.sleep`, `threading`, `queue`, `select`), and `patch_psycopg` makes
psycopg2's waits cooperative, so PostgreSQL queries, the broker (kombu over its socket), Redis
and the auth service's HTTP calls yield to the other requests while they wait. What does not
yield is pure computation and SQLite (its calls run in C without releasing to the hub):
`make_sqlite_cooperative` has a greenlet yield before each SQLite statement outside a write
transaction instead, so one request no longer runs from its first statement to its response
in one turn while the change reader and the streams wait; docs/performance.md has the
measurements.

gunicorn reads the request line and headers and refuses, among others, a request line over
`limit_request_line` (414), headers over `limit_request_field_size` or more than
`limit_request_fields` of them (431) and a request it cannot parse (400). Clients of the API
(the web UI, the CLI, scripts) expect `{"code", "message", "errors"}` with every 4xx.
`devicelab serve` uses these workers; a gunicorn started by hand takes them with
`--worker-class entrypoints.gunicorn_worker.JsonErrorsGeventWorker` (or `.JsonErrorsWorker`,
threaded)."""

from __future__ import annotations

import collections
import gc
import json
import os
import threading
from http import HTTPStatus

import gevent
from gunicorn.http.errors import (
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
)
from gunicorn.workers.ggevent import GeventWorker
from gunicorn.workers.gthread import ThreadWorker

from adapters.http.direct_writes import DIRECT_WRITER, ChunkWriter
from adapters.http.errors import error_body
from application.use_cases.live_streams import StreamEnd

WORKER_CLASSES = {
    "gevent": f"{__name__}.JsonErrorsGeventWorker",
    "gthread": f"{__name__}.JsonErrorsWorker",
    # threaded REST workers and gevent stream workers under one master (split_workers.py)
    "split": "entrypoints.split_workers.RestWorker",
}
# How long an idle client connection stays open. A reverse proxy that keeps connections to
# the servers (deploy/nginx.conf: `keepalive_timeout 60s` in its upstreams) must give up an
# idle one before the server does: otherwise it may send a request on a connection the server
# is closing, gets a reset, and does not retry a POST (a 502). gunicorn's default is 2 s.
KEEPALIVE_S = 75


def refusal(error: BaseException) -> tuple[int, str, str] | None:
    """(status, code, message) of a request gunicorn refuses as the client's fault, or None
    when `error` is not one (the app's own failure: gunicorn answers 500 as usual)."""
    if isinstance(error, InvalidResponseHeader | InvalidResponseHeaderName):
        return None  # a header the app tried to send
    if isinstance(error, LimitRequestLine):
        return 414, "uri_too_long", "the request line (method, path and query) is too long"
    if isinstance(error, LimitRequestHeaders):
        return 431, "headers_too_large", f"the request headers are too large ({error})"
    if isinstance(error, ParseException):
        return 400, "bad_request", f"the request is not valid HTTP ({type(error).__name__})"
    return None


def json_error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> bytes:
    body = json.dumps(error_body(code, message)).encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonRefusals:
    """Answers what gunicorn refuses itself in JSON; mixed into a gunicorn worker class."""

    def handle_error(self, req, client, addr, exc):
        answer = refusal(exc)
        if answer is None:
            return super().handle_error(req, client, addr, exc)
        status, code, message = answer
        self.log.warning("refused a request from %s with %d: %s", (addr or ("",))[0], status, exc)
        try:
            client.sendall(json_error_response(status, code, message))
        except OSError:
            self.log.debug("could not send the %d answer", status)
        return None


class EndsStreamsOnExit:
    """On SIGTERM (a graceful stop: a deploy, a scale-down) gunicorn stops accepting and waits
    up to its graceful timeout for the requests in flight. A live stream never ends by
    itself, so the stop took the whole timeout and then cut every stream without a word.
    Now each open stream is told at once (`: stream closed (server_stopping)`), ends, and
    its client reconnects with Last-Event-ID (to another replica, or to this one restarted);
    the worker stops as soon as the REST requests in flight are done. Mixed into a worker."""

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)
        # not in the signal handler itself: the streams' wake-ups take locks
        self.in_background(end_open_streams, self.wsgi)

    def in_background(self, function, *args) -> None:
        threading.Thread(target=function, args=args, daemon=True).start()


def end_open_streams(app) -> int:
    """Tell every open stream of this process's devicelab app to end (see EndsStreamsOnExit);
    an app without them (the auth service's) has none. The key is the one entrypoints/wsgi.py
    keeps the container under; importing it from there would load the drivers before gevent
    patches them."""
    container = getattr(app, "extensions", {}).get("devicelab.container")
    if container is None:
        return 0
    return container.keep_streams_open().end_all(StreamEnd.SERVER_STOPPING)


class FreezesTheLoadedApp:
    """Once the app is loaded, everything it made so far (modules, classes, the container,
    SQLAlchemy's tables and compiled caches: ~150,000 objects) goes to the collector's
    permanent generation (`gc.freeze`), which its full collections no longer walk. Each of
    those took 102-271 ms of a worker under load (bench read), all requests of the worker
    waiting (a gevent worker's stream greenlets too); frozen, 1-24 ms. Mixed into a worker."""

    def load_wsgi(self):
        super().load_wsgi()
        gc.collect()  # what loading left as garbage is freed, not kept for good
        gc.freeze()


class JsonErrorsWorker(FreezesTheLoadedApp, EndsStreamsOnExit, JsonRefusals, ThreadWorker):
    """gunicorn's threaded worker: a thread per request (DEVICELAB_THREADS of them)."""


# Paths whose requests last as long as the client listens: they never count as running.
# /api/events, and a run's log as it grows (/api/test-runs/{id}/logs/stream).
STREAM_PATHS = ("/api/events",)
STREAM_SUFFIXES = ("/logs/stream",)


def is_stream_path(path: str) -> bool:
    return path.startswith(STREAM_PATHS) or path.endswith(STREAM_SUFFIXES)


# REST requests one gevent worker runs at once by default (DEVICELAB_ACTIVE_REQUESTS); more
# wait their turn (see below).
ACTIVE_REQUESTS = 4


class TakingTurns:
    """At most `size` greenlets inside at once, let in strictly in the order they came: a
    leaving one hands its place to the longest waiting. (gevent's Semaphore lets a newcomer
    take a place that was just freed before the waiter it woke runs, and under a steady load
    some requests waited a second and more behind newer ones.)"""

    def __init__(self, size: int) -> None:
        self.free, self.waiting = size, collections.deque()

    def __enter__(self) -> None:
        if self.free and not self.waiting:
            self.free -= 1
            return
        from gevent.event import Event

        turn = Event()
        self.waiting.append(turn)
        try:
            turn.wait()
        except BaseException:  # killed while waiting: give up the place in line, or the turn
            if turn.is_set():
                self.__exit__()
            else:
                self.waiting.remove(turn)
            raise

    def __exit__(self, *exc_info) -> None:
        if self.waiting:
            self.waiting.popleft().set()  # the place passes on without ever being free
        else:
            self.free += 1


def make_psycopg2_cooperative() -> None:
    """psycopg2 waits for PostgreSQL inside its C code, where gevent cannot switch: one slow
    query would stop every greenlet of the worker. With a wait callback psycopg2 runs each
    connection asynchronously and asks the callback to wait for the socket, which gevent's
    wait_read / wait_write do in the hub (psycopg2's "support for coroutine libraries")."""
    import psycopg2
    from gevent.socket import wait_read, wait_write
    from psycopg2 import extensions

    def wait(connection, timeout=None):
        while True:
            state = connection.poll()
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                wait_read(connection.fileno(), timeout=timeout)
            elif state == extensions.POLL_WRITE:
                wait_write(connection.fileno(), timeout=timeout)
            else:
                raise psycopg2.OperationalError(f"bad state from connection.poll(): {state}")

    extensions.set_wait_callback(wait)


def make_sqlite_cooperative() -> None:
    """sqlite3 runs in C and never returns to gevent's hub: a request on SQLite computed
    from its first statement to its response in one turn, and the greenlets woken meanwhile
    (a live stream's change reader, the streams it hands a change to) waited behind whole
    requests, seconds under load. Now each statement outside a write transaction first lets
    the greenlets that are ready run (`pause_before_sqlite_statements`)."""
    import gevent

    from adapters.persistence.engine import pause_before_sqlite_statements

    pause_before_sqlite_statements(lambda: gevent.sleep(0))


def direct_writer(response) -> ChunkWriter | None:
    """A writer straight to the client's socket for a stream response whose head gunicorn
    has sent, framing the body as gunicorn does (chunks for HTTP/1.1, the bytes as they are
    for HTTP/1.0, whose response ends when the connection closes), if the socket does not
    block (gevent's); otherwise None, and the stream's bytes go through gunicorn as before.
    (adapters/http/direct_writes.py says why.)"""
    if response is None or not response.headers_sent:
        return None
    if not response.chunked and (
        response.response_length is not None or response.req.method == "HEAD"
    ):
        return None  # a body gunicorn counts or drops
    if os.get_blocking(response.sock.fileno()):
        return None
    return ChunkWriter(response.sock, chunked=response.chunked)


class OfferingDirectWrites:
    """The WSGI app, with a `DIRECT_WRITER` in the environ of each stream request (gunicorn
    passes its response's `start_response`, whose response object the writer needs); the
    app's own attributes read through (`end_open_streams` finds the container there)."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if is_stream_path(environ.get("PATH_INFO", "")):
            response = getattr(start_response, "__self__", None)
            environ[DIRECT_WRITER] = lambda: direct_writer(response)
        return self.app(environ, start_response)

    def __getattr__(self, name):
        return getattr(self.app, name)


class JsonErrorsGeventWorker(FreezesTheLoadedApp, EndsStreamsOnExit, JsonRefusals, GeventWorker):
    """gunicorn's gevent worker: a greenlet per request (DEVICELAB_WORKER_CONNECTIONS).

    At most `active_requests` REST requests run at once; the others wait on a semaphore. gevent
    does not preempt: a greenlet computes until it next waits for I/O, and the ready ones take
    their turns in order. With 16 busy REST connections all ready, the change reader of the
    live streams waited behind every one of them at each of its queries, and a change took
    seconds to reach the streams. A few requests at a time keep the CPU as busy (one computes
    while another waits for the database) and the reader's turn comes sooner. Streams are not
    counted: they wait, they do not compute."""

    def patch(self):
        super().patch()  # gevent's monkey.patch_all(), before the app is loaded
        make_psycopg2_cooperative()
        make_sqlite_cooperative()

    active_requests = ACTIVE_REQUESTS

    def in_background(self, function, *args) -> None:
        # the signal arrives in gevent's hub, where nothing may block (a thread's start waits)
        gevent.spawn(function, *args)

    def init_process(self):
        self.running = TakingTurns(self.active_requests)
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        self.wsgi = OfferingDirectWrites(self.wsgi)

    def handle_request(self, listener_name, req, sock, addr):
        if is_stream_path(req.path):
            handled = super().handle_request(listener_name, req, sock, addr)
        else:
            with self.running:
                handled = super().handle_request(listener_name, req, sock, addr)
        if not self.alive:
            # stopping: a connection kept alive would hold the stop for its keep-alive time
            # (gunicorn closes only those whose request began after the stop)
            raise StopIteration("the worker is stopping")
        return handled
