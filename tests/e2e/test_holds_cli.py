"""`devicelab holds list | release` on the server's database (SQLite here): the CLI lists the
unfinished holds (all with --all) and ends any hold, recording who did (--by)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from application.use_cases.devices import RegisterDeviceRequest
from application.use_cases.holds import PlaceHoldRequest
from entrypoints import cli
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DEVICELAB_SECRET_KEY", "cli-tests-secret-key-0123456789-abcdefghij")
    assert CliRunner().invoke(cli.main, ["db", "upgrade"]).exit_code == 0


def _hold_on_a_new_device(name: str, holder: str):
    container = create_container(Settings.from_env())
    try:
        device = container.register_device()(RegisterDeviceRequest(name=name))
        return container.place_hold()(
            PlaceHoldRequest(holder, "by hand", 600, device_ids=[device.id])
        )
    finally:
        container.unwire()
        dispose_engines(container)


def test_holds_list_and_release(env):
    first = _hold_on_a_new_device("meter-01", "alice@lab.example")
    second = _hold_on_a_new_device("meter-02", "bob@lab.example")
    runner = CliRunner()

    listed = runner.invoke(cli.main, ["holds", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert {line.split("\t")[0] for line in lines} == {first.id, second.id}
    assert any("alice@lab.example\tmeter-01" in line for line in lines)

    released = runner.invoke(cli.main, ["holds", "release", first.id, "--by", "root"])
    assert released.exit_code == 0, released.output
    assert "released by root" in released.output

    assert first.id not in runner.invoke(cli.main, ["holds", "list"]).output
    everything = runner.invoke(cli.main, ["holds", "list", "--all"]).output
    assert first.id in everything and "ended (released)" in everything

    again = runner.invoke(cli.main, ["holds", "release", first.id])
    assert again.exit_code != 0 and "already ended" in again.output
    unknown = runner.invoke(cli.main, ["holds", "release", "nope"])
    assert unknown.exit_code != 0 and "not found" in unknown.output
