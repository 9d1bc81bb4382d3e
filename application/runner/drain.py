"""A drained runner takes no new job: what it knows of its drain, and the control messages
that tell it.

The runner learns that it is drained from the control exchange (RabbitMQ: at once) or from
the refusal of its next claim (every transport: 409 `run_claimed` with reason
`runner_drained`). It then stops consuming jobs. It learns that it is undrained from the
control exchange, or, where none reaches it (the embedded transport, a missed message), by
asking again: after `probe_after_s` it takes the next job and its `started` tells. A run it
already executes is not touched: it finishes normally."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from application.job_contract import DRAIN_KIND
from application.runner.execute_job import RUNNER_DRAINED, CancelJob
from application.runner.jobs import InvalidJob, decode_control_message

log = logging.getLogger(__name__)

__all__ = ["RUNNER_DRAINED", "DrainState", "HandleControlMessage"]


class DrainState:
    """Whether this runner takes jobs; safe to use from the consumer and the job threads."""

    def __init__(
        self,
        runner_id: str,
        probe_after_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner_id, self.probe_after_s, self.monotonic = runner_id, probe_after_s, monotonic
        self._drained_at: float | None = None
        self._lock = threading.Lock()

    @property
    def drained(self) -> bool:
        return self._drained_at is not None

    def drain(self, why: str) -> None:
        """Stop taking jobs (again: the time until the next probe starts anew)."""
        with self._lock:
            was_drained, self._drained_at = self.drained, self.monotonic()
        if not was_drained:
            log.warning(
                "runner %s is drained (%s): taking no new jobs; a run in progress finishes",
                self.runner_id,
                why,
            )

    def undrain(self, why: str) -> None:
        with self._lock:
            was_drained, self._drained_at = self.drained, None
        if was_drained:
            log.warning(
                "runner %s is no longer drained (%s): taking jobs again", self.runner_id, why
            )

    def takes_jobs(self) -> bool:
        """Not drained, or drained so long ago that the next job should ask again."""
        with self._lock:
            drained_at = self._drained_at
        return drained_at is None or self.monotonic() - drained_at >= self.probe_after_s


class HandleControlMessage:
    """A message on the control exchange: a cancellation (CancelJob), or a drain of this
    runner (for another runner: ignored)."""

    def __init__(self, cancel: CancelJob, drain: DrainState) -> None:
        self.cancel, self.drain = cancel, drain

    def __call__(self, message: bytes | str | Mapping[str, Any]) -> bool:
        """True when it concerned this runner; raises InvalidJob for a broken message."""
        data = decode_control_message(message)
        if data.get("kind") != DRAIN_KIND:
            return self.cancel(data)
        runner, drained = data.get("runner"), data.get("drained")
        if not isinstance(runner, str) or not isinstance(drained, bool):
            raise InvalidJob("a drain message names its runner and says drained true or false")
        if runner != self.drain.runner_id:
            return False
        reason = data.get("reason")
        why = "an admin said so" + (f": {reason}" if isinstance(reason, str) and reason else "")
        if drained:
            self.drain.drain(why)
        else:
            self.drain.undrain(why)
        return True
