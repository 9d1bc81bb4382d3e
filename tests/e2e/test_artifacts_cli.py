"""`devicelab artifacts purge --older-than 90d` on the server's database (SQLite, files under
the data directory): it removes the old artifacts' records and files, prints each, and
leaves the newer ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from adapters.clocks import SettableClock
from application.use_cases.artifacts import ArtifactUpload
from application.use_cases.catalog import CriterionInput, EnvironmentInput, TestCaseInput
from application.use_cases.devices import RegisterDeviceRequest
from application.use_cases.test_runs import StartTestRunRequest
from entrypoints import cli
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DEVICELAB_SECRET_KEY", "cli-tests-secret-key-0123456789-abcdefghij")
    assert CliRunner().invoke(cli.main, ["db", "upgrade"]).exit_code == 0
    return tmp_path / "var" / "artifacts"


def _artifacts_stored(ages_days: list[int]):
    now = datetime.now(UTC)
    container = create_container(Settings.from_env())
    try:
        device = container.register_device()(RegisterDeviceRequest(name="meter-01"))
        case = container.create_test_case()(
            TestCaseInput(name="v", criteria=[CriterionInput("voltage", "<=", 240.0)])
        )
        environment = container.create_environment()(EnvironmentInput(name="bench"))
        run = container.start_test_run()(
            StartTestRunRequest([case.id], environment.id, device_ids=[device.id])
        )
        stored = []
        for n, age in enumerate(ages_days):
            container.clock.override(providers.Object(SettableClock(now - timedelta(days=age))))
            upload = ArtifactUpload(f"file-{age}d.txt", "text/plain")
            stored.append(container.store_artifact()(run.id, upload, [b"x" * (n + 1)]).artifact)
        return stored
    finally:
        container.unwire()
        dispose_engines(container)


def test_purge_removes_what_is_older_and_says_what(env: Path):
    old, new = _artifacts_stored([100, 10])
    assert len([p for p in env.rglob("*") if p.is_file()]) == 2

    result = CliRunner().invoke(cli.main, ["artifacts", "purge", "--older-than", "90d"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split("\t")[:4] == [old.run_id, old.id, "file-100d.txt", "1"]
    assert lines[-1] == "removed 1 artifact(s), 1 bytes"
    assert [p.name for p in env.rglob("*") if p.is_file()] == [new.id]


@pytest.mark.parametrize("age", ["90", "d", "0d", "-1d", "ninety days"])
def test_an_age_that_is_not_one_is_a_usage_error(env, age):
    result = CliRunner().invoke(cli.main, ["artifacts", "purge", "--older-than", age])
    assert result.exit_code == 2 and "not an age" in result.output
