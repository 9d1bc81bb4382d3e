"""Editing an entity all or nothing: a refused edit leaves it exactly as it was."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from domain.errors import InvalidValue


def apply_edit(entity: Any, changes: Mapping[str, Any], validate: Callable[[], None]) -> None:
    before = {key: getattr(entity, key) for key in changes}
    for key, value in changes.items():
        setattr(entity, key, value)
    try:
        validate()
    except Exception:
        for key, value in before.items():
            setattr(entity, key, value)
        raise


def refuse_unknown(changes: Mapping[str, Any], allowed: Collection[str]) -> None:
    """An edit may name only the fields that can be changed; the first other one is refused."""
    unknown = set(changes) - set(allowed)
    if unknown:
        raise InvalidValue(sorted(unknown)[0], "cannot be changed")


def apply_versioned_edit(
    entity: Any, at: datetime, changes: Mapping[str, Any], allowed: Collection[str]
) -> Any | None:
    """Edit a versioned entity (test case, plan) all or nothing: a real change, judged by its
    snapshot, bumps the version so runs can tell versions apart. Returns the snapshot from
    before the edit when something changed, else None."""
    refuse_unknown(changes, allowed)
    before = entity.snapshot()
    apply_edit(entity, changes, entity.__post_init__)
    if entity.snapshot() == before:
        return None
    entity.version += 1
    entity.updated_at = at
    return before
