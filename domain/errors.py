"""Errors raised when a domain rule would be broken."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every rule violation; `code` is a stable machine-readable name."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A value object or entity was given data that can never be valid."""

    code = "invalid_value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.errors = {field: [message]}


class InvalidTransition(DomainError):
    """A state machine was asked for a move it does not allow from its current state."""

    code = "invalid_transition"


class DeviceUnavailable(DomainError):
    """One or more devices cannot be reserved because they are not available."""

    code = "device_unavailable"

    def __init__(self, unavailable: dict[str, str], names: dict[str, str] | None = None) -> None:
        # unavailable maps device id -> its current status (in_test, offline, maintenance,
        # retired); names maps device id -> its name, so that people read "Meter 7", not
        # only an id
        self.unavailable = dict(unavailable)
        self.names = {d: (names or {}).get(d, d) for d in self.unavailable}
        listed = ", ".join(
            f"{self.names[d]} ({d}, {status})" if self.names[d] != d else f"{d} ({status})"
            for d, status in self.unavailable.items()
        )
        super().__init__(f"devices not available: {listed}")


class RunAlreadyFinished(DomainError):
    """A report or command arrived for a run that has already ended."""

    code = "run_finished"


class ConflictingReport(DomainError):
    """A runner report contradicts one that was already accepted."""

    code = "conflicting_report"


class RunClaimed(InvalidTransition):
    """Another runner holds a live claim on the run. `retry_after_s` says when the claim
    lapses if that runner stays silent (None: it does not lapse by silence)."""

    code = "run_claimed"

    def __init__(self, run_id: str, runner: str, retry_after_s: float | None) -> None:
        lapse = (
            ""
            if retry_after_s is None
            else f"; its claim lapses in {retry_after_s:.1f} s unless that runner reports again"
        )
        super().__init__(f"run {run_id} is being executed by runner {runner}{lapse}")
        self.runner = runner
        self.retry_after_s = None if retry_after_s is None else max(0.0, retry_after_s)


class RunnerDrained(RunClaimed):
    """An admin drained the runner: it gets no new run. Answered on the path a runner
    already knows (409 `run_claimed` on `started`, without a lapse time: a runner of the
    contract's first releases gives the job back to the queue), with `reason`
    `runner_drained` for runners that know to stop taking jobs."""

    reason = "runner_drained"

    def __init__(self, run_id: str, runner: str, drained_by: str) -> None:
        InvalidTransition.__init__(
            self,
            f"runner {runner} is drained (by {drained_by}) and takes no new run; run {run_id} "
            "stays in the queue for another runner",
        )
        self.runner = runner
        self.retry_after_s = None
