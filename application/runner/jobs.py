"""The job a Test Runner receives, parsed from its message (contract version 2).

The message is `application.job_contract.job_payload(run)` plus the `callback` block the
publisher adds. Parsing is strict about what the runner needs and lenient about the rest:
unknown fields are ignored, so additive changes to the contract need no new version."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from application.job_contract import CONTRACT_VERSION
from domain.environments import EnvironmentSnapshot
from domain.errors import DomainError, InvalidValue
from domain.execution import Execution
from domain.test_cases import Criterion, TestCaseSnapshot
from domain.test_runs import DeviceSnapshot


class InvalidJob(DomainError):
    """The message is not a job this runner can execute, and never will be: dead-letter it."""

    code = "invalid_job"


class UnsupportedContractVersion(InvalidJob):
    code = "unsupported_contract_version"


@dataclass(frozen=True)
class Callback:
    """Where and with which credential the runner reports on one run."""

    base_url: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Job:
    run_id: str
    contract_version: int
    created_at: datetime
    deadline: datetime
    parameters: Mapping[str, Any]
    # Each case's parameters are already its defaults overlaid with the run's parameters:
    # data for what the case executes. What it executes is each case's `execution`.
    test_cases: tuple[TestCaseSnapshot, ...]
    environment: EnvironmentSnapshot
    devices: tuple[DeviceSnapshot, ...]
    callback: Callback

    @property
    def timeout_s(self) -> int:
        return sum(case.timeout_s for case in self.test_cases)


@dataclass(frozen=True)
class Cancellation:
    run_id: str
    reason: str = ""


def parse_job(message: bytes | str | Mapping[str, Any]) -> Job:
    """The job in a message body (raw JSON or already decoded); raises InvalidJob."""
    data = _decode(message)
    _check_version(data)
    run_id = _text(data, "run_id")
    try:
        job = Job(
            run_id=run_id,
            contract_version=data["contract_version"],
            created_at=_timestamp(data, "created_at"),
            deadline=_timestamp(data, "deadline"),
            parameters=_object(data, "parameters", required=False),
            test_cases=_non_empty(data, "test_cases", _test_case),
            environment=_environment(_object(data, "environment")),
            devices=_non_empty(data, "devices", _device),
            callback=_callback(_object(data, "callback")),
        )
    except InvalidValue as error:
        # a criterion the domain refuses: the message is broken the same way every time
        raise InvalidJob(f"run {run_id}: {error.message}") from None
    for name, ids in (
        ("test_cases", [case.id for case in job.test_cases]),
        ("devices", [device.id for device in job.devices]),
    ):
        if len(set(ids)) != len(ids):
            raise InvalidJob(f"run {run_id}: {name} lists the same id more than once")
    return job


def parse_cancellation(message: bytes | str | Mapping[str, Any]) -> Cancellation:
    """A control message telling runners a run was cancelled; raises InvalidJob."""
    data = _decode(message)
    _check_version(data)
    reason = data.get("reason")
    return Cancellation(_text(data, "run_id"), reason if isinstance(reason, str) else "")


# -- the pieces ---------------------------------------------------------------------------


def decode_control_message(message: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A control message as a JSON object of this contract version (raw JSON or already
    decoded); raises InvalidJob."""
    data = _decode(message)
    _check_version(data)
    return data


