"""The `devicelab` command."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from entrypoints.cli_client import devices_group, plan_group, run_group
from entrypoints.settings import Settings, SettingsError, demo_secret_key, runner_environment


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


def _upgrade(settings: Settings) -> None:
    from adapters.persistence.schema import upgrade_auth_schema, upgrade_schema

    if settings.database_url.startswith("sqlite:///"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    upgrade_schema(settings.database_url)
    if settings.auth_mode == "local":  # in remote mode the auth service keeps its own store
        upgrade_auth_schema(settings.auth_database_url)


def _seed_if_empty(settings: Settings) -> dict[str, int] | None:
    from entrypoints.container import dispose_engines
    from entrypoints.demo_data import lab_is_empty, seed_demo
    from entrypoints.wsgi import create_container

    container = create_container(settings)
    try:
        if not lab_is_empty(
            container.list_devices(), container.list_test_cases(), container.list_environments()
        ):
            return None
        return seed_demo(
            container.register_device(),
            container.create_test_case(),
            container.create_environment(),
        )
    finally:
        dispose_engines(container)


@click.group()
def main() -> None:
    """devicelab: test-lab orchestration for meters and dongles."""


# the client of a devicelab server (entrypoints/cli_client.py)
main.add_command(run_group)
main.add_command(devices_group)
main.add_command(plan_group)


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database schema (DEVICELAB_DATABASE_URL) to REVISION."""
    from adapters.persistence.schema import upgrade_schema

    settings = _settings()
    if revision == "head":
        _upgrade(settings)
    else:
        upgrade_schema(settings.database_url, revision)
    click.echo(f"database at revision {revision}: {_redact(settings.database_url)}")
    if revision == "head" and settings.auth_mode == "local":
        click.echo(f"auth store at revision head: {_redact(settings.auth_database_url)}")


@db.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    from adapters.persistence.schema import current_revision, head_revision

    settings = _settings()
    current = current_revision(settings.database_url)
    click.echo(f"current: {current or 'none (empty database)'}; latest: {head_revision()}")
    from adapters.persistence.schema import auth_head_revision, current_auth_revision

    auth_current = current_auth_revision(settings.auth_database_url)
    click.echo(
        f"auth store: current: {auth_current or 'none (no auth tables)'}; "
        f"latest: {auth_head_revision()}"
    )


@db.command("check")
def db_check() -> None:
    """Exit 0 if the schema is at the latest revision (the auth store's too, unless
    DEVICELAB_AUTH_MODE=remote), else 1. Init containers wait on it, so that no process starts
    on a schema older than its code."""
    from adapters.persistence.schema import (
        auth_head_revision,
        current_auth_revision,
        current_revision,
        head_revision,
    )

    settings = _settings()
    histories = [("schema", current_revision, head_revision, settings.database_url)]
    if settings.auth_mode == "local":
        histories.append(
            ("auth store", current_auth_revision, auth_head_revision, settings.auth_database_url)
        )
    behind = []
    for name, current_of, head, url in histories:
        try:
            current = current_of(url)
        except Exception as error:  # unreachable, no such database, ...: not ready either
            raise click.ClickException(f"{name}: {type(error).__name__}: {error}") from None
        if current != head():
            behind.append(f"{name} at {current or 'none'}, latest {head()}")
    if behind:
        raise click.ClickException("not migrated: " + "; ".join(behind))
    click.echo("schema at the latest revision")


@main.command("seed-demo")
def seed_demo_command() -> None:
    """Fill an empty lab with demo devices, test cases and environments."""
    settings = _settings()
    _upgrade(settings)
    created = _seed_if_empty(settings)
    if created is None:
        click.echo("the lab already has data; nothing seeded")
    else:
        click.echo("seeded " + ", ".join(f"{n} {kind}" for kind, n in created.items()))


@main.command("serve")
def serve() -> None:
    """Serve the API with gunicorn (no migrations, no seeding)."""
    _run_gunicorn(_settings())


