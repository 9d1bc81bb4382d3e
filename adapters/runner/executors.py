"""The runner's executors: `simulate` (demos and tests), `command` (a program of the lab's that
prints its measurements) and `influxdb` (what the devices' telemetry says, the MeterLab way).

A test case picks one in its execution (domain.execution.Execution), which only admins set; the
runner's default applies otherwise. A run's parameters are data handed to the executor."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.runner.influxdb import InfluxDB, InfluxError
from adapters.runner.simulation import simulate_observations
from application.ports import Clock
from application.runner import CancelSignal, ExecutionRequest, ReportPartial
from domain.test_runs import DeviceSnapshot, Observation, ResultReport

log = logging.getLogger(__name__)

SIMULATE, COMMAND, INFLUXDB = "simulate", "command", "influxdb"
EXECUTOR_NAMES = (SIMULATE, COMMAND, INFLUXDB)


def _probability(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{where} must be a number between 0 and 1, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{where} must be a number between 0 and 1, got {raw!r}") from None
    if not 0 <= value <= 1:
        raise ValueError(f"{where} must be between 0 and 1, got {raw!r}")
    return value


# -- simulate ---------------------------------------------------------------------------------


class SimulateExecutor:
    """Waits the case's duration (times `time_factor`; 0 in tests), then reports one plausible
    value per metric and device. Each (test case, device) passes with `pass_probability`
    (parameter `pass_probability` overrides it per case or run). With a seed, the values
    depend only on the seed, the run, the case and the device."""

    def __init__(
        self,
        clock: Clock,
        seed: str | None = None,
        pass_probability: float = 0.8,
        time_factor: float = 1.0,
    ) -> None:
        self.clock, self.seed, self.time_factor = clock, seed, time_factor
        self.pass_probability = _probability(pass_probability, "pass_probability")

    def execute(
        self, request: ExecutionRequest, cancel: CancelSignal, report_partial: ReportPartial
    ) -> list[ResultReport]:
        case = request.case
        probability = self.pass_probability
        if request.parameters.get("pass_probability") is not None:
            probability = _probability(request.parameters["pass_probability"], "pass_probability")
        started_at = self.clock.now()
        if cancel.wait(case.duration_s * self.time_factor):
            return []
        results = []
        for device in request.devices:
            passes, observations = simulate_observations(
                case.criteria, self._random(request, device), probability, case.duration_s
            )
            result = ResultReport(
                case.id,
                device.id,
                observations,
                message="simulated: meant to pass" if passes else "simulated: meant to fail",
                started_at=started_at,
                finished_at=self.clock.now(),
            )
            report_partial(result)
            results.append(result)
        return results

    def _random(self, request: ExecutionRequest, device: DeviceSnapshot) -> random.Random:
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}|{request.run_id}|{request.case.id}|{device.id}")


# -- command -----------------------------------------------------------------------------------

# What a command finds in its environment besides the job: nothing of the runner's own.
COMMAND_PATH = "/usr/local/bin:/usr/bin:/bin"
COMMAND_LANG = "C.UTF-8"
OUTPUT_LIMIT_BYTES = 1024 * 1024  # read at most this much of stdout, and of stderr
PARAMETERS_FILE = "parameters.json"
ARTIFACTS_DIR = "artifacts"  # DEVICELAB_ARTIFACT_DIR: files left here are uploaded
_READ_CHUNK = 64 * 1024


@dataclass
class _Finished:
    returncode: int | None
    stdout: str
    stderr: str
    stopped: str = ""  # "timeout" | "cancelled" when the runner killed it
    start_error: str = ""
    stdout_cut: bool = False  # stdout was longer than the limit: the rest was not read
    stderr_cut: bool = False  # stderr was longer than the limit: only its end was kept


@dataclass
class _Parsed:
    by_device: dict[str | None, list[Observation]] = field(default_factory=dict)
    ignored: int = 0


def environment_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class _CappedReader(threading.Thread):
    """Drains one pipe to its end (so the command never blocks on a full pipe) and keeps at
    most `limit` bytes of it: the beginning, or with `keep_end` the end."""

    def __init__(
        self,
        pipe: Any,
        limit: int,
        keep_end: bool,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        """`on_line` gets every line as it comes (the run's log), however much is kept."""
        super().__init__(name="command output", daemon=True)
        self.pipe, self.limit, self.keep_end = pipe, limit, keep_end
        self.kept = bytearray()
        self.cut = False
        self.on_line = on_line
        self._partial = bytearray()

    def _lines(self, chunk: bytes) -> None:
        if self.on_line is None:
            return
        self._partial += chunk
        *complete, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        for line in complete:
            self.on_line(line.rstrip(b"\r").decode("utf-8", "replace"))
        if len(self._partial) > _READ_CHUNK:  # a line without end: send it in pieces
            self.on_line(bytes(self._partial).decode("utf-8", "replace"))
            self._partial.clear()

    def run(self) -> None:
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, _READ_CHUNK)
            except OSError:
                break
            if not chunk:
                if self._partial and self.on_line is not None:
                    self.on_line(bytes(self._partial).decode("utf-8", "replace"))
                break
            self._lines(chunk)
            if self.keep_end:
                self.kept += chunk
                if len(self.kept) > self.limit:
                    del self.kept[: len(self.kept) - self.limit]
                    self.cut = True
            else:
                room = self.limit - len(self.kept)
                self.kept += chunk[:room]
                self.cut = self.cut or len(chunk) > room
        with contextlib.suppress(OSError):
            self.pipe.close()

    def text(self) -> str:
        kept = bytes(self.kept)
        if self.cut and not self.keep_end and b"\n" in kept:
            kept = kept[: kept.rindex(b"\n") + 1]  # no half line at the cut
        return kept.decode("utf-8", "replace")


