"""The reference Test Runner process (`devicelab runner`): composition and run loop.

It consumes the job queue one job at a time, executes each job with the executor its test
cases' executions name (simulate by default), reports to the callback URL in the job and
acknowledges the message only once its outcome has reached devicelab. Several runner processes
may consume the same queue. It holds no secret key and no database URL (see
`withhold_server_secrets`): only the broker, and per job the credential of that one run.

Shutdown: SIGTERM or SIGINT stops the job in progress without reporting anything, gives the
run back (`released`) and its message back to the queue (requeue), so that another runner
takes it at once; then the process ends.

Without DEVICELAB_RUNNER_ID the runner names itself "<hostname>-<slot>" after the first free
slot in the data directory (adapters/runner/runner_slot.py): the same id after a restart, so
a runner that crashed gets its own run back at once when it starts again."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.clocks import SystemClock
from adapters.messaging.job_consumer import ConsumerOptions, JobConsumer
from adapters.messaging.topology import Topology
from adapters.runner.callback_client import HttpCallbackClient
from adapters.runner.executors import (
    COMMAND,
    INFLUXDB,
    SIMULATE,
    CommandExecutor,
    InfluxDBExecutor,
    SimulateExecutor,
)
from adapters.runner.influxdb import InfluxDB, InfluxMetricsWriter
from adapters.runner.runner_slot import RunnerSlot, claim_runner_slot
from application.ports import Clock
from application.runner import (
    CallbackClient,
    CancelJob,
    ExecuteJob,
    Executor,
    MetricsWriter,
    RunnerOptions,
    RunningJobs,
)
from application.runner.drain import DrainState, HandleControlMessage
from entrypoints.settings import SERVER_ONLY_VARIABLES, RunnerSettings, Settings

log = logging.getLogger("devicelab.runner")


def topology_of(settings: Settings) -> Topology:
    return Topology(
        exchange=settings.exchange,
        job_queue=settings.job_queue,
        dead_letter_queue=settings.dead_letter_queue,
        control_exchange=settings.control_exchange,
    )


def build_executors(runner: RunnerSettings, clock: Clock) -> dict[str, Executor]:
    influx = _influx(runner)
    return {
        SIMULATE: SimulateExecutor(clock, runner.seed, runner.pass_probability, runner.time_factor),
        COMMAND: CommandExecutor(clock, work_root=runner.work_dir or None),
        INFLUXDB: InfluxDBExecutor(influx, clock, runner.time_factor),
    }


def _influx(runner: RunnerSettings) -> InfluxDB | None:
    if not runner.influx_url:
        return None
    return InfluxDB(
        runner.influx_url, runner.influx_db, runner.influx_username, runner.influx_password
    )


def build_metrics_writer(runner: RunnerSettings) -> MetricsWriter | None:
    influx = _influx(runner)
    if influx is None or not runner.write_metrics:
        return None
    return InfluxMetricsWriter(influx)


@dataclass
class Runner:
    consumer: JobConsumer
    execute_job: ExecuteJob
    running: RunningJobs
    stopping: threading.Event

    def run(self) -> None:
        self.consumer.run()

    def stop(self) -> None:
        """Safe in a signal handler: only sets a flag the consumer loop looks at."""
        self.consumer.stop()

    def stop_on_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop())


def build_runner(
    settings: Settings,
    runner: RunnerSettings,
    *,
    clock: Clock | None = None,
    callbacks: CallbackClient | None = None,
    consumer_options: ConsumerOptions | None = None,
) -> Runner:
    """Everything the runner needs; nothing connects before `run()`."""
    clock = clock or SystemClock()
    stopping = threading.Event()  # set when shutting down: ends callback retries early
    executors = build_executors(runner, clock)
    callbacks = callbacks or HttpCallbackClient(
        clock,
        wait=stopping.wait,
        user_agent=f"devicelab-runner/{runner.runner_id}",
        about=about_this_runner(executors),
    )
    running = RunningJobs()
    drain = DrainState(runner.runner_id, runner.drain_probe_s)
    execute_job = ExecuteJob(
        callbacks,
        executors,
        clock,
        running,
        RunnerOptions(
            runner_id=runner.runner_id,
            default_executor=runner.executor,
            heartbeat_s=runner.heartbeat_s,
            callback_patience_s=runner.callback_patience_s,
            claim_patience_s=runner.claim_patience_s,
        ),
        build_metrics_writer(runner),
        drain=drain,
    )

    def shut_down() -> None:
        stopping.set()
        running.shut_down()

    if settings.broker_url.startswith("sqla+sqlite:///"):
        Path(settings.broker_url.removeprefix("sqla+sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    consumer = JobConsumer(
        settings.broker_url,
        execute_job,
        on_cancel=HandleControlMessage(CancelJob(running), drain),
        on_shutdown=shut_down,
        topology=topology_of(settings),
        options=consumer_options,
        name=runner.runner_id,
        takes_jobs=drain.takes_jobs,
    )
    return Runner(consumer, execute_job, running, stopping)


def about_this_runner(executors: Mapping[str, Executor]) -> dict[str, Any]:
    """What the runner tells devicelab's registry about itself in its reports."""
    try:
        version = importlib.metadata.version("devicelab")
    except importlib.metadata.PackageNotFoundError:
        version = ""
    return {
        "host": socket.gethostname()[:200],
        "version": version,
        "executors": sorted(executors),
    }


def withhold_server_secrets(environ: MutableMapping[str, str]) -> list[str]:
    """Remove what only the servers need (the secret key, the database URLs) from the
    runner's environment; returns the names that were there."""
    found = [name for name in SERVER_ONLY_VARIABLES if name in environ]
    for name in found:
        del environ[name]
    return found


def warn_if_root(geteuid: Callable[[], int] | None = None) -> bool:
    """A runner executes the lab's test commands with its own rights: as root, a command
    can do anything to the host. Logs loudly; returns whether it runs as root."""
    geteuid = geteuid or getattr(os, "geteuid", None)
    if geteuid is None or geteuid() != 0:
        return False
    log.warning(
        "THE RUNNER RUNS AS ROOT: every test command it executes can do anything on this "
        "host. Run it as an unprivileged user of its own."
    )
    return True


def runner_slots_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "runner-slots"


def run_runner(settings: Settings, runner: RunnerSettings) -> None:
    """Run until SIGTERM / SIGINT."""
    warn_if_root()
    slot: RunnerSlot | None = None
    if not runner.runner_id:
        slot = claim_runner_slot(runner_slots_dir(settings))
        runner = dataclasses.replace(runner, runner_id=slot.runner_id)
    try:
        built = build_runner(settings, runner)
        built.stop_on_signals()
        log.info(
            "runner %s: default executor %s, broker %s",
            runner.runner_id,
            runner.executor,
            settings.broker_url.split("@")[-1],
        )
        built.run()
    finally:
        if slot is not None:
            slot.release()
