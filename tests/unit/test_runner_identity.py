"""How a reference runner names itself: a stable "<hostname>-<slot>" from the first free slot
lock in the data directory (the same id after a crash, never one shared by two live runners),
unless DEVICELAB_RUNNER_ID says otherwise; and the claim settings it checks at start."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.runner.runner_slot import claim_runner_slot
from entrypoints.settings import RunnerSettings, SettingsError

REPO = Path(__file__).resolve().parents[2]

HOLD_A_SLOT = """
import sys, threading
from pathlib import Path
from adapters.runner.runner_slot import claim_runner_slot
slot = claim_runner_slot(Path(sys.argv[1]), "bench")
print(slot.runner_id, flush=True)
threading.Event().wait()
"""


def test_live_runners_on_one_host_get_the_first_free_slots(tmp_path):
    first = claim_runner_slot(tmp_path, "bench")
    second = claim_runner_slot(tmp_path, "bench")
    other_host = claim_runner_slot(tmp_path, "rack-2")
    assert (first.runner_id, second.runner_id, other_host.runner_id) == (
        "bench-0",
        "bench-1",
        "rack-2-0",
    )
    first.release()
    assert claim_runner_slot(tmp_path, "bench").runner_id == "bench-0"  # the free one again


def test_a_runner_killed_with_sigkill_leaves_its_id_to_the_next_one(tmp_path):
    doomed = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_SLOT, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == "bench-0"
        assert claim_runner_slot(tmp_path, "bench").runner_id == "bench-1"  # taken meanwhile
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        assert claim_runner_slot(tmp_path, "bench").runner_id == "bench-0"
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait(30)


def test_a_hostname_becomes_a_safe_file_name(tmp_path):
    slot = claim_runner_slot(tmp_path / "slots", "../lab bench/7")
    assert slot.runner_id == "lab_bench_7-0"
    assert slot.path.parent == tmp_path / "slots"


def test_without_an_id_the_settings_leave_it_to_the_slot_and_an_id_given_wins():
    assert RunnerSettings.from_env({}).runner_id == ""
    assert RunnerSettings.from_env({"DEVICELAB_RUNNER_ID": "rig-7"}).runner_id == "rig-7"


def test_the_heartbeat_must_renew_the_claim_several_times_per_lease():
    settings = RunnerSettings.from_env({})
    assert (settings.heartbeat_s, settings.claim_lease_s, settings.claim_patience_s) == (2, 20, 60)
    short = RunnerSettings.from_env(
        {"DEVICELAB_CLAIM_LEASE_S": "3", "DEVICELAB_RUNNER_HEARTBEAT_S": "0.3"}
    )
    assert (short.claim_lease_s, short.claim_patience_s) == (3, 9)
    with pytest.raises(SettingsError, match="a third of DEVICELAB_CLAIM_LEASE_S"):
        RunnerSettings.from_env({"DEVICELAB_CLAIM_LEASE_S": "5"})  # heartbeat 2 s
    with pytest.raises(SettingsError, match="at least DEVICELAB_CLAIM_LEASE_S"):
        RunnerSettings.from_env({"DEVICELAB_RUNNER_CLAIM_PATIENCE_S": "10"})
