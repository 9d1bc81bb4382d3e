"""The command executor with a tiny Python program: environment, JSON lines, exit status,
timeout (the whole process group is killed) and cancellation; the command comes only from the
case's execution, runs with nothing of the runner's environment, in a working directory of its
own that is removed afterwards, and only so much of its output is read."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters.clocks import SettableClock
from adapters.runner.executors import COMMAND_PATH, CommandExecutor
from application.runner import ExecutionRequest
from domain.execution import Execution
from tests.support.runner import T0, make_run

ENV_DUMP = """
import json, os, sys
out = os.path.join(sys.argv[1], os.environ.get("DEVICELAB_DEVICE_ID", "all") + ".json")
with open(os.environ["DEVICELAB_PARAMETERS_FILE"]) as f:
    parameters = json.load(f)
with open(out, "w") as f:
    json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "parameters": parameters}, f)
print("warming up the load bank")  # not a measurement
print(json.dumps({"metric": "voltage", "value": 231.5, "unit": "V"}))
"""

FAILING = """
import json, sys
print(json.dumps({"metric": "voltage", "value": 229, "unit": "V"}))
print('{"metric": "current", "value": "lots"}')
print("calibration failed: reference out of range", file=sys.stderr)
sys.exit(3)
"""

HANGING = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(str(child.pid))
print('{"metric": "voltage", "value": 230}', flush=True)
time.sleep(60)
"""

ALL_AT_ONCE = """
import json, os
for device_id in os.environ["DEVICELAB_DEVICE_IDS"].split(","):
    print(json.dumps({"metric": "voltage", "value": 230, "unit": "V", "device_id": device_id}))
print(json.dumps({"metric": "temperature", "value": 40.5}))
print(json.dumps({"metric": "voltage", "value": 1, "device_id": "not-in-this-run"}))
"""


def program(tmp_path: Path, source: str, *args: str) -> list[str]:
    path = tmp_path / "measure.py"
    path.write_text(source)
    return [sys.executable, str(path), *args]


def run_command(
    argv,
    timeout_s=60,
    devices=2,
    cancel=None,
    per_device=True,
    work_root=None,
    output_limit=1024 * 1024,
    **parameters,
):
    run = make_run(
        devices=devices,
        timeout_s=timeout_s,
        parameters=parameters,
        execution=Execution("command", tuple(argv), per_device),
    )
    return execute(run, cancel=cancel, work_root=work_root, output_limit=output_limit)


def execute(run, cancel=None, work_root=None, output_limit=1024 * 1024):
    case = run.test_cases[0]
    request = ExecutionRequest(run.id, case, run.devices, run.environment, case.parameters)
    executor = CommandExecutor(
        SettableClock(T0), kill_grace_s=2, work_root=work_root, output_limit=output_limit
    )
    partials: list = []
    results = executor.execute(request, cancel or threading.Event(), partials.append)
    return results, partials


def is_gone(pid: int) -> bool:
    """True once the process has exited (a zombie has exited too; only its parent's wait is
    missing). Its pipes close a moment before it becomes a zombie, so look a few times."""
    for _ in range(500):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status or "\nState:\tX" in status:
            return True
        time.sleep(0.01)
    return False


def written(path: Path) -> str:
    """The file's content once something was written to it."""
    for _ in range(500):
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"nothing was written to {path}")


def test_each_device_runs_the_command_with_the_job_in_its_environment(tmp_path):
    results, partials = run_command(program(tmp_path, ENV_DUMP, str(tmp_path)), load_kw=2.5)

    assert [r.device_id for r in results] == ["dev-1", "dev-2"]
    assert sorted(partials, key=lambda r: r.device_id) == results
    for result in results:
        assert not result.error, result.message
        assert [(o.metric, o.value, o.unit) for o in result.observations] == [
            ("voltage", 231.5, "V")
        ]
    env = json.loads((tmp_path / "dev-2.json").read_text())["env"]
    assert env["DEVICELAB_RUN_ID"] == "run-1"
    assert env["DEVICELAB_TEST_CASE_ID"] == "case-1"
    assert (env["DEVICELAB_DEVICE_ID"], env["DEVICELAB_DEVICE_NAME"]) == ("dev-2", "meter-02")
    assert (env["DEVICELAB_DEVICE_SERIAL"], env["DEVICELAB_DEVICE_FIRMWARE"]) == ("S2", "1.0")
    assert env["DEVICELAB_ENV_TEMP_C"] == "40"
    assert env["DEVICELAB_PARAM_LOAD_KW"] == "2.5"


def test_the_command_inherits_nothing_from_the_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_CANARY", "only-the-runner-knows")
    monkeypatch.setenv("DEVICELAB_SECRET_KEY", "signs-everyones-tokens-0123456789abcdef")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")

    run_command(program(tmp_path, ENV_DUMP, str(tmp_path)), devices=1)

    env = json.loads((tmp_path / "dev-1.json").read_text())["env"]
    assert "RUNNER_CANARY" not in env and "LD_PRELOAD" not in env
    assert "DEVICELAB_SECRET_KEY" not in env
    assert env["PATH"] == COMMAND_PATH and env["LANG"] == "C.UTF-8"
    # what it gets is the fixed base and the job, nothing else
    base = {"PATH", "LANG", "HOME", "TMPDIR"}
    assert base <= set(env)
    assert all(name in base or name.startswith("DEVICELAB_") for name in env), sorted(env)


