"""Follow one run until it has finished: live through the server's event stream, or by
polling when the stream cannot be had (an older server, a proxy that buffers, a stream limit).

The stream is opened before the run is read, so a change between the two is not missed; a
stream that ends (the server closes it after a while) is reopened from the last event seen.
Each state of the run is handed to `on_run`, each move in the queue to `on_queue`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters.api_client.http import ApiClientError, DevicelabClient, quote

FINISHED = ("completed", "failed", "aborted")
STREAM_S = 300


class WaitTimedOut(Exception):
    def __init__(self, run: dict) -> None:
        super().__init__("the run did not finish in time")
        self.run = run


def finished(run: dict) -> bool:
    return run["status"] in FINISHED


class RunFollower:
    def __init__(
        self,
        client: DevicelabClient,
        on_run: Callable[[dict], None],
        on_queue: Callable[[int | None, int, str | None], None] = lambda *_: None,
        on_fallback: Callable[[str], None] = lambda _: None,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.on_run, self.on_queue = client, on_run, on_queue
        self.on_fallback, self.poll_s, self.clock = on_fallback, poll_s, clock

    def _get(self, run_id: str) -> dict:
        run = self.client.get(f"/api/test-runs/{quote(run_id)}")
        self.on_run(run)
        return run

    def __call__(self, run_id: str, timeout_s: float | None = None) -> dict:
        """The finished run; WaitTimedOut (with the run as last seen) after `timeout_s`."""
        deadline = None if timeout_s is None else self.clock() + timeout_s
        try:
            return self._follow_stream(run_id, deadline)
        except _StreamUnavailable as why:
            self.on_fallback(str(why))
            return self._poll(run_id, deadline)

    def _left(self, deadline: float | None) -> float | None:
        return None if deadline is None else deadline - self.clock()

    def _follow_stream(self, run_id: str, deadline: float | None) -> dict:
        last_event: str | None = None
        run: dict | None = None
        while True:
            left = self._left(deadline)
            if left is not None and left <= 0:
                raise WaitTimedOut(run or self._get(run_id))
            try:
                stream = self.client.events(
                    after=last_event, max_seconds=STREAM_S, read_timeout_s=_read_timeout(left)
                )
                opened = next(stream, None)
            except ApiClientError as error:
                if error.status in (401, 403):
                    raise  # polling would be refused the same way
                raise _StreamUnavailable(str(error)) from None
            if opened is None:
                raise _StreamUnavailable("the server closed the event stream at once")
            if run is None or last_event is None:
                run = self._get(run_id)  # read after the stream is open: nothing missed
            if finished(run):
                stream.close()
                return run
            try:
                for event in stream:
                    last_event = event.id or last_event
                    run = self._handle(event, run_id, run)
                    if finished(run):
                        return run
                    left = self._left(deadline)
                    if left is not None and left <= 0:
                        raise WaitTimedOut(run)
            except ApiClientError:
                pass  # the stream went silent: reopen it from the last event seen
            finally:
                stream.close()

    def _handle(self, event: Any, run_id: str, run: dict) -> dict:
        if event.name == "run":
            data = event.json()
            if data.get("id") == run_id:
                self.on_run(data)
                return data
        elif event.name == "queue" and run["status"] == "waiting":
            data = event.json()
            place = next(
                (i for i in data["items"] if i.get("kind") == "run" and i.get("id") == run_id),
                None,
            )
            if place is not None:
                self.on_queue(place["position"], data["length"], place.get("estimated_start_at"))
        elif event.name == "session_ended":
            raise ApiClientError(event.json().get("message", "session ended"), 401)
        return run

    def _poll(self, run_id: str, deadline: float | None) -> dict:
        while True:
            run = self._get(run_id)
            if finished(run):
                return run
            left = self._left(deadline)
            if left is not None and left <= 0:
                raise WaitTimedOut(run)
            time.sleep(self.poll_s if left is None else max(0.0, min(self.poll_s, left)))


class _StreamUnavailable(Exception):
    pass


def _read_timeout(left: float | None) -> float:
    """Long enough for the server's keepalives, short enough to notice a deadline."""
    return 40.0 if left is None else max(1.0, min(40.0, left + 1.0))
