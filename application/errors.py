"""Errors the use cases raise on top of the domain's own."""

from __future__ import annotations

from domain.errors import DomainError


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier} not found")
        self.kind = kind
        self.identifier = identifier


class AlreadyExists(DomainError):
    code = "already_exists"

    def __init__(
        self, kind: str, field: str, value: str, existing: str | None = None, existing_id: str = ""
    ) -> None:
        """`existing`: the value as the record that has it spells it, when it is not `value`
        letter for letter (names are compared without case, see domain/names.py)."""
        taken_by = existing if existing is not None else value
        which = f" (id {existing_id})" if existing_id else ""
        if taken_by == value:
            message = f"a {kind} with {field} {value!r} already exists{which}"
            detail = f"{value!r} is already taken"
        else:
            message = f"{value!r} is taken: a {kind} with {field} {taken_by!r}{which} exists"
            detail = f"{value!r} is already taken by {taken_by!r}"
        super().__init__(message)
        self.errors = {field: [detail + which]}


class ConcurrentUpdate(DomainError):
    """Someone else changed the same record in the meantime; the caller may retry."""

    code = "concurrent_update"


class InvalidRunCredential(DomainError):
    """A runner callback came without a valid credential for any run (missing, tampered,
    expired)."""

    code = "invalid_run_credential"


class WrongRunCredential(DomainError):
    """A runner callback carried a valid credential, but for another run."""

    code = "wrong_run_credential"


class TooManyStreams(DomainError):
    """The user already holds all the live streams they may; answered 429 with Retry-After."""

    code = "too_many_streams"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"you already have {limit} live streams open (the most one user may); close a "
            f"tab or another client, or try again in {retry_after} seconds"
        )
        self.retry_after = retry_after


class PublishFailed(Exception):
    """The broker did not take a message (unreachable, refused, no confirm in time)."""


class StoreUnavailable(DomainError):
    """The store cannot be used right now: the database is down or restarting, refuses
    connections (`too many clients`), or every pooled connection is busy. Nothing the caller
    sent is wrong; the same request may succeed in a few seconds."""

    code = "store_unavailable"

    def __init__(self, message: str = "the database is unavailable; retry shortly") -> None:
        super().__init__(message)


class TooLarge(DomainError):
    """An upload or a log goes beyond what one file or one run may hold; answered 413."""

    code = "too_large"
