"""`devicelab db check`: what the Kubernetes init containers wait on before a process starts."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from adapters.persistence.schema import upgrade_schema
from entrypoints.cli import main


def check(url: str, **env: str):
    return CliRunner().invoke(main, ["db", "check"], env={"DEVICELAB_DATABASE_URL": url, **env})


def test_db_check_fails_until_both_histories_are_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'devicelab.db'}"
    empty = check(url)
    assert empty.exit_code == 1
    assert "schema at none" in empty.output and "auth store at none" in empty.output

    upgrade_schema(url)  # the core history only
    core_only = check(url)
    assert core_only.exit_code == 1
    assert "schema at" not in core_only.output and "auth store at none" in core_only.output
    # the API in remote mode does not use the auth store
    remote = check(url, DEVICELAB_AUTH_MODE="remote", DEVICELAB_AUTH_URL="http://auth:8001")
    assert remote.exit_code == 0, remote.output

    assert (
        CliRunner().invoke(main, ["db", "upgrade"], env={"DEVICELAB_DATABASE_URL": url}).exit_code
        == 0
    )
    migrated = check(url)
    assert migrated.exit_code == 0, migrated.output
    assert "latest revision" in migrated.output


def test_db_check_fails_when_the_database_does_not_answer() -> None:
    result = check("postgresql+psycopg2://nobody@127.0.0.1:9/devicelab")
    assert result.exit_code == 1
    assert "OperationalError" in result.output
