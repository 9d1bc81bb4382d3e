"""Keyset (cursor) pagination: a cursor is the opaque, encoded sort key of the last item."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from domain.errors import InvalidValue

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(kind: str, key: tuple) -> str:
    # the list's kind travels in the cursor so a cursor of one list is refused by another
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str, arity: int) -> tuple | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        key = None  # RecursionError: a made-up cursor of a thousand `[`
    if not (
        isinstance(key, list)
        and len(key) == arity + 1
        and key[0] == kind
        and all(isinstance(k, str) and _storable(k) for k in key)
    ):
        raise InvalidValue("cursor", "is not a cursor this API issued for this list")
    return tuple(key[1:])


def _storable(text: str) -> bool:
    """No cursor this API issued holds a NUL or a lone surrogate (the escapes `\\u0000` and
    `\\udfff` in a made-up one); PostgreSQL could not even compare them with its text."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidValue("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def paginate(
    kind: str,
    fetch: Callable[[int, tuple | None], list[T]],
    key_of: Callable[[T], tuple],
    limit: int | None,
    cursor: str | None,
    arity: int = 2,
) -> Page[T]:
    limit = check_limit(limit)
    rows = fetch(limit + 1, decode_cursor(cursor, kind, arity))
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(kind, key_of(rows[-1])))
    return Page(rows, None)
