"""Test environments: the conditions a run executes under (temperature, network, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.editing import apply_edit
from domain.errors import InvalidValue


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
        name = (self.name or "").strip()
        if not name:
            raise InvalidValue("name", "must not be empty")
        if len(name) > 200:
            raise InvalidValue("name", "must be at most 200 characters")
        self.name = name
        self.variables = {str(k): str(v) for k, v in (self.variables or {}).items()}
        if any(not key.strip() for key in self.variables):
            raise InvalidValue("variables", "variable names must not be empty")

    def revise(self, at: datetime, **changes: object) -> None:
        unknown = set(changes) - {"name", "description", "variables"}
        if unknown:
            raise InvalidValue(sorted(unknown)[0], "cannot be changed")
        apply_edit(self, changes, self.__post_init__)
        self.updated_at = at

    def snapshot(self) -> EnvironmentSnapshot:
        return EnvironmentSnapshot(self.id, self.name, self.description, dict(self.variables))
