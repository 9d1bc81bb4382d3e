"""A scripted two-day device history on either test `Lab` (unit: in memory, integration: SQL),
for utilisation per day: the clock starts at 08:00 UTC on day one."""

from __future__ import annotations

from typing import Any

from application.use_cases.devices import SetDeviceStatusRequest
from domain.test_runs import Observation, ResultReport

HOUR = 3600


def script(lab: Any) -> tuple[Any, Any]:
    """m1: available 08-09, in test 09-11, available from then on; m2: available 08-11,
    offline 11 until 02:00 the next day, then in maintenance; the clock ends at 04:00."""
    m1 = lab.add_device("m1", model="EM-340")
    m2 = lab.add_device("m2", model="EM-340")
    case = lab.add_test_case("voltage", criteria=[("voltage", "<=", 240.0)])
    environment = lab.add_environment("bench")
    lab.clock.advance(HOUR)
    run = lab.start([m1], [case], environment)
    lab.clock.advance(2 * HOUR)
    lab.record_result(run.id, [ResultReport(case.id, m1.id, (Observation("voltage", 230.0),))])
    lab.set_device_status(SetDeviceStatusRequest(m2.id, "offline", reason="cable"))
    lab.clock.advance(15 * HOUR)
    lab.set_device_status(SetDeviceStatusRequest(m2.id, "maintenance", reason="recalibrate"))
    lab.clock.advance(2 * HOUR)
    return m1, m2
