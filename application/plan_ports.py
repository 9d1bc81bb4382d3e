"""The ports test plans need: plans, plan runs and the firmware sightings the triggers act
on, kept in the lab's unit of work (`uow.plans`, `uow.plan_runs`, `uow.firmware_sightings`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.devices import Device
from domain.plans import PlanRun, TestPlan


@dataclass(frozen=True)
class FirmwareSighting:
    """A device reported a firmware version other than the one it had: written in the
    transaction of that heartbeat or telemetry report (an outbox of sightings), and taken up
    by the worker's new-firmware trigger."""

    id: str
    device_id: str
    firmware_version: str
    seen_at: datetime

    @classmethod
    def of_report(cls, device: Device, before: str, at: datetime) -> FirmwareSighting | None:
        """The sighting of a report that left `device` with firmware other than `before`
        (None when it brought nothing new), made after the device was stored: its id is the
        device and the row version that write gave it, unique without an id generator."""
        version = device.firmware_version
        if not version or version == before:
            return None
        return cls(f"{device.id}:{device.version}", device.id, version, at)


class PlanRepository(Protocol):
    def add(self, plan: TestPlan) -> None:
        """Raises AlreadyExists when another plan has the name."""
        ...

    def update(self, plan: TestPlan) -> None:
        """Raises ConcurrentUpdate when the plan's content changed since it was read."""
        ...

    def remove(self, plan: TestPlan) -> None: ...
    def get(self, plan_id: str, for_update: bool = False) -> TestPlan | None: ...
    def get_by_name(self, name: str) -> TestPlan | None: ...
    def list(self, text: str | None, limit: int, after: tuple | None) -> list[TestPlan]:
        """By (name, id) ascending, names containing `text`."""
        ...

    def list_triggered(self) -> list[TestPlan]:
        """Every plan with at least one trigger."""
        ...


class PlanRunRepository(Protocol):
    def add(self, plan_run: PlanRun) -> None:
        """Raises AlreadyExists when the plan already has a plan run of the same cause
        (Cause.debounce_key): the unique key that makes triggers fire once."""
        ...

    def update(self, plan_run: PlanRun) -> None: ...
    def get(self, plan_run_id: str) -> PlanRun | None: ...
    def has_cause(self, plan_id: str, debounce_key: str) -> bool: ...
    def list(self, plan_id: str | None, limit: int, after: tuple | None) -> list[PlanRun]:
        """Newest first, by (created_at ISO string, id) descending."""
        ...

    def list_unfinished(self, limit: int) -> list[PlanRun]:
        """Oldest first."""
        ...


class FirmwareSightings(Protocol):
    def add(self, sighting: FirmwareSighting) -> None: ...
    def pending(self, limit: int) -> list[FirmwareSighting]:
        """Not taken up yet, oldest first."""
        ...

    def mark_done(self, sighting_ids: list[str], at: datetime) -> None: ...
