"""How a test case is executed: which executor, and for the command executor which program.

This is part of the test case's definition, versioned with it, and set only by those allowed
to decide what runs on a runner host. A run's parameters never change it: they are data the
executor hands to what it runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidValue

SIMULATE, COMMAND, INFLUXDB = "simulate", "command", "influxdb"
EXECUTORS = (SIMULATE, COMMAND, INFLUXDB)

MAX_COMMAND_ARGUMENTS = 64
MAX_ARGUMENT_LENGTH = 4096

# The parameter names the reference runner of contract version 1 took the execution from.
# They are ordinary data now; the data migration moved them out of test cases' defaults.
FORMER_EXECUTION_PARAMETERS = ("executor", "command", "command_per_device")


def _check_argument(index: int, argument: Any) -> str:
    where = f"command[{index}]"
    if not isinstance(argument, str):
        raise InvalidValue("execution", f"{where} must be a string")
    if len(argument) > MAX_ARGUMENT_LENGTH:
        raise InvalidValue("execution", f"{where} must be at most {MAX_ARGUMENT_LENGTH} characters")
    if "\x00" in argument:
        raise InvalidValue("execution", f"{where} must not contain NUL characters")
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue("execution", f"{where} must be valid Unicode text") from None
    return argument


@dataclass(frozen=True)
class Execution:
    """`executor` "" leaves the choice to the runner (its default executor). `command` is the
    program and its fixed arguments (no shell), only for the command executor; `per_device`
    False runs it once for all the run's devices instead of once per device."""

    executor: str = ""
    command: tuple[str, ...] = ()
    per_device: bool = True

    def __post_init__(self) -> None:
        executor = self.executor
        if not isinstance(executor, str) or executor.strip() not in ("", *EXECUTORS):
            allowed = ", ".join(EXECUTORS)
            raise InvalidValue(
                "execution", f"executor must be one of {allowed}, or empty for the runner default"
            )
        object.__setattr__(self, "executor", executor.strip())
        if isinstance(self.command, str) or not isinstance(self.command, Sequence):
            raise InvalidValue("execution", "command must be a list of strings")
        command = tuple(_check_argument(i, a) for i, a in enumerate(self.command))
        object.__setattr__(self, "command", command)
        if len(command) > MAX_COMMAND_ARGUMENTS:
            raise InvalidValue(
                "execution", f"command must have at most {MAX_COMMAND_ARGUMENTS} parts"
            )
        if not isinstance(self.per_device, bool):
            raise InvalidValue("execution", "per_device must be true or false")
        if self.executor == COMMAND:
            if not command or not command[0].strip():
                raise InvalidValue(
                    "execution", "the command executor needs a command: the program first"
                )
        else:
            if command:
                raise InvalidValue("execution", "only the command executor takes a command")
            if not self.per_device:
                raise InvalidValue(
                    "execution", "only the command executor can run once for all devices"
                )

    @property
    def is_runner_default(self) -> bool:
        return self == Execution()

    def as_json(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "command": list(self.command),
            "per_device": self.per_device,
        }

    @classmethod
    def from_json(cls, data: Any) -> Execution:
        """From its JSON form (as_json), ignoring fields it does not know; None is the
        runner default. Anything else is an InvalidValue."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidValue("execution", "must be an object")
        command = data.get("command") or ()
        if isinstance(command, str) or not isinstance(command, list | tuple):
            raise InvalidValue("execution", "command must be a list of strings")
        return cls(
            executor=data.get("executor") or "",
            command=tuple(command),
            per_device=data.get("per_device", True),
        )
