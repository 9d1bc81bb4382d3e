"""Builds a run history over firmware versions on either test `Lab` (unit: in memory,
integration: SQL): flash a device, run a case on it with a measured voltage, repeat."""

from __future__ import annotations

from typing import Any

from application.use_cases.catalog import CriterionInput
from domain.test_runs import Observation, ResultReport


class FirmwareHistory:
    """Two EM-340 meters and one EM-24, a voltage case (voltage <= 240 V) and a current case
    (current <= 16 A, marginal from 15 A), one environment; `run` completes a run and moves
    the clock on."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.meter = lab.add_device("meter-1", model="EM-340", firmware_version="1.0.0")
        self.spare = lab.add_device("meter-2", model="EM-340", firmware_version="1.0.0")
        self.other = lab.add_device("em24-1", model="EM-24", firmware_version="1.0.0")
        self.voltage = lab.add_test_case("voltage", criteria=[("voltage", "<=", 240.0)])
        self.current = lab.add_test_case(
            "current", criteria=[CriterionInput("current", "<=", 16.0, marginal={"min": 15.0})]
        )
        self.environment = lab.add_environment("bench A")

    def flash(self, device: Any, firmware: str) -> None:
        self.lab.update_device(device.id, {"firmware_version": firmware})

    def run(
        self,
        firmware: str,
        voltage: float | None = 230.0,
        device: Any = None,
        current: float | None = None,
    ) -> str:
        """One completed run of the voltage case (and the current case, given `current`) on
        `device` (the first meter) flashed with `firmware`."""
        device = device or self.meter
        self.flash(device, firmware)
        cases = [self.voltage] + ([self.current] if current is not None else [])
        run = self.lab.start([device], cases, self.environment)
        observations = {"voltage": voltage, "current": current}
        reports = [
            ResultReport(
                case.id,
                device.id,
                tuple(
                    Observation(c.metric, observations[c.metric])
                    for c in case.criteria
                    if observations[c.metric] is not None
                ),
            )
            for case in cases
        ]
        self.lab.record_result(run.id, reports)
        self.lab.clock.advance(300)
        return run.id
