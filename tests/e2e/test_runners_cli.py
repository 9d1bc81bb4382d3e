"""`devicelab runners list | drain | undrain` on the server's database (SQLite here): the CLI
lists the registry and drains and undrains a runner, recording who did (--by)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from application.use_cases.catalog import CriterionInput, EnvironmentInput, TestCaseInput
from application.use_cases.devices import RegisterDeviceRequest
from application.use_cases.test_runs import StartTestRunRequest
from domain.runners import RunnerInfo
from entrypoints import cli
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DEVICELAB_SECRET_KEY", "cli-tests-secret-key-0123456789-abcdefghij")
    assert CliRunner().invoke(cli.main, ["db", "upgrade"]).exit_code == 0


def _a_run_started_by(runner_id: str) -> str:
    container = create_container(Settings.from_env())
    try:
        device = container.register_device()(RegisterDeviceRequest(name="meter-01"))
        case = container.create_test_case()(
            TestCaseInput("voltage", [CriterionInput("voltage", "<=", 240.0)])
        )
        environment = container.create_environment()(EnvironmentInput("bench"))
        run = container.start_test_run()(
            StartTestRunRequest([case.id], environment.id, [device.id])
        )
        container.record_run_started()(run.id, runner_id, RunnerInfo("bench-pc-3", "0.1.0"))
        return run.id
    finally:
        container.unwire()
        dispose_engines(container)


def test_runners_list_drain_and_undrain(env):
    run_id = _a_run_started_by("r1")
    runner = CliRunner()

    listed = runner.invoke(cli.main, ["runners", "list"])
    assert listed.exit_code == 0, listed.output
    (line,) = listed.output.splitlines()
    fields = line.split("\t")
    assert fields[:4] == ["r1", "online", f"busy ({run_id})", "-"]
    assert fields[-2:] == ["bench-pc-3", "0.1.0"]

    drained = runner.invoke(cli.main, ["runners", "drain", "r1", "--by", "root"])
    assert drained.exit_code == 0, drained.output
    assert drained.output.strip() == f"runner r1 drained by root; its run {run_id} finishes"
    assert "drained by root" in runner.invoke(cli.main, ["runners", "list"]).output

    undrained = runner.invoke(cli.main, ["runners", "undrain", "r1"])
    assert undrained.exit_code == 0 and "takes jobs again" in undrained.output
    assert "\t-\t" in runner.invoke(cli.main, ["runners", "list"]).output

    unknown = runner.invoke(cli.main, ["runners", "drain", "nope"])
    assert unknown.exit_code != 0 and "runner nope not found" in unknown.output
