"""The reference runner's log and files: its own progress lines and, for the command
executor, the command's stdout/stderr line by line while it runs (in batches by time and
size, not at the end), and the files it leaves in DEVICELAB_ARTIFACT_DIR, all reaching the
run through the same use cases the HTTP API calls."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime

from adapters.persistence.run_logs_in_memory import InMemoryArtifactStorage
from adapters.runner.executors import CommandExecutor
from adapters.runner.in_memory import InProcessCallbackClient
from application.run_log_ports import LogFilter
from application.runner import (
    Callback,
    CallbackReply,
    CallbackStatus,
    Disposition,
    ExecuteJob,
    RunnerOptions,
    RunningJobs,
)
from application.runner.run_log import LogShipper, split_message
from application.use_cases.artifacts import ListArtifacts, OpenArtifact, StoreArtifact
from application.use_cases.catalog import ExecutionInput
from application.use_cases.run_logs import AppendRunLogs
from domain.run_logs import LogLimits
from tests.unit.test_runner_execute_job import message_for

CALLBACK = Callback("http://devicelab.test/api/runner/test-runs/run-1", "token")

TALKING = """
import os, sys, time
print("warming up", flush=True)
print("relay clicks", file=sys.stderr, flush=True)
time.sleep(1.5)
with open(os.path.join(os.environ["DEVICELAB_ARTIFACT_DIR"], "trace.csv"), "w") as f:
    f.write("t,v\\n0,230\\n")
os.symlink("/etc/passwd", os.path.join(os.environ["DEVICELAB_ARTIFACT_DIR"], "sneaky"))
print('{"metric": "voltage", "value": 230, "unit": "V"}', flush=True)
print("done", flush=True)
"""


class Recorder:
    """A callback client that keeps the log batches it gets, with when they came."""

    def __init__(self, *replies: CallbackReply) -> None:
        self.replies = list(replies)
        self.batches: list[tuple[float, list[str]]] = []
        self.lock = threading.Lock()

    def logs(self, callback, lines, give_up_at):
        with self.lock:
            self.batches.append((time.monotonic(), [line.message for line in lines]))
            return self.replies.pop(0) if self.replies else CallbackReply(CallbackStatus.ACCEPTED)


def test_lines_are_sent_in_order_in_batches_and_close_sends_the_rest():
    client = Recorder()
    shipper = LogShipper(client, CALLBACK, _Clock(), flush_s=0.05)
    for n in range(5):
        shipper.write("info", f"line {n}")
    time.sleep(0.3)
    shipper.write("info", "last")
    shipper.close()
    sent = [m for _, batch in client.batches for m in batch]
    assert sent == [f"line {n}" for n in range(5)] + ["last"]
    assert len(client.batches) == 2


def test_a_full_log_or_a_finished_run_stops_the_sending():
    full = CallbackReply(CallbackStatus.ACCEPTED, 200, log_truncated=True)
    client = Recorder(full)
    shipper = LogShipper(client, CALLBACK, _Clock(), flush_s=0.05)
    shipper.write("info", "a")
    time.sleep(0.3)
    shipper.write("info", "b")
    shipper.close()
    assert [batch for _, batch in client.batches] == [["a"]]


def test_lines_devicelab_could_not_take_go_with_the_next_batch():
    client = Recorder(CallbackReply(CallbackStatus.UNAVAILABLE, 503))
    shipper = LogShipper(client, CALLBACK, _Clock(), flush_s=0.05)
    shipper.write("info", "a")
    time.sleep(0.3)
    shipper.write("info", "b")
    shipper.close()
    first, *accepted = [batch for _, batch in client.batches]
    assert first == ["a"]  # refused (503), so sent again, still before "b"
    assert [m for batch in accepted for m in batch] == ["a", "b"]


def test_a_long_line_is_split_to_what_the_api_takes():
    assert [len(p) for p in split_message("x" * 20000)] == [8192, 8192, 3616]


class _Clock:
    def now(self):
        return datetime.now(UTC)


def test_the_command_executor_streams_its_output_and_uploads_its_files(lab, tmp_path):
    storage = InMemoryArtifactStorage()
    store = StoreArtifact(lab.new_uow, storage, lab.clock, lab.ids, 10_000, 100_000)
    append = AppendRunLogs(lab.new_uow, lab.clock, LogLimits(1000, 100_000))
    arrivals: list[tuple[float, str]] = []

    def timed_append(run_id, lines):
        arrivals.extend((time.monotonic(), line.message) for line in lines)
        return append(run_id, lines)

    client = InProcessCallbackClient(
        lab.record_started,
        lab.record_progress,
        lab.record_result,
        lab.record_failure,
        append_logs=timed_append,
        store_artifact=store,
    )
    script = tmp_path / "talk.py"
    script.write_text(TALKING)
    device = lab.add_device("meter-01")
    case = lab.add_test_case(
        "talking",
        criteria=[("voltage", "<=", 240)],
        duration_s=0,
        timeout_s=30,
        execution=ExecutionInput("command", [sys.executable, str(script)]),
    )
    run = lab.start([device], [case], lab.add_environment("chamber"))
    execute = ExecuteJob(
        client,
        {"command": CommandExecutor(lab.clock)},
        lab.clock,
        RunningJobs(),
        RunnerOptions(runner_id="runner-a", default_executor="command", heartbeat_s=0.2),
    )

    outcome = execute(message_for(run))

    assert outcome.disposition is Disposition.ACK and outcome.reason == "completed"
    with lab.new_uow() as uow:
        lines = uow.run_logs.lines(run.id, LogFilter(), 0, 100)
    messages = [line.message for line in lines]
    assert messages[0].startswith("[runner] runner-a started the run")
    own = [line for line in lines if not line.message.startswith("[runner]")]
    assert [(x.message, x.level.value) for x in own if x.message != "relay clicks"][:1] == [
        ("warming up", "info")
    ]
    assert any(x.message == "relay clicks" and x.level.value == "warning" for x in own)
    assert all(x.device_id == device.id and x.test_case_id == case.id for x in own)
    # the first line arrived while the command still ran, not with its end
    came = dict((message, at) for at, message in reversed(arrivals))
    assert came["done"] - came["warming up"] >= 1.0
    artifacts = ListArtifacts(lab.new_uow)(run.id)
    assert [(a.name, a.content_type, a.device_id) for a in artifacts] == [
        ("meter-01-trace.csv", "text/csv", device.id)
    ]
    _, chunks = OpenArtifact(lab.new_uow, storage)(run.id, artifacts[0].id)
    assert b"".join(chunks) == b"t,v\n0,230\n"
    assert any("artifact 'meter-01-trace.csv' uploaded" in m for m in messages)
