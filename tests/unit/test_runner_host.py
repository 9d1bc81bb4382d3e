"""What a runner process holds: no secret key and no database URLs, whether it is started by
`devicelab up` or as `devicelab runner`; and it says so loudly when it runs as root."""

from __future__ import annotations

import logging
import os

from click.testing import CliRunner

from entrypoints import cli
from entrypoints.runner import warn_if_root, withhold_server_secrets
from entrypoints.settings import runner_environment

SERVER_ENV = {
    "DEVICELAB_SECRET_KEY": "signs-everyones-tokens-0123456789abcdefgh",
    "DEVICELAB_DATABASE_URL": "postgresql+psycopg2://devicelab:pw@db/devicelab",
    "DEVICELAB_AUTH_DATABASE_URL": "postgresql+psycopg2://auth:pw@db/auth",
    "DEVICELAB_REDIS_URL": "redis://cache:6379/0",
}
RUNNER_ENV = {
    "DEVICELAB_BROKER_URL": "amqp://runner:pw@broker/devicelab",
    "DEVICELAB_DATA_DIR": "/var/lib/devicelab",
    "DEVICELAB_RUNNER_EXECUTOR": "command",
    "PATH": "/usr/bin:/bin",
}


def test_the_runner_environment_has_no_secret_and_no_database():
    assert runner_environment({**SERVER_ENV, **RUNNER_ENV}) == RUNNER_ENV


def test_devicelab_up_starts_its_runner_without_the_secret_key(monkeypatch, tmp_path):
    spawned: dict[str, dict[str, str] | None] = {}
    monkeypatch.setattr(cli, "_spawn", lambda name, env=None: spawned.setdefault(name, env))
    for step in ("_upgrade", "_run_gunicorn", "_stop", "_create_demo_admin_if_no_users"):
        monkeypatch.setattr(cli, step, lambda *args: None)
    monkeypatch.setattr(cli, "_seed_if_empty", lambda settings: None)
    monkeypatch.delenv("DEVICELAB_SECRET_KEY", raising=False)

    # demo mode: `up` makes a secret key and puts it in its own environment for the server
    result = CliRunner().invoke(
        cli.main,
        ["up"],
        env={"DEVICELAB_DATA_DIR": str(tmp_path), "DEVICELAB_DATABASE_URL": "sqlite:///x.db"},
    )

    assert result.exit_code == 0, result.output
    runner_env = spawned["runner"]
    assert runner_env is not None
    assert "DEVICELAB_SECRET_KEY" not in runner_env
    assert "DEVICELAB_DATABASE_URL" not in runner_env
    assert runner_env["DEVICELAB_DATA_DIR"] == str(tmp_path)  # the embedded broker lives there


def test_devicelab_runner_neither_needs_nor_keeps_the_secret_key(monkeypatch):
    import entrypoints.runner

    seen = {}

    def run_runner(settings, runner_settings):
        seen["settings"] = settings
        seen["environ"] = dict(os.environ)

    monkeypatch.setattr(entrypoints.runner, "run_runner", run_runner)
    result = CliRunner().invoke(cli.main, ["runner"], env={**SERVER_ENV, **RUNNER_ENV})

    assert result.exit_code == 0, result.output
    assert seen["settings"].secret_key == ""
    assert not set(SERVER_ENV) & set(seen["environ"])
    # and without it at all, it starts just the same
    result = CliRunner().invoke(cli.main, ["runner"], env=RUNNER_ENV)
    assert result.exit_code == 0, result.output


def test_withholding_names_what_was_there():
    environ = {**SERVER_ENV, **RUNNER_ENV}
    assert sorted(withhold_server_secrets(environ)) == sorted(SERVER_ENV)
    assert environ == RUNNER_ENV
    assert withhold_server_secrets(environ) == []


def test_a_runner_running_as_root_warns_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="devicelab.runner"):
        assert warn_if_root(lambda: 0) is True
        assert warn_if_root(lambda: 1000) is False
    (record,) = caplog.records
    assert "AS ROOT" in record.getMessage()
