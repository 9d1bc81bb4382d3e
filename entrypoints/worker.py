"""The background worker: outbox relay, run reaper, hold expiry, scheduler, job re-offer,
offline detection, health checks and housekeeping.

One loop, several duties at their own pace. A failing duty (database or broker away) is
logged and retried with a growing pause; it never stops the others or the process. Several
workers may run at once: outbox claims and row locks keep them from doing anything twice."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("devicelab.worker")


@dataclass
class Duty:
    name: str
    action: Callable[[], object]
    interval_s: float
    next_at: float = 0.0
    failures: int = 0
    last_error: str = field(default="", repr=False)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def run(self, now: float) -> object:
        try:
            outcome = self.action()
        except Exception as error:
            self.failures += 1
            pause = min(self.interval_s * 2**self.failures, 30.0)
            message = f"{type(error).__name__}: {error}"
            if message != self.last_error:
                log.warning("%s failed (%s); retrying in %.1f s", self.name, message, pause)
            self.last_error = message
            self.next_at = now + pause
            return None
        if self.failures:
            log.info("%s works again after %d failed attempts", self.name, self.failures)
        self.failures, self.last_error = 0, ""
        # a full batch means more is waiting: go again at once
        self.next_at = now if getattr(outcome, "more", False) else now + self.interval_s
        return outcome


class Worker:
    def __init__(self, duties: list[Duty]) -> None:
        self.duties = duties
        self.stopping = threading.Event()

    def run(self) -> None:
        log.info("worker started: %s", ", ".join(d.name for d in self.duties))
        while not self.stopping.is_set():
            now = time.monotonic()
            for duty in self.duties:
                if duty.due(now):
                    outcome = duty.run(now)
                    _log_outcome(duty.name, outcome)
            wait = min(d.next_at for d in self.duties) - time.monotonic()
            self.stopping.wait(min(max(wait, 0.005), 1.0))
        log.info("worker stopped")

    def stop_on_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())


def _log_outcome(name: str, outcome: object) -> None:
    sent = getattr(outcome, "sent", 0)
    failed = getattr(outcome, "failed", 0)
    if sent or failed:
        log.info(
            "%s: %d sent, %d waiting for the broker %s",
            name,
            sent,
            failed,
            getattr(outcome, "error", ""),
        )
    elif isinstance(outcome, list) and outcome:
        log.info("%s: %s", name, ", ".join(map(str, outcome)))


def _scheduling_pass(schedule, estimate=None):
    """The pass, then (if given) the queue's estimated starts: they depend on what the pass
    booked, and a failing estimate must not count as a failed pass."""

    def run() -> list[str]:
        outcome = schedule()
        lines = [
            *(f"started {i}" for i in outcome.started),
            *(f"hold active {i}" for i in outcome.holds_started),
            *(f"queue timeout {i}" for i in outcome.timed_out),
            *(f"unsatisfiable {i}" for i in outcome.unsatisfiable),
        ]
        if estimate is not None:
            try:
                estimated = estimate()
            except Exception as error:
                log.warning("estimating the queue failed (%s: %s)", type(error).__name__, error)
            else:
                if estimated.written:
                    lines.append(f"estimates moved for {len(estimated.written)} waiting")
        return lines

    return run


def _webhook_pass(container):
    """Events from the change feed into deliveries, then the due deliveries sent."""
    dispatch, deliver = container.dispatch_webhook_events(), container.deliver_webhooks()
    expiring = container.announce_expiring_holds()

    def run() -> list[str]:
        made = dispatch() + expiring()
        outcomes = deliver()
        lines = [f"{made} webhook deliveries queued"] if made else []
        lines += [f"webhook {o.delivery_id} {o.status.value} {o.error}".rstrip() for o in outcomes]
        return lines

    return run


def _plan_pass(container):
    """Test plans: cron slots due and firmware sightings start plan runs; plan runs whose
    runs have all finished get their verdict."""
    fire_cron, fire_firmware = container.fire_cron_triggers(), container.fire_firmware_triggers()
    settle = container.settle_plan_runs()

    def run() -> list[str]:
        return fire_cron() + fire_firmware() + settle()

    return run


def build_worker(container) -> Worker:
    config = container.config
    relay = container.relay_outbox()
    return Worker(
        [
            Duty("outbox relay", relay, config.relay_interval_s()),
            Duty("run reaper", container.expire_overdue_runs(), config.reaper_interval_s()),
            # holds past their expiry end and free their devices (then the queue moves)
            Duty("hold expiry", container.expire_holds(), config.reaper_interval_s()),
            # books devices a missed pass left free, ends runs and holds past their queue
            # timeout, and estimates when the waiting ones start
            Duty(
                "scheduler",
                _scheduling_pass(container.schedule_waiting_runs(), container.estimate_queue()),
                config.scheduler_interval_s(),
            ),
            Duty(
                "job re-offer",
                container.reoffer_abandoned_jobs(),
                config.reaper_interval_s(),
            ),
            Duty(
                "offline detection",
                container.mark_silent_devices_offline(),
                config.reaper_interval_s(),
            ),
            # a health-check run on each device whose check is due (ahead of normal work)
            Duty(
                "health checks",
                container.start_due_health_checks(),
                config.health_check_interval_s(),
            ),
            Duty("housekeeping", container.purge_history(), 3600),
            Duty("webhooks", _webhook_pass(container), config.webhook_interval_s()),
            Duty("test plans", _plan_pass(container), config.plan_interval_s()),
        ]
    )
