"""What the lab's data is current as of: the change log's position, for answers that say which
version of the lab they show (the ETags of the lists)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from application.ports import UnitOfWork
from application.ports import UnitOfWorkFactory as UowFactory

T = TypeVar("T")


class ReadLabVersion:
    """The change log's position: it differs after every committed change of a device, run,
    hold, test case or environment, or of the queue. Read it *before* what it versions: an
    answer read afterwards may then be newer than its version (a later request just reads it
    again), never older."""

    def __init__(self, uow: UowFactory) -> None:
        self.uow = uow

    def __call__(self) -> str:
        with self.uow(read_only=True) as uow:
            return uow.changes.position()

    def then_read(
        self, known: Callable[[str], bool], read: Callable[[UnitOfWork], T]
    ) -> tuple[str, T | None]:
        """The position and then, unless the caller already has the answer at that position
        (`known(position)`: its ETag), what `read` reads (else None), in one read-only unit
        of work: a list request opened two (a pool checkout and a unit of work each, about a
        twentieth of a device list request). The position is still read first."""
        with self.uow(read_only=True) as uow:
            position = uow.changes.position()
            if known(position):
                return position, None
            return position, read(uow)