@main.command("up")
def up() -> None:
    """Migrate, seed demo data into an empty lab, and serve on DEVICELAB_HOST:DEVICELAB_PORT."""
    settings = _settings()
    if not settings.secret_key:
        secret, path = demo_secret_key(settings.data_dir)
        os.environ["DEVICELAB_SECRET_KEY"] = secret  # inherited by the server's workers
        settings = _settings()
        click.secho(
            f"DEMO MODE: no DEVICELAB_SECRET_KEY set, using a generated demo secret kept in "
            f"{path}. Never run a shared or production instance like this.",
            fg="yellow",
            bold=True,
        )
    _upgrade(settings)
    created = _seed_if_empty(settings)
    if created:
        click.echo("demo data seeded: " + ", ".join(f"{n} {k}" for k, n in created.items()))
    if settings.auth_mode == "local":
        _create_demo_admin_if_no_users(settings)
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"devicelab on {base}  —  API docs: {base}/api/docs  —  Ctrl-C stops it")
    # the demo lab runs its own worker (relay, reaper) and one simulating runner beside the
    # server, so a run started in the demo completes by itself
    companions = [_spawn("worker"), _spawn("runner", runner_environment(os.environ))]
    try:
        _run_gunicorn(settings)
    finally:
        _stop(companions)


@main.command("worker")
def worker() -> None:
    """Run the outbox relay, the run reaper and offline detection until stopped."""
    from entrypoints.container import dispose_engines
    from entrypoints.worker import build_worker
    from entrypoints.wsgi import create_container

    settings = _settings()
    try:
        settings.require_secret_key()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    container = create_container(settings)
    loop = build_worker(container)
    loop.stop_on_signals()
    try:
        loop.run()
    finally:
        container.publisher().close()
        dispose_engines(container)


@main.command("runner")
@click.option(
    "--executor",
    type=click.Choice(["simulate", "command", "influxdb"]),
    help="Executor for test cases that name none [DEVICELAB_RUNNER_EXECUTOR, default simulate].",
)
@click.option("--runner-id", help="How this runner names itself [DEVICELAB_RUNNER_ID].")
@click.option(
    "--time-factor",
    type=click.FloatRange(min=0),
    help="Scales the test cases' durations [DEVICELAB_RUNNER_TIME_FACTOR, default 1].",
)
def runner(executor: str | None, runner_id: str | None, time_factor: float | None) -> None:
    """Run the reference Test Runner: take jobs off the queue until SIGTERM / Ctrl-C."""
    import dataclasses

    from entrypoints.runner import run_runner, withhold_server_secrets
    from entrypoints.settings import RunnerSettings

    withheld = withhold_server_secrets(os.environ)  # the runner needs none of them
    try:
        settings = Settings.from_env(runner_environment(os.environ))
        runner_settings = RunnerSettings.from_env()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    overrides = {"executor": executor, "runner_id": runner_id, "time_factor": time_factor}
    runner_settings = dataclasses.replace(
        runner_settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if withheld:
        logging.getLogger("devicelab.runner").warning(
            "%s set in the runner's environment: a runner needs none of it, it was removed "
            "from this process; remove it from the runner's deployment",
            ", ".join(withheld),
        )
    run_runner(settings, runner_settings)


@main.command("telemetry")
def telemetry() -> None:
    """Listen for device telemetry on MQTT until SIGTERM / Ctrl-C: heartbeats, firmware, and
    (with DEVICELAB_MQTT_DISCOVERY=true) devices that register themselves. Broker and topic:
    DEVICELAB_MQTT_URL, DEVICELAB_MQTT_TOPIC; payload format: docs/telemetry.md."""
    from entrypoints.settings import TelemetrySettings
    from entrypoints.telemetry import run_telemetry

    settings = _settings()
    try:
        telemetry_settings = TelemetrySettings.from_env()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_telemetry(settings, telemetry_settings)


def _spawn(command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "entrypoints.cli", command], env=env)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


# -- users of the auth service ---------------------------------------------------------------

DEMO_ADMIN_EMAIL = "admin@devicelab.demo"
NEW_USER_PASSWORD_VARIABLE = "DEVICELAB_NEW_USER_PASSWORD"