def _decode(message: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    try:
        data = json.loads(message)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidJob(f"the message is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidJob(f"the message must be a JSON object, not {type(data).__name__}")
    return data


def _check_version(data: Mapping[str, Any]) -> None:
    version = data.get("contract_version")
    if version != CONTRACT_VERSION or isinstance(version, bool):
        raise UnsupportedContractVersion(
            f"contract_version {version!r} is not supported; this runner speaks "
            f"version {CONTRACT_VERSION}"
        )


def _field(data: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in data:
        raise InvalidJob(f"{where}{name} is missing")
    return data[name]


def _text(data: Mapping[str, Any], name: str, where: str = "", required: bool = True) -> str:
    if not required and data.get(name) is None:
        return ""
    value = _field(data, name, where)
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidJob(f"{where}{name} must be a non-empty string")
    return value


def _object(
    data: Mapping[str, Any], name: str, where: str = "", required: bool = True
) -> dict[str, Any]:
    if not required and data.get(name) is None:
        return {}
    value = _field(data, name, where)
    if not isinstance(value, dict):
        raise InvalidJob(f"{where}{name} must be an object")
    return value


def _seconds(data: Mapping[str, Any], name: str, where: str, minimum: int) -> int:
    value = _field(data, name, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidJob(f"{where}{name} must be a whole number of at least {minimum}")
    return value


def _timestamp(data: Mapping[str, Any], name: str) -> datetime:
    raw = _text(data, name)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidJob(f"{name} must be an ISO 8601 timestamp, got {raw!r}") from None
    if value.tzinfo is None:
        raise InvalidJob(f"{name} must carry a UTC offset, got {raw!r}")
    return value


def _non_empty(
    data: Mapping[str, Any],
    name: str,
    parse: Callable[[Mapping[str, Any], str], Any],
    where: str = "",
) -> tuple[Any, ...]:
    items = _field(data, name, where)
    if not isinstance(items, list) or not items:
        raise InvalidJob(f"{where}{name} must be a non-empty list")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidJob(f"{where}{name}[{index}] must be an object")
    return tuple(parse(item, f"{where}{name}[{index}].") for index, item in enumerate(items))


def _strings(data: Mapping[str, Any], name: str, where: str) -> dict[str, str]:
    values = _object(data, name, where, required=False)
    if not all(isinstance(v, str) for v in values.values()):
        raise InvalidJob(f"{where}{name} must map names to strings")
    return dict(values)


def _criterion(data: Mapping[str, Any], where: str) -> Criterion:
    """The numbers its condition needs (threshold, min and max, or nominal and percent) are
    checked by Criterion itself; a contract-version-2 job of before the range kinds reads
    as it did."""
    _text(data, "metric", where)
    _text(data, "condition", where)
    _text(data, "unit", where, required=False)
    try:
        return Criterion.from_json(data)
    except InvalidValue as error:
        raise InvalidJob(f"{where}{error.errors[error.field][0]}") from None


def _test_case(data: Mapping[str, Any], where: str) -> TestCaseSnapshot:
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidJob(f"{where}tags must be a list of strings")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidJob(f"{where}version must be a whole number")
    duration_s = _seconds(data, "duration_s", where, 0)
    timeout_s = _seconds(data, "timeout_s", where, 1)
    return TestCaseSnapshot(
        id=_text(data, "id", where),
        version=version,
        name=_text(data, "name", where),
        description=_text(data, "description", where, required=False),
        criteria=_non_empty(data, "criteria", _criterion, where),
        duration_s=duration_s,
        timeout_s=timeout_s,
        parameters=_object(data, "parameters", where, required=False),
        tags=tuple(tags),
        execution=Execution.from_json(_object(data, "execution", where)),
    )


def _environment(data: Mapping[str, Any]) -> EnvironmentSnapshot:
    where = "environment."
    return EnvironmentSnapshot(
        id=_text(data, "id", where),
        name=_text(data, "name", where),
        description=_text(data, "description", where, required=False),
        variables=_strings(data, "variables", where),
    )


def _device(data: Mapping[str, Any], where: str) -> DeviceSnapshot:
    return DeviceSnapshot(
        id=_text(data, "id", where),
        name=_text(data, "name", where),
        model=_text(data, "model", where, required=False),
        serial=_text(data, "serial", where, required=False),
        firmware_version=_text(data, "firmware_version", where, required=False),
        labels=_strings(data, "labels", where),
    )


def _callback(data: Mapping[str, Any]) -> Callback:
    where = "callback."
    base_url = _text(data, "base_url", where).rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise InvalidJob("callback.base_url must be an http:// or https:// URL")
    return Callback(base_url=base_url, token=_text(data, "token", where))
