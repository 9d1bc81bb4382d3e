"""Many /api/events streams held open at once against a real server, read by one thread.

A crowd of hundreds of streams is read with one selector, not a thread each: the client side
should not be what limits a load test or a benchmark. Each stream is a plain HTTP/1.0 request
(the server then sends the body unchunked and closes it at the end), and every event is kept
with the moment it arrived, for the latency figures of bench/live.py. An event's JSON is parsed
only when asked for, after the run: a thousand streams times every change is more JSON than
one client thread parses while it also has to notice each arrival on time."""

from __future__ import annotations

import functools
import json
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Event:
    id: int | None
    name: str
    text: str  # the event's data as sent
    received_at: float  # time.time() when its last byte arrived

    @functools.cached_property
    def data(self) -> dict:
        return json.loads(self.text)

    @property
    def thing(self) -> tuple[str, str]:
        """The change log's (kind, entity id) this event is about."""
        if self.name == "queue":
            return ("queue", "queue")
        if self.name == "device_deleted":
            return ("device", self.data["id"])
        return (self.name, self.data["id"])


@dataclass
class CrowdStream:
    sock: socket.socket
    status: int | None = None
    opened_at_change: int | None = None  # from the stream's first comment
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    buffer: bytes = b""
    closed: bool = False

    def feed(self, data: bytes, now: float) -> None:
        self.buffer += data
        if self.status is None:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            self.status = int(head.split(b" ", 2)[1])
            self.buffer = rest
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        for block in blocks:
            self._block(block.decode(), now)

    def _block(self, block: str, now: float) -> None:
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                comment = line[1:].strip()
                self.comments.append(comment)
                if comment.startswith("stream open at change "):
                    self.opened_at_change = int(comment.rsplit(" ", 1)[1])
            elif ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
        if "event" in fields:
            event_id = int(fields["id"]) if "id" in fields else None
            self.events.append(Event(event_id, fields["event"], fields["data"], now))


class StreamCrowd:
    """`open(n)` streams with `token`, read in the background until `close()`."""

    def __init__(self, host: str, port: int, token: str, max_seconds: int = 600) -> None:
        self.host, self.port, self.token, self.max_seconds = host, port, token, max_seconds
        self.streams: list[CrowdStream] = []
        self.refusals: list[int | None] = []
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="stream-crowd", daemon=True)
        self._reader.start()

    def open(self, count: int, timeout_s: float = 60, retries: int = 0) -> None:
        """Open `count` more streams and wait until each has begun (its first comment). A
        refused one (429, 503) is tried again a second later, as a client would after its
        Retry-After, up to `retries` times (the refusals are counted in `refusals`); then,
        or with no retries left, a refusal fails."""
        fresh = [self._connect(timeout_s) for _ in range(count)]
        deadline = time.monotonic() + timeout_s
        while True:
            while any(s.opened_at_change is None and not s.closed for s in fresh):
                if time.monotonic() > deadline:
                    statuses = [s.status for s in fresh if s.opened_at_change is None]
                    raise AssertionError(f"streams did not open in time: {statuses}")
                time.sleep(0.05)
            refused = [s for s in fresh if s.status != 200]
            if not refused:
                return
            assert retries > 0, f"streams refused: {[s.status for s in refused]}"
            retries -= 1
            self.refusals.extend(s.status for s in refused)
            with self._lock:
                self.streams = [s for s in self.streams if s not in refused]
            time.sleep(1)
            fresh = [self._connect(timeout_s) for _ in refused]

    def _connect(self, timeout_s: float) -> CrowdStream:
        request = (
            f"GET /api/events?max_seconds={self.max_seconds} HTTP/1.0\r\n"
            f"Host: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        sock.sendall(request)
        sock.setblocking(False)
        stream = CrowdStream(sock)
        with self._lock:
            self.streams.append(stream)
            self._selector.register(sock, selectors.EVENT_READ, stream)
        return stream

    def _read(self) -> None:
        while not self._stop.is_set():
            # epoll: sockets registered by open() while this waits are seen at the next call
            ready = self._selector.select(timeout=0.05) if self._selector.get_map() else []
            if not ready:
                time.sleep(0.01)
                continue
            now = time.time()
            for key, _ in ready:
                stream: CrowdStream = key.data
                try:
                    data = stream.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    stream.feed(data, now)
                else:
                    self._forget(stream)

    def _forget(self, stream: CrowdStream) -> None:
        with self._lock:
            if not stream.closed:
                self._selector.unregister(stream.sock)
                stream.sock.close()
                stream.closed = True

    @property
    def open_streams(self) -> int:
        return sum(1 for s in self.streams if not s.closed)

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=5)
        for stream in list(self.streams):
            self._forget(stream)