@contextmanager
def _server_container(settings: Settings):
    from entrypoints.container import dispose_engines
    from entrypoints.wsgi import create_container

    container = create_container(settings)
    try:
        yield container
    finally:
        dispose_engines(container)


def _create_demo_admin_if_no_users(settings: Settings) -> None:
    """An empty auth store gets one admin with a random password, shown this once."""
    from application.auth.users import CreateUserRequest

    with _server_container(settings) as container:
        if container.list_users()(limit=1).items:
            return
        password = secrets.token_urlsafe(12)
        container.create_user()(
            CreateUserRequest(DEMO_ADMIN_EMAIL, "Demo admin", "admin", password)
        )
    line = "=" * 78
    click.secho(
        f"{line}\nDEMO ADMIN created, because there were no users. Shown only this once:\n"
        f"    email:    {DEMO_ADMIN_EMAIL}\n    password: {password}\n"
        "Sign in with these, then create real users (devicelab users create, or POST "
        "/auth/users)\nand disable this one. Demo only: never keep it on a shared instance.\n"
        f"{line}",
        fg="yellow",
        bold=True,
    )


@main.group()
def users() -> None:
    """User accounts of the auth service (DEVICELAB_AUTH_DATABASE_URL)."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", default="", help="defaults to the part of the email before the @")
@click.option(
    "--role",
    type=click.Choice(["admin", "engineer", "viewer"]),
    default="viewer",
    show_default=True,
)
def users_create(email: str, name: str, role: str) -> None:
    """Create a user. The password (8-128 characters) is asked for twice, or taken from
    DEVICELAB_NEW_USER_PASSWORD for scripts."""
    from application.auth.users import CreateUserRequest
    from domain.errors import DomainError

    settings = _settings()
    password = os.environ.get(NEW_USER_PASSWORD_VARIABLE) or click.prompt(
        "Password (8-128 characters)", hide_input=True, confirmation_prompt=True
    )
    _upgrade(settings)
    with _server_container(settings) as container:
        try:
            user = container.create_user()(
                CreateUserRequest(email, name or email.strip().split("@")[0], role, password)
            )
        except DomainError as error:
            raise click.ClickException(error.message) from None
    click.echo(f"created {user.role.value} {user.email} ({user.name}), id {user.id}")


@users.command("list")
def users_list() -> None:
    """List the users: email, role, name, and whether they are disabled or service accounts."""
    settings = _settings()
    with _server_container(settings) as container:
        cursor = None
        while True:
            page = container.list_users()(limit=200, cursor=cursor)
            for user in page.items:
                marks = [
                    mark
                    for mark, applies in (
                        ("service account", user.service_account),
                        ("disabled", user.disabled),
                    )
                    if applies
                ]
                state = f"  ({', '.join(marks)})" if marks else ""
                click.echo(f"{user.email}\t{user.role.value}\t{user.name}{state}")
            if page.next_cursor is None:
                break
            cursor = page.next_cursor


@users.command("reset-password")
@click.option("--email", required=True)
def users_reset_password(email: str) -> None:
    """Give a user a temporary password (shown once) and end their sessions; they must
    choose their own at their next sign-in."""
    from domain.errors import DomainError

    with _server_container(_settings()) as container:
        try:
            user = container.find_user_by_email()(email)
            reset = container.reset_password()(user.id)
        except DomainError as error:
            raise click.ClickException(error.message) from None
    click.echo(
        f"temporary password of {reset.user.email} (shown only this once; they must change "
        f"it when they sign in): {reset.temporary_password}\n"
        f"ended {reset.sessions_ended} session(s)"
    )


@users.command("purge-sessions")
def users_purge_sessions() -> None:
    """Delete expired sessions (signing in does this too, along the way)."""
    with _server_container(_settings()) as container:
        removed = container.purge_expired_sessions()()
    click.echo(f"removed {removed} expired session(s)")


# -- holds: devices kept for manual work -----------------------------------------------------

CLI_ACTOR = "cli"


@main.group()
def holds() -> None:
    """Holds of devices for manual work (DEVICELAB_DATABASE_URL). These commands run on the
    server side, with the database's own rights: whoever may run them may end any hold, as
    an admin may."""


@holds.command("list")
@click.option("--all", "show_all", is_flag=True, help="ended holds too (newest first)")
def holds_list(show_all: bool) -> None:
    """List the waiting and active holds: id, status, holder, devices, until, reason."""
    from application.ports import HoldFilter
    from domain.holds import HoldStatus

    statuses = [None] if show_all else [HoldStatus.ACTIVE, HoldStatus.WAITING]
    with _server_container(_settings()) as container:
        for status in statuses:
            cursor = None
            while True:
                page = container.list_holds()(HoldFilter(status=status), 200, cursor)
                for hold in page.items:
                    devices = ",".join(d.name for d in hold.devices) or "-"
                    until = hold.expires_at.isoformat() if hold.expires_at else "-"
                    ended = f" ({hold.end_reason})" if hold.end_reason else ""
                    click.echo(
                        f"{hold.id}\t{hold.status.value}{ended}\t{hold.holder}\t{devices}"
                        f"\t{until}\t{hold.reason}"
                    )
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor


@holds.command("release")
@click.argument("hold_id")
@click.option(
    "--by",
    default=CLI_ACTOR,
    show_default=True,
    help="who ends it, as recorded on the hold (e.g. your admin username)",
)
def holds_release(hold_id: str, by: str) -> None:
    """End hold HOLD_ID: released if it held its devices, cancelled while it waited. The
    devices go to whatever waits for them next."""
    from application.use_cases.holds import Actor
    from domain.errors import DomainError

    with _server_container(_settings()) as container:
        try:
            hold = container.release_hold()(hold_id, Actor(by.strip() or CLI_ACTOR, True))
        except DomainError as error:
            raise click.ClickException(error.message) from None
    click.echo(f"hold {hold.id} of {hold.holder}: {hold.end_reason} by {hold.ended_by}")


# -- runners: the registry, and draining one ---------------------------------------------------


@main.group()
def runners() -> None:
    """The Test Runners devicelab has heard from (DEVICELAB_DATABASE_URL). These commands run
    on the server side, with the database's own rights, as an admin would."""


