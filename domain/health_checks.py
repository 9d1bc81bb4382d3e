"""Health-check designations: a test case the worker runs by itself on every matching device
(by model, by labels, or both), every so many hours and/or every so many runs, and when the
device comes back into service from maintenance or offline.

A device's health-check run holds every designation that matches it (in name order), in the
environment of the first of them: one health check per device at a time, so that the queue
never holds two checks of one device and a device is judged by all its checks at once. What
makes a check due is kept on the device (domain.devices: when the last check started, the
runs since, whether it came back into service), so a check is due by the strictest of the
designations that match it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.devices import Device, DeviceStatus, ServiceState
from domain.editing import apply_edit, refuse_unknown
from domain.errors import InvalidValue
from domain.names import check_labels, check_text, clean_name

MAX_EVERY_HOURS = 24 * 366
MAX_EVERY_RUNS = 100_000
HEALTH_CHECK_ACTOR = "health-check"


@dataclass(eq=False)
class HealthCheck:
    id: str
    name: str
    test_case_id: str
    environment_id: str
    model: str = ""  # empty: any model
    labels: dict[str, str] = field(default_factory=dict)
    every_hours: float | None = None
    every_runs: int | None = None
    after_service: bool = True  # when the device comes back from maintenance or offline
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        for name in ("test_case_id", "environment_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidValue(name, "is required")
        if not isinstance(self.model, str):
            raise InvalidValue("model", "must be text")
        self.model = self.model.strip()
        check_text("model", self.model)
        if not isinstance(self.labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()
        ):
            raise InvalidValue("labels", "label keys and values must be text")
        check_labels(self.labels)
        if not self.model and not self.labels:
            raise InvalidValue("model", "designate the devices by model, by labels or both")
        hours = self.every_hours
        if hours is not None and (
            isinstance(hours, bool)
            or not isinstance(hours, int | float)
            or not math.isfinite(hours)
            or not 0 < hours <= MAX_EVERY_HOURS
        ):
            raise InvalidValue("every_hours", f"must be more than 0 and at most {MAX_EVERY_HOURS}")
        runs = self.every_runs
        if runs is not None and (
            isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_EVERY_RUNS
        ):
            raise InvalidValue("every_runs", f"must be a whole number from 1 to {MAX_EVERY_RUNS}")
        if not isinstance(self.after_service, bool):
            raise InvalidValue("after_service", "must be true or false")
        if hours is None and runs is None and not self.after_service:
            raise InvalidValue(
                "every_hours", "say when it runs: every_hours, every_runs or after_service"
            )

    def matches(self, device: Device) -> bool:
        if self.model and device.model != self.model:
            return False
        return all(device.labels.get(k) == v for k, v in self.labels.items())

    def due_because(self, device: Device, now: datetime) -> str | None:
        """Why this designation wants the device checked now, or None."""
        if self.after_service and device.health_check_owed:
            return "back in service"
        if self.every_hours is not None and (
            device.health_checked_at is None
            or now - device.health_checked_at >= timedelta(hours=self.every_hours)
        ):
            return f"every {self.every_hours:g} hours"
        if self.every_runs is not None and device.runs_since_health_check >= self.every_runs:
            return f"every {self.every_runs} runs"
        return None

    def update(self, at: datetime, **changes: object) -> None:
        allowed = {
            "name",
            "test_case_id",
            "environment_id",
            "model",
            "labels",
            "every_hours",
            "every_runs",
            "after_service",
        }
        refuse_unknown(changes, allowed)
        apply_edit(self, changes, self.__post_init__)
        self.updated_at = at


@dataclass(frozen=True)
class DueCheck:
    """A device to check now: the designations that match it (first one's environment), and
    why it is due."""

    device: Device
    checks: tuple[HealthCheck, ...]
    reason: str

    @property
    def test_case_ids(self) -> list[str]:
        return list(dict.fromkeys(c.test_case_id for c in self.checks))

    @property
    def environment_id(self) -> str:
        return self.checks[0].environment_id


def due_checks(
    designations: Iterable[HealthCheck],
    devices: Iterable[Device],
    checking: set[str],
    now: datetime,
) -> list[DueCheck]:
    """The devices whose health check is due now. `checking`: devices that already have a
    health-check run waiting or running (never a second one). Only devices in service are
    checked (a bad one too: a passing check is how it comes back); one in maintenance,
    offline or retired is checked when it comes back."""
    designations = sorted(designations, key=lambda c: (c.name, c.id))
    due = []
    for device in devices:
        if device.id in checking or device.service_state is not ServiceState.IN_SERVICE:
            continue
        if device.status is DeviceStatus.RETIRED:
            continue
        matching = tuple(c for c in designations if c.matches(device))
        reasons = [r for r in (c.due_because(device, now) for c in matching) if r]
        if reasons:
            due.append(DueCheck(device, matching, reasons[0]))
    return due
