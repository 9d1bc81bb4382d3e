"""The `devicelab` CLI's auth commands: migrations of both histories, `users create|list`,
and the demo admin that `devicelab up` makes when there are no users."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from adapters.persistence.schema import auth_head_revision
from application.auth.errors import InvalidCredentials
from application.auth.sessions import LoginRequest
from entrypoints import cli
from entrypoints.container import dispose_engines
from entrypoints.settings import Settings
from entrypoints.wsgi import create_container


@pytest.fixture
def env(tmp_path, monkeypatch):
    values = {
        "DEVICELAB_DATA_DIR": str(tmp_path / "var"),
        "DEVICELAB_SECRET_KEY": "cli-tests-secret-key-0123456789-abcdefghij",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DEVICELAB_NEW_USER_PASSWORD", raising=False)
    return values


def _login(email, password):
    container = create_container(Settings.from_env())
    try:
        return container.login()(LoginRequest(email, password))
    finally:
        container.unwire()
        dispose_engines(container)


def test_db_upgrade_migrates_both_histories(env):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "auth store at revision head" in result.output
    current = runner.invoke(cli.main, ["db", "current"]).output
    head = auth_head_revision()
    assert f"auth store: current: {head}; latest: {head}" in current, current


def test_users_create_reads_the_password_from_the_environment(env, monkeypatch):
    monkeypatch.setenv("DEVICELAB_NEW_USER_PASSWORD", "scripted-password")
    result = CliRunner().invoke(
        cli.main, ["users", "create", "--email", "Ada@Lab.example", "--role", "admin"]
    )
    assert result.exit_code == 0, result.output
    assert "created admin ada@lab.example" in result.output
    assert "scripted-password" not in result.output
    assert _login("ada@lab.example", "scripted-password").user.role.value == "admin"

    listed = CliRunner().invoke(cli.main, ["users", "list"]).output
    assert "ada@lab.example\tadmin\tAda" in listed

    again = CliRunner().invoke(cli.main, ["users", "create", "--email", "ada@lab.example"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_users_reset_password_shows_a_temporary_one_that_must_be_changed(env, monkeypatch):
    monkeypatch.setenv("DEVICELAB_NEW_USER_PASSWORD", "forgotten-password")
    CliRunner().invoke(cli.main, ["users", "create", "--email", "ada@lab.example"])
    _login("ada@lab.example", "forgotten-password")

    result = CliRunner().invoke(cli.main, ["users", "reset-password", "--email", "Ada@lab.example"])
    assert result.exit_code == 0, result.output
    assert "ended 1 session(s)" in result.output
    temporary = re.search(r"shown only this once.*: (\S+)$", result.output, re.M).group(1)
    with pytest.raises(InvalidCredentials):
        _login("ada@lab.example", "forgotten-password")
    assert _login("ada@lab.example", temporary).user.must_change_password is True

    unknown = CliRunner().invoke(cli.main, ["users", "reset-password", "--email", "x@lab.example"])
    assert unknown.exit_code == 1 and "not found" in unknown.output


def test_users_create_asks_for_the_password_twice(env):
    runner = CliRunner()
    result = runner.invoke(
        cli.main,
        ["users", "create", "--email", "bob@lab.example", "--name", "Bob", "--role", "viewer"],
        input="typed-password\ntyped-password\n",
    )
    assert result.exit_code == 0, result.output
    assert _login("bob@lab.example", "typed-password").user.name == "Bob"

    short = runner.invoke(
        cli.main, ["users", "create", "--email", "eve@lab.example"], input="short\nshort\n"
    )
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    with pytest.raises(InvalidCredentials):
        _login("eve@lab.example", "short")


def test_up_creates_a_demo_admin_only_when_there_are_no_users(env, capsys):
    settings = Settings.from_env()
    cli._upgrade(settings)
    cli._create_demo_admin_if_no_users(settings)
    shown = capsys.readouterr().out
    assert "DEMO ADMIN" in shown and cli.DEMO_ADMIN_EMAIL in shown
    password = re.search(r"password: (\S+)", shown).group(1)
    assert len(password) >= 16
    assert _login(cli.DEMO_ADMIN_EMAIL, password).user.role.value == "admin"

    cli._create_demo_admin_if_no_users(settings)  # there is a user now: nothing, not again
    assert capsys.readouterr().out == ""
