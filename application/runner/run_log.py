"""How the reference runner sends a run's log and files: lines are batched by time and size
and sent by one thread per job, in the order they were written, while the executor works
(not at the end); files are uploaded as the executor hands them over.

The shipper never blocks the executor and never raises into it: a line too long for the API
is split; a batch devicelab cannot take now (5xx, no connection) is kept and sent with the
next one, up to a bound beyond which the oldest lines are dropped (and counted in a line
that says so); once devicelab says the log is full, or the run is over, nothing more is sent.
`close()` sends what is left, so the log is complete before the result is reported."""

from __future__ import annotations

import logging
import mimetypes
import threading
from datetime import timedelta

from application.ports import Clock
from application.runner.jobs import Callback
from application.runner.ports import CallbackClient, CallbackStatus, RunnerLogLine
from domain.run_logs import MAX_BATCH_LINES, MAX_MESSAGE_CHARS

log = logging.getLogger(__name__)

FLUSH_S = 0.5  # a line waits at most this long before it is sent
BATCH_BYTES = 256 * 1024  # well below the API's body limit (1 MiB by default)
MAX_PENDING_LINES = 20_000  # kept while devicelab cannot take them; then the oldest go
SEND_PATIENCE_S = 10.0  # how long one batch is retried before it waits for the next


def split_message(message: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """A message the API takes: pieces of at most `limit` characters (one for most)."""
    if len(message) <= limit:
        return [message]
    return [message[i : i + limit] for i in range(0, len(message), limit)]


class LogShipper:
    def __init__(
        self,
        callbacks: CallbackClient,
        callback: Callback,
        clock: Clock,
        flush_s: float = FLUSH_S,
        batch_bytes: int = BATCH_BYTES,
        max_pending: int = MAX_PENDING_LINES,
    ) -> None:
        self.callbacks, self.callback, self.clock = callbacks, callback, clock
        self.flush_s, self.batch_bytes, self.max_pending = flush_s, batch_bytes, max_pending
        self._pending: list[RunnerLogLine] = []
        self._pending_bytes = 0
        self._dropped = 0
        self._closed = False
        self._done = False  # devicelab takes no more lines: full, finished, or refused
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="run log", daemon=True)
        self._thread.start()

    def write(
        self,
        level: str,
        message: str,
        device_id: str | None = None,
        test_case_id: str | None = None,
    ) -> None:
        now = self.clock.now()
        with self._wake:
            if self._done or self._closed:
                return
            for piece in split_message(message):
                self._pending.append(RunnerLogLine(now, level, piece, device_id, test_case_id))
                self._pending_bytes += len(piece) + 100
            while len(self._pending) > self.max_pending:
                gone = self._pending.pop(0)
                self._pending_bytes -= len(gone.message) + 100
                self._dropped += 1
            if self._pending_bytes >= self.batch_bytes or len(self._pending) >= MAX_BATCH_LINES:
                self._wake.notify()

    def close(self, timeout_s: float = 15.0) -> None:
        """Send what is left (waiting at most `timeout_s`) and stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout_s)

    def _take_batch(self) -> list[RunnerLogLine]:
        batch, size = [], 0
        if self._dropped:
            note = (
                f"[runner] {self._dropped} log line(s) dropped: devicelab could not take "
                "them in time"
            )
            batch.append(RunnerLogLine(self.clock.now(), "warning", note))
            self._dropped = 0
        while self._pending and len(batch) < MAX_BATCH_LINES:
            cost = len(self._pending[0].message) + 100
            if batch and size + cost > self.batch_bytes:
                break
            line = self._pending.pop(0)
            self._pending_bytes -= cost
            batch.append(line)
            size += cost
        return batch

    def _loop(self) -> None:
        while True:
            with self._wake:
                # gather lines for a while, unless a batch is full already or it is closing
                full = (
                    self._pending_bytes >= self.batch_bytes or len(self._pending) >= MAX_BATCH_LINES
                )
                if not self._closed and not full:
                    self._wake.wait(self.flush_s)
                if self._done or (self._closed and not self._pending and not self._dropped):
                    return
                batch = self._take_batch()
                closing = self._closed
            if batch:
                self._send(batch, closing)

    def _send(self, batch: list[RunnerLogLine], closing: bool) -> None:
        give_up = self.clock.now() + timedelta(seconds=SEND_PATIENCE_S)
        try:
            reply = self.callbacks.logs(self.callback, batch, give_up)
        except Exception:  # a bug in a client: the run goes on without its log
            log.exception("could not send log lines")
            reply = None
        if reply is not None and reply.status is CallbackStatus.ACCEPTED:
            if reply.log_truncated:
                self._stop("the run's log is full")
            return
        if reply is not None and reply.status is CallbackStatus.UNAVAILABLE and not closing:
            with self._wake:  # put back in front, to go with the next batch
                self._pending[:0] = batch
                self._pending_bytes += sum(len(x.message) + 100 for x in batch)
            return
        self._stop(reply.message if reply is not None else "the log client failed")

    def _stop(self, why: str) -> None:
        log.info("run log of %s: sending no more lines (%s)", self.callback.base_url, why)
        with self._wake:
            self._done = True
            self._pending.clear()


class ArtifactUploader:
    """Uploads each file an executor hands over, at once (from the executor's thread: the
    file may be gone once the executor returns); a refusal is written to the run's log."""

    def __init__(
        self,
        callbacks: CallbackClient,
        callback: Callback,
        clock: Clock,
        run_log: LogShipper,
        patience_s: float = 60.0,
    ) -> None:
        self.callbacks, self.callback, self.clock = callbacks, callback, clock
        self.run_log, self.patience_s = run_log, patience_s

    def upload(
        self,
        path: str,
        name: str,
        device_id: str | None = None,
        test_case_id: str | None = None,
    ) -> None:
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        give_up = self.clock.now() + timedelta(seconds=self.patience_s)
        try:
            reply = self.callbacks.upload_artifact(
                self.callback, path, name, content_type, device_id, test_case_id, give_up
            )
        except OSError as error:
            self.run_log.write(
                "warning", f"[runner] artifact {name!r} not uploaded: {error}", device_id
            )
            return
        if reply.status is CallbackStatus.ACCEPTED:
            self.run_log.write("info", f"[runner] artifact {name!r} uploaded", device_id)
        else:
            why = f"{reply.http_status or reply.status.value} {reply.message}".strip()
            self.run_log.write(
                "warning", f"[runner] artifact {name!r} not uploaded: {why}", device_id
            )
