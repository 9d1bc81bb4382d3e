"""Test environments: the conditions a run executes under (temperature, network, ...).

An environment's variables reach the runner with every job, and an executor may pass them to
the program it starts as environment variables. So their names follow the portable pattern
`[A-Za-z_][A-Za-z0-9_]*` (at most VARIABLE_NAME_MAX_LENGTH characters), and the names that
change how a program is found, loaded or started are refused (RESERVED_VARIABLE_NAMES, and
any name starting with one of RESERVED_VARIABLE_PREFIXES): an environment describes the test
conditions, it cannot redirect what the runner executes. Names are compared as written
(environment variables are case-sensitive), so `Path` is allowed but `PATH` is not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from domain.editing import apply_edit, refuse_unknown
from domain.errors import InvalidValue
from domain.names import check_text, clean_name, name_key

VARIABLE_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VARIABLE_NAME_MAX_LENGTH = 128
RESERVED_VARIABLE_NAMES = frozenset(
    {
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "BASH_ENV",
        "ENV",
        "IFS",
        "SHELLOPTS",
        "PERL5LIB",
        "NODE_OPTIONS",
        "HOME",
    }
)
# LD_*: the dynamic loader's; DEVICELAB_*: devicelab's own settings (the runner's included)
RESERVED_VARIABLE_PREFIXES = ("LD_", "DEVICELAB_")


def check_variable_name(name: str) -> str:
    """`name` when it may name an environment variable of a test environment."""
    if not isinstance(name, str) or not VARIABLE_NAME_PATTERN.fullmatch(name):
        raise InvalidValue(
            "variables",
            f"variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]* (letters, digits, _)",
        )
    if len(name) > VARIABLE_NAME_MAX_LENGTH:
        raise InvalidValue(
            "variables", f"variable names must be at most {VARIABLE_NAME_MAX_LENGTH} characters"
        )
    if name in RESERVED_VARIABLE_NAMES or name.startswith(RESERVED_VARIABLE_PREFIXES):
        raise InvalidValue(
            "variables",
            f"variable name {name} is reserved: it changes how programs run on the runner",
        )
    return name


@dataclass(frozen=True)
class EnvironmentSnapshot:
    id: str
    name: str
    description: str
    variables: dict[str, str]


@dataclass(eq=False)
class Environment:
    id: str
    name: str
    description: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self.name = clean_name(self.name)
        self.variables = {
            check_variable_name(k): check_text("variables", str(v), f"the value of {k} ")
            for k, v in (self.variables or {}).items()
        }

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    def revise(self, at: datetime, **changes: object) -> None:
        refuse_unknown(changes, {"name", "description", "variables"})
        apply_edit(self, changes, self.__post_init__)
        self.updated_at = at

    def snapshot(self) -> EnvironmentSnapshot:
        return EnvironmentSnapshot(self.id, self.name, self.description, dict(self.variables))
