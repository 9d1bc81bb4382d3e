"""An event stream read through the Flask test client, in a thread of its own as a server
would (a request's context belongs to the thread that handles it): opened and begun, then
held unread, read to its end, or dropped by its client."""

from __future__ import annotations

import json
import threading

BOUND_S = 30  # a stream that never notices what it should would run this long, then fail


class Stream:
    """One event stream, opened, read and closed in a thread of its own, as a server would
    (a request's context belongs to the thread that handles it)."""

    def __init__(self, client, max_seconds=BOUND_S, path="/api/events", **headers):
        self.client, self.max_seconds, self.extra_headers = client, max_seconds, headers
        self.path = path
        self.opened, self.go = threading.Event(), threading.Event()
        self.status, self.body, self.text, self.action = None, None, "", "close"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.opened.wait(BOUND_S)

    def _run(self):
        response = self.client.get(
            f"{self.path}?max_seconds={self.max_seconds}",
            headers=self.extra_headers,
            buffered=False,
        )
        try:
            self.status = response.status_code
            if self.status != 200:
                self.body, self.headers = response.get_json(), response.headers
                return
            chunks = iter(response.response)
            assert next(chunks).startswith(b"retry:")  # the stream is open and has begun
            self.opened.set()
            self.go.wait()
            if self.action == "read":
                self.text = b"".join(chunks).decode()
        finally:
            response.close()
            self.opened.set()

    def events(self):
        """Read the stream to its end: the named events in it, with their data."""
        self.action = "read"
        self._finish()
        events = []
        for block in self.text.split("\n\n"):
            fields = dict(
                line.split(": ", 1) for line in block.splitlines() if line and line[0] != ":"
            )
            if "event" in fields:
                events.append((fields["event"], json.loads(fields["data"])))
        return events

    def close(self):
        """The client goes away."""
        self._finish()

    def _finish(self):
        self.go.set()
        self.thread.join(BOUND_S + 10)
        assert not self.thread.is_alive()
