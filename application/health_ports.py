"""Where health-check designations are kept: a repository of the lab's unit of work
(`uow.health_checks`)."""

from __future__ import annotations

from typing import Protocol

from domain.health_checks import HealthCheck


class HealthCheckRepository(Protocol):
    def add(self, check: HealthCheck) -> None: ...
    def update(self, check: HealthCheck) -> None:
        """Refused (ConcurrentUpdate) when it changed since it was read."""
        ...

    def remove(self, check: HealthCheck) -> None: ...
    def get(self, check_id: str) -> HealthCheck | None: ...
    def list(self) -> list[HealthCheck]:
        """Every designation, by name (a lab has a handful)."""
        ...

    def checking_device_ids(self) -> set[str]:
        """The devices that have a health-check run waiting or running: none gets a second."""
        ...
