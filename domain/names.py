"""What a name (of a device, test case, environment, user) and a label may contain, and when
two names are the same one.

- No control characters (C0, DEL, C1: they break logs, terminals and CSV exports), no
  bidirectional overrides or isolates (U+202A to U+202E, U+2066 to U+2069: they make a name read
  differently from what it is: an override before "fdp.exe" shows "exe.pdf"), and no lone
  surrogates (not text at all). The same holds for label keys and values.
- Names are stored in Unicode NFC, so "é" typed as one character or as "e" plus an accent
  is the same text.
- Two names are the same name when their `name_key`s are equal: NFC, then case folded (so
  "Meter 1", "meter 1" and "METER 1" are one name). The database keeps the key in a column
  with a unique index."""

from __future__ import annotations

import unicodedata

from domain.errors import InvalidValue

NAME_MAX_LENGTH = 200
BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def forbidden_character(text: str) -> str | None:
    """The first character of `text` that no name or label may contain, described; or None."""
    for char in text:
        category = unicodedata.category(char)
        if category == "Cc":
            return f"a control character (U+{ord(char):04X})"
        if char in BIDI_CONTROLS:
            return f"a bidirectional control character (U+{ord(char):04X})"
        if category == "Cs":
            return f"a lone surrogate (U+{ord(char):04X})"
    return None


def check_text(field: str, value: str, what: str = "") -> str:
    """`value` unchanged when it holds no forbidden character, else InvalidValue."""
    problem = forbidden_character(value)
    if problem:
        raise InvalidValue(field, f"{what}must not contain {problem}")
    return value


def clean_name(value: str | None, field: str = "name", max_length: int = NAME_MAX_LENGTH) -> str:
    """A name as it is stored: trimmed, in NFC, not empty, not too long, nothing forbidden."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidValue(field, "must be text")
    check_text(field, value)
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise InvalidValue(field, "must not be empty")
    if len(name) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    return name


def name_key(name: str) -> str:
    """What makes two names the same: NFC, case folded, NFC again (folding may decompose)."""
    folded = unicodedata.normalize("NFC", name.strip()).casefold()
    return unicodedata.normalize("NFC", folded)


def check_labels(labels: dict[str, str]) -> None:
    """Label keys are not empty, and neither keys nor values hold a forbidden character."""
    for key, value in labels.items():
        if not key.strip():
            raise InvalidValue("labels", "label keys must not be empty")
        check_text("labels", key, "label keys ")
        check_text("labels", value, f"the value of label {key!r} ")
