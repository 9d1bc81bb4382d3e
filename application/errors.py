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


class PublishFailed(Exception):
    """The broker did not take a message (unreachable, refused, no confirm in time)."""