@runners.command("list")
def runners_list() -> None:
    """List the runners: id, online/silent, busy (its run) or idle, drained, runs done,
    failures, last seen, host, version."""
    with _server_container(_settings()) as container:
        views = container.list_runners()()
    for view in views:
        runner = view.runner
        doing = f"busy ({','.join(view.current_run_ids)})" if view.busy else "idle"
        drained = f"drained by {runner.drained_by}" if runner.drained else "-"
        click.echo(
            f"{runner.id}\t{view.state.value}\t{doing}\t{drained}\t{runner.runs_done} runs"
            f"\t{runner.failures} failed\t{runner.last_seen_at.isoformat()}"
            f"\t{runner.host or '-'}\t{runner.version or '-'}"
        )


@runners.command("drain")
@click.argument("runner_id")
@click.option("--reason", default="", help="why, shown beside the runner")
@click.option(
    "--by", default=CLI_ACTOR, show_default=True, help="who drains it, as recorded on the runner"
)
def runners_drain(runner_id: str, reason: str, by: str) -> None:
    """Drain runner RUNNER_ID: it gets no new job; the run it has finishes."""
    from domain.errors import DomainError

    with _server_container(_settings()) as container:
        try:
            view = container.drain_runner()(runner_id, by.strip() or CLI_ACTOR, reason)
        except DomainError as error:
            raise click.ClickException(error.message) from None
    busy = f"; its run {', '.join(view.current_run_ids)} finishes" if view.busy else ""
    click.echo(f"runner {view.runner.id} drained by {view.runner.drained_by}{busy}")


@runners.command("undrain")
@click.argument("runner_id")
def runners_undrain(runner_id: str) -> None:
    """Undrain runner RUNNER_ID: it takes jobs again."""
    from domain.errors import DomainError

    with _server_container(_settings()) as container:
        try:
            view = container.undrain_runner()(runner_id)
        except DomainError as error:
            raise click.ClickException(error.message) from None
    click.echo(f"runner {view.runner.id} takes jobs again")


