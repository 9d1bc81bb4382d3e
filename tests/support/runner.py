"""Test helpers for the reference Test Runner: job messages, a scripted callback client and a
fake callback server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from application.job_contract import job_payload
from application.runner import Callback, CallbackReply, CallbackStatus
from domain.environments import EnvironmentSnapshot
from domain.execution import Execution
from domain.test_cases import Criterion, TestCaseSnapshot
from domain.test_runs import DeviceSnapshot, ResultReport, TestRun

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def make_run(
    run_id: str = "run-1",
    criteria: Sequence[tuple[str, str, float]] = (("voltage", "<=", 240.0),),
    devices: int = 2,
    cases: int = 1,
    duration_s: int = 0,
    timeout_s: int = 60,
    parameters: dict[str, Any] | None = None,
    execution: Execution | None = None,
) -> TestRun:
    """A run built from domain objects, as StartTestRun would store it."""
    return TestRun.create(
        id=run_id,
        test_cases=[
            TestCaseSnapshot(
                id=f"case-{n}",
                version=1,
                name=f"case {n}",
                description="",
                criteria=tuple(Criterion(m, c, t, "V") for m, c, t in criteria),  # type: ignore[arg-type]
                duration_s=duration_s,
                timeout_s=timeout_s,
                parameters=dict(parameters or {}),
                tags=(),
                execution=execution or Execution(),
            )
            for n in range(1, cases + 1)
        ],
        environment=EnvironmentSnapshot("env-1", "chamber", "", {"temp_c": "40"}),
        devices=[
            DeviceSnapshot(f"dev-{n}", f"meter-{n:02d}", "M1", f"S{n}", "1.0", {"phase": "L1"})
            for n in range(1, devices + 1)
        ],
        started_by="tester",
        at=T0,
        queue_allowance_s=600,
        parameters=parameters,
    )


def job_message(
    run: TestRun, base_url: str = "http://devicelab.test", token: str = "run-token"
) -> dict[str, Any]:
    """The message the relay publishes: the stored payload plus the callback block."""
    return {
        **job_payload(run),
        "callback": {"base_url": f"{base_url}/api/runner/test-runs/{run.id}", "token": token},
    }


def job_bytes(run: TestRun, **callback: Any) -> bytes:
    return json.dumps(job_message(run, **callback)).encode()


# -- a callback client that answers from a script, else delegates -------------------------------


@dataclass
class Call:
    report: str
    args: tuple[Any, ...]


class ScriptedCallbacks:
    """Answers each report from its script first (one reply per call), then from `inner`
    (or ACCEPTED). Records every call."""

    def __init__(self, inner: Any = None, **script: list[CallbackReply]) -> None:
        self.inner = inner
        self.script = {report: list(replies) for report, replies in script.items()}
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def reports(self, report: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.report == report]

    def _answer(self, report: str, *args: Any) -> CallbackReply:
        with self._lock:
            self.calls.append(Call(report, args))
            replies = self.script.get(report)
            if replies:
                return replies.pop(0)
        if self.inner is None:
            return CallbackReply(CallbackStatus.ACCEPTED, 200)
        return getattr(self.inner, report)(*args)

    def started(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        return self._answer("started", callback, runner, give_up_at)

    def released(self, callback: Callback, runner: str, give_up_at: datetime) -> CallbackReply:
        return self._answer("released", callback, runner, give_up_at)

    def progress(
        self,
        callback: Callback,
        progress: float,
        message: str,
        partial_results: Sequence[ResultReport],
        give_up_at: datetime,
        runner: str = "",
    ) -> CallbackReply:
        return self._answer(
            "progress", callback, progress, message, partial_results, give_up_at, runner
        )

    def result(
        self, callback: Callback, results: Sequence[ResultReport], give_up_at: datetime
    ) -> CallbackReply:
        return self._answer("result", callback, results, give_up_at)

    def failed(self, callback: Callback, reason: str, give_up_at: datetime) -> CallbackReply:
        return self._answer("failed", callback, reason, give_up_at)

    def logs(self, callback: Callback, lines: Sequence[Any], give_up_at: datetime) -> CallbackReply:
        return self._answer("logs", callback, lines, give_up_at)

    def upload_artifact(self, callback: Callback, *args: Any) -> CallbackReply:
        return self._answer("upload_artifact", callback, *args)


def reply(status: CallbackStatus, http_status: int | None = None, code: str = "") -> CallbackReply:
    return CallbackReply(status, http_status, code, f"scripted {status.value}")


# -- a fake devicelab callback API over real HTTP ----------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeCallbackServer:
    """Records every POST; answers from `respond(path, body)` -> (status, json body) or
    (status, json body, headers)."""

    respond: Callable[[str, Any], tuple] | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def posts_to(self, suffix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.endswith(suffix)]

    def wait_for(self, suffix: str, count: int = 1, timeout_s: float = 10) -> list[Received]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.posts_to(suffix)) >= count, timeout_s)
        return self.posts_to(suffix)

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        with self._lock:
            self.received.append(Received(path, headers, body))
        answer = (200, {"changed": True, "released_device_ids": [], "run": {}})
        if self.respond is not None:
            answer = self.respond(path, body)
        with self._changed:
            self._changed.notify_all()
        return answer


@contextmanager
def callback_server(
    respond: Callable[[str, Any], tuple] | None = None,
) -> Iterator[FakeCallbackServer]:
    fake = FakeCallbackServer(respond)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, body, *extra = fake._handle(
                self.path, dict(self.headers), self.rfile.read(length)
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
