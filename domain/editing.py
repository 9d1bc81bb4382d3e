"""Editing an entity all or nothing: a refused edit leaves it exactly as it was."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


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
