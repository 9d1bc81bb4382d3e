"""`devicelab logs purge --older-than 90d` on the server's database (SQLite under the data
directory): it purges the logs of the runs that finished before the cutoff, prints each run
and a total, keeps the newer and the running runs' logs, and finds nothing the second time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from adapters.clocks import SettableClock
from application.run_log_ports import LogFilter
from application.use_cases.catalog import CriterionInput, EnvironmentInput, TestCaseInput
from application.use_cases.devices import RegisterDeviceRequest
from application.use_cases.test_runs import StartTestRunRequest
from domain.run_logs import LogLevel, LogLine
from entrypoints import cli
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DEVICELAB_SECRET_KEY", "cli-tests-secret-key-0123456789-abcdefghij")
    assert CliRunner().invoke(cli.main, ["db", "upgrade"]).exit_code == 0


def _container():
    return create_container(Settings.from_env())


def _runs_with_logs(finished_days_ago: list[int | None]) -> list[str]:
    """One run per entry, with two lines, finished so many days ago (None: still running)."""
    now = datetime.now(UTC)
    container = _container()
    try:
        environment = container.create_environment()(EnvironmentInput(name="bench"))
        case = container.create_test_case()(
            TestCaseInput(name="v", criteria=[CriterionInput("voltage", "<=", 240.0)])
        )
        run_ids = []
        for n, days in enumerate(finished_days_ago):
            ago = now - timedelta(days=days or 0)
            container.clock.override(providers.Object(SettableClock(ago)))
            device = container.register_device()(RegisterDeviceRequest(name=f"meter-{n}"))
            run = container.start_test_run()(
                StartTestRunRequest([case.id], environment.id, device_ids=[device.id])
            )
            container.record_run_started()(run.id)
            lines = [LogLine(ago, LogLevel.INFO, f"line {k}") for k in (1, 2)]
            container.append_run_logs()(run.id, lines)
            if days is not None:
                container.cancel_test_run()(run.id, by="alice")
            run_ids.append(run.id)
        return run_ids
    finally:
        container.unwire()
        dispose_engines(container)


def _log(run_id: str) -> list[str]:
    container = _container()
    try:
        return [line.message for line in container.export_run_log()(run_id, LogFilter())]
    finally:
        container.unwire()
        dispose_engines(container)


def test_purge_removes_the_old_runs_lines_and_says_what(env):
    old, newer, running = _runs_with_logs([100, 10, None])

    result = CliRunner().invoke(cli.main, ["logs", "purge", "--older-than", "90d"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{old}\t2\t12",
        "purged the logs of 1 run(s), 2 lines, 12 bytes",
    ]
    (marker,) = _log(old)
    assert "removed 2 lines" in marker and "more than 90 days ago" in marker
    assert _log(newer) == _log(running) == ["line 1", "line 2"]

    again = CliRunner().invoke(cli.main, ["logs", "purge", "--older-than", "90d"])
    assert again.output.splitlines() == ["purged the logs of 0 run(s), 0 lines, 0 bytes"]


@pytest.mark.parametrize("age", ["90", "d", "0d", "-1d", "ninety days"])
def test_an_age_that_is_not_one_is_a_usage_error(env, age):
    result = CliRunner().invoke(cli.main, ["logs", "purge", "--older-than", age])
    assert result.exit_code == 2 and "not an age" in result.output