def _usable_in_environment(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        os.fsencode(value)
    except UnicodeError:
        return False
    return True


class CommandExecutor:
    """Runs the command of the test case's execution (a program and its fixed arguments, no
    shell) once per device, all devices at once; with `per_device` false once for all devices
    (DEVICELAB_DEVICE_IDS, DEVICELAB_DEVICES) and each line names its "device_id" (a line
    without one counts for every device). Each stdout line `{"metric": ..., "value": ...,
    "unit": ...}` is a measurement; other lines are ignored.

    The command gets a minimal environment of its own — nothing of the runner's process:
    PATH, LANG, HOME and TMPDIR (inside its working directory) and the job as DEVICELAB_*
    variables; the run's parameters as DEVICELAB_PARAM_<NAME> and as JSON in the file named
    by DEVICELAB_PARAMETERS_FILE. It starts in a fresh working directory under `work_root`
    (the system's temporary directory by default), removed when it ends. At most
    `output_limit` bytes of stdout (its beginning) and of stderr (its end) are read. The
    case's timeout kills the command's whole process group; a non-zero exit gives an error
    result with the tail of stderr."""

    def __init__(
        self,
        clock: Clock,
        kill_grace_s: float = 3.0,
        stderr_tail: int = 2000,
        work_root: str | None = None,
        output_limit: int = OUTPUT_LIMIT_BYTES,
    ) -> None:
        self.clock, self.kill_grace_s, self.stderr_tail = clock, kill_grace_s, stderr_tail
        self.work_root, self.output_limit = work_root, output_limit

    def execute(
        self, request: ExecutionRequest, cancel: CancelSignal, report_partial: ReportPartial
    ) -> list[ResultReport]:
        argv = self._argv(request)
        deadline = time.monotonic() + request.case.timeout_s
        if not request.case.execution.per_device:
            return self._run_once_for_all(request, argv, deadline, cancel, report_partial)
        with ThreadPoolExecutor(
            max_workers=len(request.devices), thread_name_prefix="command"
        ) as pool:
            futures = [
                pool.submit(
                    self._run_for_device, request, argv, device, deadline, cancel, report_partial
                )
                for device in request.devices
            ]
            return [future.result() for future in futures]

    def _argv(self, request: ExecutionRequest) -> list[str]:
        # only from the case's definition: the run's parameters are data, never the command
        command = list(request.case.execution.command)
        if not command:
            raise ValueError(
                f"test case {request.case.name!r} runs with the command executor but its "
                "execution names no command (an admin sets it on the test case)"
            )
        return command

    def _run_for_device(
        self,
        request: ExecutionRequest,
        argv: list[str],
        device: DeviceSnapshot,
        deadline: float,
        cancel: CancelSignal,
        report_partial: ReportPartial,
    ) -> ResultReport:
        started_at = self.clock.now()
        env = self._environment(request)
        env.update(_device_environment(device))
        finished = self._run(request, argv, env, deadline, cancel, device)
        parsed = _parse_measurements(finished.stdout, {device.id})
        observations = parsed.by_device.get(None, []) + parsed.by_device.get(device.id, [])
        result = self._result(request, device, finished, parsed, observations, started_at)
        if finished.stopped != "cancelled":
            report_partial(result)
        return result

    def _run_once_for_all(
        self,
        request: ExecutionRequest,
        argv: list[str],
        deadline: float,
        cancel: CancelSignal,
        report_partial: ReportPartial,
    ) -> list[ResultReport]:
        started_at = self.clock.now()
        env = self._environment(request)
        env["DEVICELAB_DEVICE_IDS"] = ",".join(d.id for d in request.devices)
        env["DEVICELAB_DEVICES"] = json.dumps(
            [
                {
                    "id": d.id,
                    "name": d.name,
                    "model": d.model,
                    "serial": d.serial,
                    "firmware_version": d.firmware_version,
                    "labels": dict(d.labels),
                }
                for d in request.devices
            ]
        )
        only = request.devices[0] if len(request.devices) == 1 else None
        if only is not None:
            env.update(_device_environment(only))
        finished = self._run(request, argv, env, deadline, cancel, only)
        parsed = _parse_measurements(finished.stdout, {d.id for d in request.devices})
        results = []
        for device in request.devices:
            observations = parsed.by_device.get(None, []) + parsed.by_device.get(device.id, [])
            results.append(
                self._result(request, device, finished, parsed, observations, started_at)
            )
        if finished.stopped != "cancelled":
            for result in results:
                report_partial(result)
        return results

    def _result(
        self,
        request: ExecutionRequest,
        device: DeviceSnapshot,
        finished: _Finished,
        parsed: _Parsed,
        observations: list[Observation],
        started_at: datetime,
    ) -> ResultReport:
        notes = []
        error = True
        if finished.start_error:
            notes.append(finished.start_error)
        elif finished.stopped == "timeout":
            notes.append(f"the command timed out after {request.case.timeout_s} s and was killed")
        elif finished.stopped == "cancelled":
            notes.append("the command was stopped")
        elif finished.returncode and finished.returncode < 0:
            notes.append(f"the command was killed by signal {-finished.returncode}")
        elif finished.returncode:
            notes.append(f"the command exited with status {finished.returncode}")
        else:
            error = False
        if parsed.ignored:
            notes.append(f"{parsed.ignored} malformed measurement line(s) ignored")
        if finished.stdout_cut:
            notes.append(f"stdout was cut after {self.output_limit} bytes; the rest was not read")
        stderr = finished.stderr.strip()
        if error and stderr:
            cut = " (end only)" if finished.stderr_cut else ""
            notes.append(f"stderr{cut}: " + stderr[-self.stderr_tail :])
        return ResultReport(
            request.case.id,
            device.id,
            tuple(observations),
            message="; ".join(notes),
            error=error,
            started_at=started_at,
            finished_at=self.clock.now(),
        )

    def _environment(self, request: ExecutionRequest) -> dict[str, str]:
        """Built from nothing: the runner's own environment (its settings, credentials,
        whatever its host put there) is not the command's business."""
        case = request.case
        env = {
            "PATH": COMMAND_PATH,
            "LANG": COMMAND_LANG,
            "DEVICELAB_RUN_ID": request.run_id,
            "DEVICELAB_TEST_CASE_ID": case.id,
            "DEVICELAB_TEST_CASE_NAME": case.name,
            "DEVICELAB_DURATION_S": str(case.duration_s),
            "DEVICELAB_TIMEOUT_S": str(case.timeout_s),
            "DEVICELAB_ENVIRONMENT_ID": request.environment.id,
            "DEVICELAB_ENVIRONMENT_NAME": request.environment.name,
        }
        for name, value in request.environment.variables.items():
            env[f"DEVICELAB_ENV_{environment_name(name)}"] = str(value)
        for name, value in request.parameters.items():
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"DEVICELAB_PARAM_{environment_name(name)}"] = text
        # a value no environment can hold (NUL) is still in the parameters file
        return {k: v for k, v in env.items() if _usable_in_environment(v)}

    def _run(
        self,
        request: ExecutionRequest,
        argv: list[str],
        env: dict[str, str],
        deadline: float,
        cancel: CancelSignal,
        device: DeviceSnapshot | None = None,
    ) -> _Finished:
        """In a fresh working directory of its own, removed afterwards; the files the
        command leaves in its artifacts directory are uploaded before that."""
        root = self.work_root or tempfile.gettempdir()
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix="devicelab-run-", dir=root))
        except OSError as error:
            return _Finished(
                None, "", "", start_error=f"could not make a working directory in {root}: {error}"
            )
        try:
            (work / "tmp").mkdir()
            artifacts = work / ARTIFACTS_DIR
            artifacts.mkdir()
            parameters = work / PARAMETERS_FILE
            parameters.write_text(json.dumps(dict(request.parameters)))
            env = {
                **env,
                "HOME": str(work),
                "TMPDIR": str(work / "tmp"),
                "DEVICELAB_WORK_DIR": str(work),
                "DEVICELAB_PARAMETERS_FILE": str(parameters),
                "DEVICELAB_ARTIFACT_DIR": str(artifacts),
            }
            device_id, case_id = (device.id if device else None), request.case.id

            def logger(level: str) -> Callable[[str], None]:
                return lambda line: request.log.write(level, line, device_id, case_id)

            finished = self._spawn(
                argv, env, work, deadline, cancel, logger("info"), logger("warning")
            )
            _upload_artifacts(request, artifacts, device)
            return finished
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _spawn(
        self,
        argv: list[str],
        env: dict[str, str],
        work: Path,
        deadline: float,
        cancel: CancelSignal,
        stdout_line: Callable[[str], None] | None = None,
        stderr_line: Callable[[str], None] | None = None,
    ) -> _Finished:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=work,
                start_new_session=True,  # its own process group, so a kill reaches its children
            )
        except (OSError, ValueError) as error:
            return _Finished(None, "", "", start_error=f"could not start {argv[0]!r}: {error}")
        stdout = _CappedReader(process.stdout, self.output_limit, False, stdout_line)
        stderr = _CappedReader(process.stderr, self.output_limit, True, stderr_line)
        stdout.start()
        stderr.start()
        stopped = ""
        # done once the command has exited and its output is read to the end (a child it
        # left behind may still hold the pipes: the timeout covers that too)
        while process.poll() is None or stdout.is_alive() or stderr.is_alive():
            if cancel.wait(max(0.0, min(0.1, deadline - time.monotonic()))):
                stopped = "cancelled"
            elif time.monotonic() >= deadline:
                stopped = "timeout"
            if stopped:
                self._kill(process)
                break
        for reader in (stdout, stderr):
            reader.join(self.kill_grace_s)
        return _Finished(
            process.returncode,
            stdout.text(),
            stderr.text(),
            stopped,
            stdout_cut=stdout.cut,
            stderr_cut=stderr.cut,
        )

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, SIGKILL after a grace period."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=self.kill_grace_s)
                return
            except subprocess.TimeoutExpired:
                continue
        log.error("command %s (pid %s) survived SIGKILL", process.args, process.pid)


