"""A finished (or running) test run as a JUnit XML report, the format CI servers read.

One <testsuite> per device (its properties: the run, environment, firmware, device and the
run's parameters), one <testcase> per test case on that device. A case that failed has a
<failure> naming each criterion that failed with the measured value and the threshold; an
inconclusive case (nothing measured, or the runner could not measure) is an <error>; a case
without a result is an <error> once the run has ended (failed, aborted, expired) and
<skipped> while the run is still under way. Times are seconds; timestamps are UTC without an
offset, as the common JUnit schema wants them. Characters XML 1.0 cannot carry are replaced."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

from domain.test_cases import TestCaseSnapshot
from domain.test_runs import CaseResult, DeviceSnapshot, Measurement, TestRun, Verdict

# what XML 1.0 cannot hold, even escaped (control characters, lone surrogates, U+FFFE/F)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


def _seconds(result: CaseResult | None) -> float:
    if result is None or result.started_at is None or result.finished_at is None:
        return 0.0
    return max(0.0, (result.finished_at - result.started_at).total_seconds())


def _number(value: float) -> str:
    return f"{value:g}"


def describe_failed(measurement: Measurement) -> str:
    """`voltage = 250 V, expected <= 240 V`; an inconclusive one says why."""
    unit = f" {measurement.unit}" if measurement.unit else ""
    expected = measurement.expected
    if measurement.value is None:
        return f"{measurement.metric}: not measured (expected {expected})"
    text = f"{measurement.metric} = {_number(measurement.value)}{unit}, expected {expected}"
    if measurement.reason:
        text += f" ({measurement.reason})"
    return text


def _properties(suite: ET.Element, run: TestRun, device: DeviceSnapshot) -> None:
    properties = ET.SubElement(suite, "properties")
    values: list[tuple[str, Any]] = [
        ("run.id", run.id),
        ("run.status", run.status.value),
        ("run.verdict", run.verdict.value if run.verdict else ""),
        ("run.started_by", run.started_by),
        ("run.priority", run.priority.value),
        ("environment", run.environment.name),
        ("environment.id", run.environment.id),
        *((f"environment.{k}", v) for k, v in sorted(run.environment.variables.items())),
        ("device.id", device.id),
        ("device.model", device.model),
        ("device.serial", device.serial),
        ("device.role", device.role or ""),
        ("firmware", device.firmware_version),
        *((f"device.label.{k}", v) for k, v in sorted(device.labels.items())),
        *(
            (f"parameter.{k}", v if isinstance(v, str) else json.dumps(v))
            for k, v in sorted(run.parameters.items())
        ),
    ]
    if run.failure_reason:
        values.append(("run.failure_reason", run.failure_reason))
    for name, value in values:
        ET.SubElement(properties, "property", name=_text(name), value=_text(value))


def _outcome(case_element: ET.Element, run: TestRun, result: CaseResult | None) -> str:
    """Adds the case's failure, error or skipped element; returns which it was ('' for a pass)."""
    if result is None:
        if not run.status.finished:
            ET.SubElement(case_element, "skipped", message=f"no result yet (run {run.status})")
            return "skipped"
        why = f"no result: the run {run.status.value}"
        if run.failure_reason:
            why += f" ({run.failure_reason})"
        ET.SubElement(case_element, "error", message=_text(why), type=run.status.value)
        return "error"
    if result.verdict is Verdict.PASS:
        return ""
    if result.verdict is Verdict.MARGINAL:  # a pass: its note goes to system-out
        case_element.set("status", "marginal")
        return ""
    if result.verdict is Verdict.FAIL:
        failed = [describe_failed(m) for m in result.measurements if m.passed is False]
        element = ET.SubElement(
            case_element,
            "failure",
            message=_text("; ".join(failed) or result.message or "failed"),
            type="criteria",
        )
        element.text = _text("\n".join([*failed, result.message]).strip())
        return "failure"
    unmeasured = [describe_failed(m) for m in result.measurements if m.passed is None]
    element = ET.SubElement(
        case_element,
        "error",
        message=_text(result.message or "; ".join(unmeasured) or "inconclusive"),
        type="inconclusive",
    )
    element.text = _text("\n".join([*unmeasured, result.message]).strip())
    return "error"


def _testcase(
    suite: ET.Element, run: TestRun, device: DeviceSnapshot, case: TestCaseSnapshot
) -> tuple[str, float]:
    result = run.results.get((case.id, device.id))
    seconds = _seconds(result)
    element = ET.SubElement(
        suite,
        "testcase",
        name=_text(case.name),
        classname=_text(f"devicelab.{device.name}"),
        time=f"{seconds:.3f}",
    )
    outcome = _outcome(element, run, result)
    if result is not None and outcome == "":
        marginal = [
            f"marginal: {describe_failed(m)}, inside its marginal band"
            for m in result.measurements
            if m.marginal
        ]
        note = "\n".join([*marginal, result.message]).strip()
        if note:
            ET.SubElement(element, "system-out").text = _text(note)
    return outcome, seconds


def junit_xml(run: TestRun) -> bytes:
    root = ET.Element("testsuites", name=_text(f"devicelab run {run.id}"))
    totals = {"tests": 0, "failure": 0, "error": 0, "skipped": 0}
    total_time = 0.0
    for n, device in enumerate(run.devices):
        suite = ET.SubElement(root, "testsuite", name=_text(device.name), id=str(n))
        _properties(suite, run, device)
        counts = {"failure": 0, "error": 0, "skipped": 0}
        suite_time = 0.0
        for case in run.test_cases:
            outcome, seconds = _testcase(suite, run, device, case)
            if outcome:
                counts[outcome] += 1
            suite_time += seconds
        suite.set("tests", str(len(run.test_cases)))
        suite.set("failures", str(counts["failure"]))
        suite.set("errors", str(counts["error"]))
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", f"{suite_time:.3f}")
        if stamp := _timestamp(run.started_at or run.created_at):
            suite.set("timestamp", stamp)
        suite.set("hostname", "devicelab")
        totals["tests"] += len(run.test_cases)
        for key, value in counts.items():
            totals[key] += value
        total_time += suite_time
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failure"]))
    root.set("errors", str(totals["error"]))
    root.set("skipped", str(totals["skipped"]))
    root.set("time", f"{total_time:.3f}")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
