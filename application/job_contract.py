"""The job message a Test Runner receives (contract version 2).

Each device carries the `role` of the request it fills (null for a device named by id): an
optional field, so version 2 stands.

Version 2 added each test case's `execution` and took the execution out of the parameters:
a version 1 runner read `executor` and `command` from them, so it must refuse these messages
rather than run a run's parameters as a command.

The runner's callback credential is not part of the stored message: it is added when the
message is published, so no secret sits in the database."""

from __future__ import annotations

from typing import Any

from domain.test_runs import TestRun

CONTRACT_VERSION = 2
JOB_KIND = "test_run.job"
CANCEL_KIND = "test_run.cancel"
DRAIN_KIND = "runner.drain"  # a runner was drained or undrained
# what goes to every runner on the control exchange (the job queue gets JOB_KIND)
CONTROL_KINDS = (CANCEL_KIND, DRAIN_KIND)


def job_payload(run: TestRun) -> dict[str, Any]:
    return {
        "contract_version": CONTRACT_VERSION,
        "run_id": run.id,
        "created_at": run.created_at.isoformat(),
        "deadline": run.deadline.isoformat(),
        "parameters": dict(run.parameters),
        "test_cases": [
            {
                "id": case.id,
                "version": case.version,
                "name": case.name,
                "description": case.description,
                "duration_s": case.duration_s,
                "timeout_s": case.timeout_s,
                "parameters": dict(case.parameters),
                "tags": list(case.tags),
                "execution": case.execution.as_json(),
                "criteria": [c.as_json() for c in case.criteria],
            }
            for case in run.test_cases
        ],
        "environment": {
            "id": run.environment.id,
            "name": run.environment.name,
            "variables": dict(run.environment.variables),
        },
        "devices": [
            {
                "id": d.id,
                "name": d.name,
                "model": d.model,
                "serial": d.serial,
                "firmware_version": d.firmware_version,
                "labels": dict(d.labels),
                "role": d.role,
            }
            for d in run.devices
        ],
    }


def cancel_payload(run: TestRun) -> dict[str, Any]:
    return {
        "contract_version": CONTRACT_VERSION,
        "run_id": run.id,
        "reason": run.failure_reason,
    }


def drain_payload(runner_id: str, drained: bool, reason: str = "") -> dict[str, Any]:
    """Tells the runner `runner` it is drained (takes no new job) or no longer is. Every
    runner gets it and ignores it unless it is the one named; a runner older than the
    message ignores it as a control message it cannot read."""
    return {
        "contract_version": CONTRACT_VERSION,
        "kind": DRAIN_KIND,
        "runner": runner_id,
        "drained": drained,
        "reason": reason,
    }