def _upload_artifacts(
    request: ExecutionRequest, directory: Path, device: DeviceSnapshot | None
) -> None:
    """The regular files the command left in its artifacts directory (not what links
    elsewhere, not subdirectories), named after the device when it ran for one."""
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.is_file() or entry.is_symlink():
            continue
        name = f"{device.name}-{entry.name}" if device is not None else entry.name
        name = re.sub(r"[/\\\x00-\x1f\x7f]", "_", name)[:200]
        request.artifacts.upload(str(entry), name, device.id if device else None, request.case.id)


def _device_environment(device: DeviceSnapshot) -> dict[str, str]:
    return {
        "DEVICELAB_DEVICE_ID": device.id,
        "DEVICELAB_DEVICE_NAME": device.name,
        "DEVICELAB_DEVICE_MODEL": device.model,
        "DEVICELAB_DEVICE_SERIAL": device.serial,
        "DEVICELAB_DEVICE_FIRMWARE": device.firmware_version,
        "DEVICELAB_DEVICE_LABELS": json.dumps(dict(device.labels)),
    }


def _parse_measurements(stdout: str, device_ids: set[str]) -> _Parsed:
    """JSON lines with a "metric" are measurements, keyed by their "device_id" (None when the
    line names none); anything else on stdout is the command's own output."""
    parsed = _Parsed()
    for raw in stdout.splitlines():
        text = raw.strip()
        if not text.startswith("{"):
            continue
        try:
            item = json.loads(text)
        except ValueError:
            continue
        if not isinstance(item, dict) or "metric" not in item:
            continue
        metric, value, unit = item.get("metric"), item.get("value"), item.get("unit", "")
        device_id = item.get("device_id")
        if (
            not isinstance(metric, str)
            or not metric.strip()
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not isinstance(unit, str | None)
            or (device_id is not None and device_id not in device_ids)
        ):
            parsed.ignored += 1
            continue
        observation = Observation(metric.strip(), float(value), unit or "")
        parsed.by_device.setdefault(device_id, []).append(observation)
    return parsed


