"""Files a runner leaves with a run: a measurement CSV, a capture, a photo of a display.

An artifact's name is for people (a download's file name, a line in the list): it never
becomes a path, yet a name that looks like one (`../x`, `a/b`, `C:\\x`) is refused outright,
so that nobody downloading it, or a tool unpacking a run's files, is led elsewhere. Its
content type is kept as the runner said; it is served only as a download."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from domain.errors import InvalidValue

MAX_NAME_CHARS = 200
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# type/subtype with optional parameters, as RFC 9110 tokens; nothing a header could break on
_CONTENT_TYPE = re.compile(
    r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,128}"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]{1,64}=(\"[^\"\\\x00-\x1f]{0,128}\"|[A-Za-z0-9!#$&^_.+-]{1,128}))*$"
)


@dataclass(frozen=True)
class Artifact:
    id: str
    run_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    device_id: str | None = None
    test_case_id: str | None = None


def artifact_name(raw: str) -> str:
    """The name as given, if it is a plain file name; InvalidValue otherwise."""
    name = raw.strip()
    if not name:
        raise InvalidValue("name", "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidValue("name", f"at most {MAX_NAME_CHARS} characters")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise InvalidValue("name", "must be a plain file name, not a path")
    if re.match(r"^[A-Za-z]:", name):
        raise InvalidValue("name", "must be a plain file name, not a path")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidValue("name", "must not contain control or invisible format characters")
    return name


def content_type(raw: str | None) -> str:
    if raw is None or not raw.strip():
        return DEFAULT_CONTENT_TYPE
    value = raw.strip()
    if not _CONTENT_TYPE.match(value):
        raise InvalidValue("content_type", "must be a media type such as text/csv")
    return value
