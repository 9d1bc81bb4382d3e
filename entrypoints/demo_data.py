"""Demo data for a fresh lab: a dozen meters and dongles, a few test cases and environments.

Written through the use cases, exactly as a user would create it."""

from __future__ import annotations

from application.ports import DeviceFilter, NameFilter
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    ExecutionInput,
    ListEnvironments,
    ListTestCases,
    TestCaseInput,
)
from application.use_cases.devices import ListDevices, RegisterDevice, RegisterDeviceRequest

_METERS = [
    (
        "meter-e350-01",
        "Landis+Gyr E350",
        "LG-350-0001",
        "4.2.1",
        "bench A",
        {"type": "meter", "phase": "single"},
    ),
    (
        "meter-e350-02",
        "Landis+Gyr E350",
        "LG-350-0002",
        "4.2.1",
        "bench A",
        {"type": "meter", "phase": "single"},
    ),
    (
        "meter-e350-03",
        "Landis+Gyr E350",
        "LG-350-0003",
        "4.3.0",
        "bench A",
        {"type": "meter", "phase": "single"},
    ),
    (
        "meter-am550-01",
        "Iskra AM550",
        "IS-550-1001",
        "2.8.4",
        "bench B",
        {"type": "meter", "phase": "three"},
    ),
    (
        "meter-am550-02",
        "Iskra AM550",
        "IS-550-1002",
        "2.8.4",
        "bench B",
        {"type": "meter", "phase": "three"},
    ),
    (
        "meter-am550-03",
        "Iskra AM550",
        "IS-550-1003",
        "2.9.0",
        "bench B",
        {"type": "meter", "phase": "three"},
    ),
    (
        "meter-kaifa-01",
        "Kaifa MA309",
        "KF-309-2001",
        "1.4.0",
        "climate chamber",
        {"type": "meter", "phase": "three"},
    ),
    (
        "meter-kaifa-02",
        "Kaifa MA309",
        "KF-309-2002",
        "1.4.0",
        "climate chamber",
        {"type": "meter", "phase": "three"},
    ),
    (
        "dongle-p1-01",
        "P1 WiFi dongle",
        "P1-0001",
        "1.0.7",
        "bench C",
        {"type": "dongle", "radio": "wifi"},
    ),
    (
        "dongle-p1-02",
        "P1 WiFi dongle",
        "P1-0002",
        "1.0.7",
        "bench C",
        {"type": "dongle", "radio": "wifi"},
    ),
    (
        "dongle-lte-01",
        "LTE-M dongle",
        "LTE-0001",
        "0.9.3",
        "bench C",
        {"type": "dongle", "radio": "lte-m"},
    ),
    (
        "dongle-lte-02",
        "LTE-M dongle",
        "LTE-0002",
        "0.9.3",
        "shelf",
        {"type": "dongle", "radio": "lte-m"},
    ),
]

# The demo's cases are simulated whatever the runner's default executor is.
_SIMULATED = ExecutionInput(executor="simulate")

_TEST_CASES = [
    TestCaseInput(
        name="Voltage accuracy",
        description="Measured RMS voltage stays within ±1 % of the 230 V reference.",
        criteria=[
            CriterionInput("voltage_error_pct", "<=", 1.0, "%"),
            CriterionInput("voltage_rms", ">=", 225.0, "V"),
        ],
        duration_s=30,
        timeout_s=120,
        default_parameters={"reference_voltage": 230},
        tags=["accuracy", "smoke"],
        execution=_SIMULATED,
    ),
    TestCaseInput(
        name="Energy register accuracy",
        description="Active energy register error against the reference meter.",
        criteria=[CriterionInput("energy_error_pct", "<=", 0.5, "%")],
        duration_s=60,
        timeout_s=300,
        default_parameters={"load_kw": 2.5},
        tags=["accuracy"],
        execution=_SIMULATED,
    ),
    TestCaseInput(
        name="Telemetry latency",
        description="Readings reach the backend quickly and none are lost.",
        criteria=[
            CriterionInput("latency_p95_ms", "<", 2000, "ms"),
            CriterionInput("dropped_messages", "==", 0),
        ],
        duration_s=45,
        timeout_s=180,
        tags=["connectivity"],
        execution=_SIMULATED,
    ),
    TestCaseInput(
        name="Standby power",
        description="Own consumption of the device with no load.",
        criteria=[CriterionInput("standby_power_w", "<", 2.0, "W")],
        duration_s=20,
        timeout_s=90,
        tags=["power", "smoke"],
        execution=_SIMULATED,
    ),
]

_ENVIRONMENTS = [
    EnvironmentInput(
        "Bench 23 °C",
        "Normal lab bench conditions.",
        {"temperature_c": "23", "network": "lab-wifi"},
    ),
    EnvironmentInput(
        "Climate chamber -25 °C",
        "Cold start and operation.",
        {"temperature_c": "-25", "humidity_pct": "40"},
    ),
    EnvironmentInput(
        "Weak LTE signal", "Attenuated cellular link.", {"network": "lte-m", "rssi_dbm": "-110"}
    ),
]


def lab_is_empty(
    list_devices: ListDevices, list_test_cases: ListTestCases, list_environments: ListEnvironments
) -> bool:
    return not (
        list_devices(DeviceFilter(), limit=1).items
        or list_test_cases(NameFilter(), limit=1).items
        or list_environments(NameFilter(), limit=1).items
    )


def seed_demo(
    register_device: RegisterDevice,
    create_test_case: CreateTestCase,
    create_environment: CreateEnvironment,
) -> dict[str, int]:
    for name, model, serial, firmware, location, labels in _METERS:
        register_device(
            RegisterDeviceRequest(
                name=name,
                model=model,
                serial=serial,
                firmware_version=firmware,
                location=location,
                labels=labels,
                offline=name == "dongle-lte-02",
                actor="demo seed",
            )
        )
    for case in _TEST_CASES:
        # the lab's operator seeds the demo: as an admin would, setting how cases execute
        create_test_case(case, may_define_execution=True)
    for environment in _ENVIRONMENTS:
        create_environment(environment)
    return {
        "devices": len(_METERS),
        "test_cases": len(_TEST_CASES),
        "environments": len(_ENVIRONMENTS),
    }