# -- influxdb -----------------------------------------------------------------------------------


class InfluxDBExecutor:
    """Lets the case's duration pass (times `time_factor`) while the devices report telemetry,
    then asks InfluxDB for the mean of each criterion's metric per device over that window.
    Parameter `influx_window_s` looks back that many seconds from the end instead (for
    telemetry recorded before). A metric without data is left unmeasured (inconclusive)."""

    def __init__(
        self,
        influx: InfluxDB | None,
        clock: Clock,
        time_factor: float = 1.0,
        device_tag: str = "device_id",
    ) -> None:
        self.influx, self.clock, self.time_factor = influx, clock, time_factor
        self.device_tag = device_tag

    def execute(
        self, request: ExecutionRequest, cancel: CancelSignal, report_partial: ReportPartial
    ) -> list[ResultReport]:
        if self.influx is None:
            raise RuntimeError("the influxdb executor needs DEVICELAB_INFLUX_URL")
        case = request.case
        start = self.clock.now()
        if cancel.wait(case.duration_s * self.time_factor):
            return []
        end = self.clock.now()
        window = request.parameters.get("influx_window_s")
        if window is not None:
            if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
                raise ValueError(f"influx_window_s must be a positive number, got {window!r}")
            start = end - timedelta(seconds=window)
        metrics = list(dict.fromkeys(c.metric for c in case.criteria))
        units = {c.metric: c.unit for c in case.criteria}
        results = []
        for device in request.devices:
            if cancel.is_set():
                return results
            result = self._measure(request, device, metrics, units, start, end)
            report_partial(result)
            results.append(result)
        return results

    def _measure(
        self,
        request: ExecutionRequest,
        device: DeviceSnapshot,
        metrics: Sequence[str],
        units: Mapping[str, str],
        start: datetime,
        end: datetime,
    ) -> ResultReport:
        assert self.influx is not None
        try:
            means = self.influx.means(metrics, device.id, start, end, self.device_tag)
        except InfluxError as error:
            return ResultReport(
                request.case.id,
                device.id,
                message=str(error),
                error=True,
                started_at=start,
                finished_at=self.clock.now(),
            )
        observations = tuple(
            Observation(metric, value, units.get(metric, ""))
            for metric, value in means.items()
            if value is not None
        )
        missing = [metric for metric, value in means.items() if value is None]
        window = f"{start.isoformat()} – {end.isoformat()}"
        message = f"mean over {window}"
        if missing:
            message += f"; no data for {', '.join(missing)}"
        return ResultReport(
            request.case.id,
            device.id,
            observations,
            message=message,
            started_at=start,
            finished_at=self.clock.now(),
        )
