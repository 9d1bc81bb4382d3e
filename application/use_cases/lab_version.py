"""What the lab's data is current as of: the change log's position, for answers that say which
version of the lab they show (the ETags of the lists)."""

from __future__ import annotations

from application.ports import UnitOfWorkFactory as UowFactory


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