def _redact(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def _run_gunicorn(settings: Settings) -> None:
    try:
        settings.require_secret_key()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    from gunicorn.app.base import BaseApplication

    from entrypoints.gunicorn_worker import KEEPALIVE_S, WORKER_CLASSES, JsonErrorsGeventWorker
    from entrypoints.wsgi import create_app

    # the workers are forked from this process: they find it set
    JsonErrorsGeventWorker.active_requests = settings.active_requests

    split = settings.worker_class == "split"
    stream_workers = settings.stream_workers if split else 0

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.workers + stream_workers)
            # gunicorn's gevent (or gthread) worker, answering what gunicorn refuses in JSON
            self.cfg.set("worker_class", WORKER_CLASSES[settings.worker_class])
            self.cfg.set("threads", settings.threads)
            self.cfg.set("worker_connections", settings.worker_connections)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("keepalive", KEEPALIVE_S)
            self.cfg.set("accesslog", "-")
            self.cfg.set("loglevel", settings.log_level.lower())

        def load(self):
            return create_app()

        def run(self) -> None:
            if not split:
                return super().run()
            from entrypoints.split_workers import SplitArbiter

            try:
                SplitArbiter(self, stream_workers).run()
            except RuntimeError as error:  # as gunicorn's own run() reports a failed start
                click.echo(f"\nError: {error}\n", err=True)
                sys.exit(1)

    _Server().run()
    sys.exit(0)


if __name__ == "__main__":
    main()


# -- artifacts: files runners uploaded with their runs ----------------------------------------

_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Age(click.ParamType):
    """An age such as `90d`, `12h`, `2w` (s, m, h, d, w)."""

    name = "age"

    def convert(self, value, param, ctx):
        from datetime import timedelta

        text = str(value).strip().lower()
        number, unit = text[:-1], text[-1:]
        if unit not in _AGE_UNITS or not number.isdigit() or int(number) < 1:
            self.fail(f"{value!r} is not an age such as 90d, 12h or 2w", param, ctx)
        return timedelta(seconds=int(number) * _AGE_UNITS[unit])


@main.group()
def artifacts() -> None:
    """Files runners uploaded with their runs (DEVICELAB_DATABASE_URL, and
    DEVICELAB_ARTIFACT_STORE / DEVICELAB_ARTIFACT_DIR for where their bytes are)."""


@artifacts.command("purge")
@click.option("--older-than", "older_than", type=Age(), required=True, help="e.g. 90d")
def artifacts_purge(older_than) -> None:
    """Delete the artifacts stored longer ago than --older-than, and print each one removed
    (run, id, name, bytes, when stored)."""
    with _server_container(_settings()) as container:
        removed = container.purge_artifacts()(older_than)
    for artifact in removed:
        click.echo(
            f"{artifact.run_id}\t{artifact.id}\t{artifact.name}\t{artifact.size}"
            f"\t{artifact.created_at.isoformat()}"
        )
    total = sum(a.size for a in removed)
    click.echo(f"removed {len(removed)} artifact(s), {total} bytes")


# -- logs: what runners told about their runs -------------------------------------------------


@main.group()
def logs() -> None:
    """The log lines runners sent for their runs (DEVICELAB_DATABASE_URL)."""


@logs.command("purge")
@click.option("--older-than", "older_than", type=Age(), required=True, help="e.g. 90d")
def logs_purge(older_than) -> None:
    """Delete the log lines of the runs that finished longer ago than --older-than (a run
    not finished is never touched), leave one line in each log that says so, and print each
    run purged (run, lines, bytes). A log purged before is not purged again."""
    with _server_container(_settings()) as container:
        purged = container.purge_run_logs()(older_than)
    for log in purged:
        click.echo(f"{log.run_id}\t{log.lines}\t{log.bytes}")
    lines, size = sum(p.lines for p in purged), sum(p.bytes for p in purged)
    click.echo(f"purged the logs of {len(purged)} run(s), {lines} lines, {size} bytes")