def test_run_parameters_are_data_never_the_command(tmp_path):
    pwned = tmp_path / "pwned"
    hostile = {
        "executor": "command",
        "command": [sys.executable, "-c", f"open({str(pwned)!r}, 'w').close()"],
        "command_per_device": False,
    }

    results, _ = run_command(program(tmp_path, ENV_DUMP, str(tmp_path)), devices=2, **hostile)

    assert not pwned.exists()
    assert [r.error for r in results] == [False, False]  # ran per device, as the case says
    dump = json.loads((tmp_path / "dev-1.json").read_text())
    assert dump["parameters"] == hostile  # handed over as data: the file ...
    assert json.loads(dump["env"]["DEVICELAB_PARAM_COMMAND"]) == hostile["command"]  # ... and env


def test_each_run_and_device_gets_a_fresh_working_directory_removed_afterwards(tmp_path):
    root = tmp_path / "work"
    command = program(tmp_path, ENV_DUMP, str(tmp_path))

    run_command(command, devices=2, work_root=str(root), load_kw=2.5)
    first = {
        device: json.loads((tmp_path / f"{device}.json").read_text())
        for device in ("dev-1", "dev-2")
    }
    run_command(command, devices=1, work_root=str(root))
    again = json.loads((tmp_path / "dev-1.json").read_text())

    cwds = [first["dev-1"]["cwd"], first["dev-2"]["cwd"], again["cwd"]]
    assert len(set(cwds)) == 3
    for dump in (*first.values(), again):
        work = Path(dump["cwd"])
        assert work.parent == root
        assert dump["env"]["HOME"] == str(work)
        assert Path(dump["env"]["TMPDIR"]).parent == work
        assert Path(dump["env"]["DEVICELAB_PARAMETERS_FILE"]).parent == work
    assert first["dev-1"]["parameters"] == {"load_kw": 2.5}
    assert list(root.iterdir()) == []  # every one removed once its command ended


LOUD = """
import json, sys
print(json.dumps({"metric": "voltage", "value": 230}))
sys.stdout.write(("x" * 99 + "\\n") * 5000)  # 500 kB of chatter
print(json.dumps({"metric": "current", "value": 3}))
sys.stderr.write("e" * 300000 + "the real problem")
sys.exit(1)
"""


def test_only_so_much_output_is_read(tmp_path):
    results, _ = run_command(program(tmp_path, LOUD), devices=1, output_limit=100_000)

    (result,) = results
    assert [o.metric for o in result.observations] == ["voltage"]  # the rest was not read
    assert "stdout was cut after 100000 bytes" in result.message
    assert "stderr (end only): " in result.message
    assert result.message.endswith("the real problem")
    assert len(result.message) < 2500  # the stderr tail stays short


def test_a_non_zero_exit_is_an_error_with_the_tail_of_stderr(tmp_path):
    results, _ = run_command(program(tmp_path, FAILING), devices=1)

    (result,) = results
    assert result.error
    assert "exited with status 3" in result.message
    assert "calibration failed: reference out of range" in result.message
    assert "1 malformed measurement line(s) ignored" in result.message
    assert [o.metric for o in result.observations] == ["voltage"]


def test_the_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"

    results, _ = run_command(program(tmp_path, HANGING, str(pid_file)), timeout_s=1, devices=1)

    (result,) = results
    assert result.error
    assert "timed out after 1 s" in result.message
    assert [o.value for o in result.observations] == [230]  # what it printed before
    assert is_gone(int(pid_file.read_text()))


def test_a_cancelled_command_is_killed_and_reports_no_partial(tmp_path):
    pid_file = tmp_path / "child.pid"
    cancel = threading.Event()
    watcher = threading.Thread(target=lambda: written(pid_file) and cancel.set())
    watcher.start()

    results, partials = run_command(
        program(tmp_path, HANGING, str(pid_file)), devices=1, cancel=cancel
    )
    watcher.join()

    assert partials == []
    assert "stopped" in results[0].message
    assert is_gone(int(pid_file.read_text()))


def test_once_for_all_devices_lines_name_their_device(tmp_path):
    results, _ = run_command(program(tmp_path, ALL_AT_ONCE), per_device=False)

    for result in results:
        assert not result.error
        assert {(o.metric, o.value) for o in result.observations} == {
            ("voltage", 230),
            ("temperature", 40.5),
        }
        assert "1 malformed measurement line(s) ignored" in result.message


def test_a_missing_program_is_an_error_result(tmp_path):
    results, _ = run_command([str(tmp_path / "no-such-program")], devices=1)
    assert results[0].error
    assert "could not start" in results[0].message


def test_a_case_without_a_command_cannot_run():
    """The runner's default executor is `command`, the case leaves it to the default: the
    command is not looked for anywhere else, not even in the parameters."""
    run = make_run(parameters={"command": ["true"]})  # execution: the runner's default
    with pytest.raises(ValueError, match="execution names no command"):
        execute(run)
