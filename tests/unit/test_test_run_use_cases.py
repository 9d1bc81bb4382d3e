"""Test run use cases on the in-memory adapters: starting (all devices or none, one job
message), the runner's reports, cancelling and the reaper."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.errors import NotFound
from application.job_contract import (
    CANCEL_KIND,
    CONTRACT_VERSION,
    JOB_KIND,
    cancel_payload,
    job_payload,
)
from application.use_cases.devices import SetDeviceStatusRequest
from application.use_cases.test_runs import ProgressReport
from domain.devices import DeviceStatus
from domain.errors import (
    ConflictingReport,
    DeviceUnavailable,
    InvalidTransition,
    InvalidValue,
    RunAlreadyFinished,
    RunClaimed,
)
from domain.test_runs import Observation, ResultReport, RunStatus, Verdict


@pytest.fixture
def bench(lab):
    """Three devices, two test cases and an environment, ready for runs."""

    class Bench:
        d1 = lab.add_device("meter-01", model="M1", serial="S1", firmware_version="1.0")
        d2 = lab.add_device("meter-02", labels={"phase": "L2"})
        d3 = lab.add_device("meter-03")
        voltage = lab.add_test_case(
            "voltage",
            criteria=[("voltage", "<=", 240)],
            duration_s=60,
            timeout_s=120,
            default_parameters={"load": 0.5},
            tags=["power"],
        )
        current = lab.add_test_case("current", criteria=[("current", "<", 16)], timeout_s=180)
        chamber = lab.add_environment("chamber", variables={"temp_c": "40"})

    return Bench


def passing(run) -> list[ResultReport]:
    return [
        ResultReport(c.id, d.id, (Observation("voltage", 230), Observation("current", 10)))
        for c in run.test_cases
        for d in run.devices
    ]


def held_by(lab, *devices) -> list[str | None]:
    return [lab.get_device(d.id).held_by for d in devices]


# -- starting a run --------------------------------------------------------------------------


def test_starting_a_run_stores_it_queued_and_reserves_its_devices(lab, bench) -> None:
    run = lab.start([bench.d1, bench.d2], [bench.voltage], bench.chamber, started_by="alice")
    stored = lab.get_test_run(run.id)
    assert stored.status is RunStatus.QUEUED
    assert stored.started_by == "alice"
    assert stored.device_ids == (bench.d1.id, bench.d2.id)
    assert stored.deadline == lab.clock.now() + timedelta(seconds=lab.queue_allowance_s + 120)
    assert held_by(lab, bench.d1, bench.d2, bench.d3) == [run.id, run.id, None]
    entry = lab.device_history(bench.d1.id)[0]
    assert (entry.to_status, entry.actor, entry.run_id) == (DeviceStatus.IN_TEST, "alice", run.id)


def test_starting_a_run_queues_exactly_one_job_following_the_contract(lab, bench) -> None:
    run = lab.start(
        [bench.d2, bench.d1], [bench.voltage, bench.current], bench.chamber, parameters={"load": 1}
    )
    (message,) = lab.outbox()
    assert (message.kind, message.run_id) == (JOB_KIND, run.id)
    assert message.created_at == lab.clock.now()
    payload = message.payload
    assert payload == job_payload(lab.get_test_run(run.id))
    assert payload["contract_version"] == CONTRACT_VERSION == 2
    assert payload["run_id"] == run.id
    assert payload["parameters"] == {"load": 1}
    assert payload["deadline"] == run.deadline.isoformat()
    assert [c["id"] for c in payload["test_cases"]] == [bench.voltage.id, bench.current.id]
    voltage = payload["test_cases"][0]
    assert voltage == {
        "id": bench.voltage.id,
        "version": 1,
        "name": "voltage",
        "description": "",
        "duration_s": 60,
        "timeout_s": 120,
        "parameters": {"load": 1},  # the run's parameters overlay the case defaults
        "tags": ["power"],
        "execution": {"executor": "", "command": [], "per_device": True},
        "criteria": [{"metric": "voltage", "condition": "<=", "threshold": 240.0, "unit": ""}],
    }
    assert payload["environment"] == {
        "id": bench.chamber.id,
        "name": "chamber",
        "variables": {"temp_c": "40"},
    }
    assert payload["devices"] == [  # in the order they were asked for
        {
            "id": bench.d2.id,
            "name": "meter-02",
            "model": "",
            "serial": "",
            "firmware_version": "",
            "labels": {"phase": "L2"},
            "role": None,
        },
        {
            "id": bench.d1.id,
            "name": "meter-01",
            "model": "M1",
            "serial": "S1",
            "firmware_version": "1.0",
            "labels": {},
            "role": None,
        },
    ]


def test_a_run_books_all_its_devices_or_none(lab, bench) -> None:
    busy = lab.start([bench.d2], [bench.voltage], bench.chamber)
    lab.set_device_status(SetDeviceStatusRequest(bench.d3.id, "offline"))
    history_before = lab.device_history(bench.d1.id)
    runs_before, outbox_before = dict(lab.store.test_runs), list(lab.store.outbox)

    with pytest.raises(DeviceUnavailable) as raised:
        lab.start(
            [bench.d1, bench.d2, bench.d3], [bench.voltage], bench.chamber, when_busy="reject"
        )

    assert raised.value.unavailable == {bench.d2.id: "in_test", bench.d3.id: "offline"}
    assert bench.d2.id in raised.value.message
    assert held_by(lab, bench.d1, bench.d2, bench.d3) == [None, busy.id, None]
    assert lab.get_device(bench.d1.id).status is DeviceStatus.AVAILABLE
    assert lab.device_history(bench.d1.id) == history_before
    assert lab.store.test_runs.keys() == runs_before.keys()
    assert lab.store.outbox == outbox_before


@pytest.mark.parametrize(
    ("request_for", "field"),
    [
        (lambda b: ([b.d1.id], ["no-such-case"], b.chamber.id), "test_case_ids"),
        (lambda b: ([b.d1.id], [b.voltage.id], "no-such-env"), "environment_id"),
        (lambda b: ([b.d1.id, "no-such-device"], [b.voltage.id], b.chamber.id), "device_ids"),
        (lambda b: ([b.d1.id, b.d1.id], [b.voltage.id], b.chamber.id), "device_ids"),
        (lambda b: ([b.d1.id], [b.voltage.id, b.voltage.id], b.chamber.id), "test_case_ids"),
        (lambda b: ([], [b.voltage.id], b.chamber.id), "device_ids"),
        (lambda b: ([b.d1.id], [], b.chamber.id), "test_case_ids"),
    ],
)
def test_a_run_with_unknown_or_repeated_ids_is_refused_without_side_effects(
    lab, bench, request_for, field: str
) -> None:
    devices, cases, environment = request_for(bench)
    with pytest.raises(InvalidValue) as raised:
        lab.start(devices, cases, environment)
    assert raised.value.field == field
    assert lab.store.test_runs == {}
    assert lab.store.outbox == []
    assert held_by(lab, bench.d1) == [None]


def test_an_unknown_id_is_named_in_the_error(lab, bench) -> None:
    with pytest.raises(InvalidValue) as raised:
        lab.start([bench.d1, "dev-ghost"], [bench.voltage], bench.chamber)
    assert "dev-ghost" in raised.value.message


# -- the runner's reports ---------------------------------------------------------------


def test_run_started_is_recorded_once(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.clock.advance(5)
    first = lab.record_started(run.id)
    lab.clock.advance(5)
    again = lab.record_started(run.id)
    assert (first.changed, again.changed) == (True, False)
    stored = lab.get_test_run(run.id)
    assert stored.status is RunStatus.RUNNING
    assert stored.started_at == lab.clock.now() - timedelta(seconds=5)


def test_a_second_runner_is_refused_until_the_first_has_been_silent_too_long(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner="runner-a")
    lab.clock.advance(200)
    lab.record_progress(run.id, ProgressReport(0.3, runner="runner-a"))
    lab.clock.advance(15)
    with pytest.raises(RunClaimed) as refused:
        lab.record_started(run.id, runner="runner-b")
    assert refused.value.code == "run_claimed" and "runner-a" in refused.value.message
    assert refused.value.retry_after_s == pytest.approx(lab.claim_lease_s - 15)
    lab.clock.advance(5)  # exactly the claim lease: still refused
    with pytest.raises(RunClaimed):
        lab.record_started(run.id, runner="runner-b")
    assert lab.get_test_run(run.id).runner == "runner-a"
    lab.clock.advance(0.5)  # well within the progress lease: the claim lapsed all the same
    assert lab.record_started(run.id, runner="runner-b").changed
    assert lab.get_test_run(run.id).runner == "runner-b"
    assert held_by(lab, bench.d1) == [run.id]


def test_a_runner_that_keeps_its_heartbeat_keeps_its_run(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner="runner-a")
    for _ in range(50):  # the same heartbeat every 2 s, well past the claim lease
        lab.clock.advance(2)
        lab.record_progress(run.id, ProgressReport(0.5, "measuring", runner="runner-a"))
    with pytest.raises(RunClaimed):
        lab.record_started(run.id, runner="runner-b")
    assert lab.get_test_run(run.id).runner == "runner-a"


def test_a_runner_restarted_under_its_id_gets_its_run_back_at_once(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner="host-0")
    lab.record_progress(run.id, ProgressReport(0.4, "half way", runner="host-0"))
    lab.clock.advance(1)  # killed and started again: its claim is still live
    outcome = lab.record_started(run.id, runner="host-0")
    assert outcome.run.status is RunStatus.RUNNING and outcome.run.runner == "host-0"
    lab.record_progress(run.id, ProgressReport(0.1, "again", runner="host-0"))
    lab.record_result(
        run.id, [ResultReport(bench.voltage.id, bench.d1.id, (Observation("voltage", 230),))]
    )
    assert lab.get_test_run(run.id).verdict is Verdict.PASS


def test_a_runner_that_lost_its_run_is_told_so_by_its_next_heartbeat(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner="runner-a")
    lab.clock.advance(lab.claim_lease_s + 1)  # runner-a froze
    lab.record_started(run.id, runner="runner-b")
    with pytest.raises(RunClaimed) as refused:
        lab.record_progress(run.id, ProgressReport(0.5, runner="runner-a"))
    assert refused.value.retry_after_s is None  # nothing to wait for: stop
    assert lab.record_progress(run.id, ProgressReport(0.1, runner="runner-b")).changed
    assert lab.get_test_run(run.id).progress == 0.1


def test_repeating_the_same_progress_still_extends_the_lease(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id)
    lab.clock.advance((run.deadline - lab.clock.now()).total_seconds() - 100)
    lab.record_progress(run.id, ProgressReport(0.5, "measuring"))
    lab.clock.advance(lab.lease_s - 100)
    lab.record_progress(run.id, ProgressReport(0.5, "measuring"))  # the same heartbeat
    assert lab.get_test_run(run.id).deadline == lab.clock.now() + timedelta(seconds=lab.lease_s)
    lab.clock.advance(lab.lease_s - 1)
    assert lab.expire_overdue_runs() == []
    assert lab.get_test_run(run.id).status is RunStatus.RUNNING


def test_a_run_given_back_keeps_its_devices_and_goes_to_the_next_runner(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner="runner-a")
    assert not lab.record_released(run.id, runner="runner-b").changed  # not its claim
    assert lab.get_test_run(run.id).runner == "runner-a"

    assert lab.record_released(run.id, runner="runner-a").changed
    stored = lab.get_test_run(run.id)
    assert (stored.status, stored.runner) == (RunStatus.RUNNING, "")
    assert held_by(lab, bench.d1) == [run.id]

    lab.clock.advance(1)  # no waiting for the takeover allowance
    assert lab.record_started(run.id, runner="runner-b").changed
    assert lab.get_test_run(run.id).runner == "runner-b"


def test_a_finished_run_cannot_be_given_back(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner="runner-a")
    lab.cancel_test_run(run.id, by="alice")
    with pytest.raises(RunAlreadyFinished):
        lab.record_released(run.id, runner="runner-a")
    assert held_by(lab, bench.d1) == [None]


def test_progress_is_stored_and_extends_the_lease(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.clock.advance(lab.queue_allowance_s + 100)
    outcome = lab.record_progress(run.id, ProgressReport(0.4, "step 2 of 5"))
    assert outcome.changed
    stored = lab.get_test_run(run.id)
    assert (stored.status, stored.progress, stored.progress_message) == (
        RunStatus.RUNNING,
        0.4,
        "step 2 of 5",
    )
    assert stored.deadline >= lab.clock.now() + timedelta(seconds=lab.lease_s)


def test_partial_results_in_a_progress_report_are_stored(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    partial = [ResultReport(bench.voltage.id, bench.d1.id, (Observation("voltage", 250),))]
    lab.record_progress(run.id, ProgressReport(0.5, partial_results=partial))
    stored = lab.get_test_run(run.id)
    assert stored.results[(bench.voltage.id, bench.d1.id)].verdict is Verdict.FAIL
    assert held_by(lab, bench.d1) == [run.id]


def test_an_invalid_progress_report_changes_nothing(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    bad = [ResultReport("no-such-case", bench.d1.id)]
    with pytest.raises(InvalidValue):
        lab.record_progress(run.id, ProgressReport(0.5, partial_results=bad))
    with pytest.raises(InvalidValue):
        lab.record_progress(run.id, ProgressReport(1.5))
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED


def test_the_final_result_completes_the_run_and_releases_its_devices_once(lab, bench) -> None:
    run = lab.start([bench.d1, bench.d2], [bench.voltage, bench.current], bench.chamber)
    lab.record_started(run.id)
    outcome = lab.record_result(run.id, passing(run))
    assert outcome.changed
    assert sorted(outcome.released_device_ids) == sorted([bench.d1.id, bench.d2.id])
    stored = lab.get_test_run(run.id)
    assert (stored.status, stored.verdict) == (RunStatus.COMPLETED, Verdict.PASS)
    assert held_by(lab, bench.d1, bench.d2) == [None, None]

    repeat = lab.record_result(run.id, passing(run))
    assert (repeat.changed, repeat.released_device_ids) == (False, [])
    releases = [c for c in lab.device_history(bench.d1.id) if c.from_status is DeviceStatus.IN_TEST]
    assert len(releases) == 1
    assert (releases[0].actor, releases[0].run_id) == ("runner", run.id)


def test_a_contradicting_result_is_refused_and_the_first_stands(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_result(run.id, passing(run))
    failing = [ResultReport(bench.voltage.id, bench.d1.id, (Observation("voltage", 250),))]
    with pytest.raises(ConflictingReport):
        lab.record_result(run.id, failing)
    assert lab.get_test_run(run.id).verdict is Verdict.PASS


def test_a_result_naming_a_foreign_device_is_refused_and_nothing_is_released(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    with pytest.raises(InvalidValue):
        lab.record_result(run.id, [ResultReport(bench.voltage.id, bench.d2.id)])
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED
    assert held_by(lab, bench.d1) == [run.id]


def test_the_devices_of_a_completed_run_can_be_booked_again(lab, bench) -> None:
    first = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_result(first.id, passing(first))
    second = lab.start([bench.d1], [bench.voltage], bench.chamber)
    assert held_by(lab, bench.d1) == [second.id]


def test_a_failure_report_fails_the_run_releases_devices_and_is_idempotent(lab, bench) -> None:
    run = lab.start([bench.d1, bench.d2], [bench.voltage], bench.chamber)
    outcome = lab.record_failure(run.id, "flash write failed")
    assert outcome.changed and len(outcome.released_device_ids) == 2
    stored = lab.get_test_run(run.id)
    assert (stored.status, stored.failure_reason) == (RunStatus.FAILED, "flash write failed")
    assert held_by(lab, bench.d1, bench.d2) == [None, None]
    repeat = lab.record_failure(run.id, "flash write failed")
    assert (repeat.changed, repeat.released_device_ids) == (False, [])
    with pytest.raises(RunAlreadyFinished):
        lab.record_failure(run.id, "another reason")
    with pytest.raises(RunAlreadyFinished):
        lab.record_result(run.id, passing(run))
    assert lab.get_test_run(run.id).status is RunStatus.FAILED


# -- cancel ----------------------------------------------------------------------------------


def test_cancelling_releases_the_devices_and_tells_the_runners(lab, bench) -> None:
    run = lab.start([bench.d1, bench.d2], [bench.voltage], bench.chamber)
    lab.record_started(run.id)
    outcome = lab.cancel_test_run(run.id, by="alice", reason="wrong firmware")
    assert outcome.changed
    stored = lab.get_test_run(run.id)
    assert (stored.status, stored.failure_reason) == (RunStatus.ABORTED, "wrong firmware")
    assert held_by(lab, bench.d1, bench.d2) == [None, None]
    assert lab.device_history(bench.d1.id)[0].actor == "alice"
    (cancel,) = lab.outbox(CANCEL_KIND)
    assert cancel.run_id == run.id
    assert cancel.payload == cancel_payload(stored)
    assert cancel.payload == {
        "contract_version": CONTRACT_VERSION,
        "run_id": run.id,
        "reason": "wrong firmware",
    }


def test_cancelling_twice_sends_one_cancel_message(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.cancel_test_run(run.id, by="alice")
    again = lab.cancel_test_run(run.id, by="bob")
    assert not again.changed
    assert len(lab.outbox(CANCEL_KIND)) == 1
    assert lab.get_test_run(run.id).failure_reason == "cancelled by alice"


@pytest.mark.parametrize(
    "report",
    [
        lambda lab, run: lab.record_started(run.id),
        lambda lab, run: lab.record_progress(run.id, ProgressReport(0.5)),
        lambda lab, run: lab.record_result(run.id, []),
        lambda lab, run: lab.record_failure(run.id, "late crash"),
    ],
)
def test_reports_after_a_cancel_are_refused(lab, bench, report) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.cancel_test_run(run.id, by="alice")
    with pytest.raises(RunAlreadyFinished):
        report(lab, run)
    assert lab.get_test_run(run.id).status is RunStatus.ABORTED


def test_a_completed_run_cannot_be_cancelled(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_result(run.id, passing(run))
    with pytest.raises(InvalidTransition):
        lab.cancel_test_run(run.id, by="alice")
    assert lab.outbox(CANCEL_KIND) == []
    assert lab.get_test_run(run.id).status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    "operation",
    [
        lambda lab: lab.get_test_run("nope"),
        lambda lab: lab.record_started("nope"),
        lambda lab: lab.record_progress("nope", ProgressReport(0.1)),
        lambda lab: lab.record_result("nope", []),
        lambda lab: lab.record_failure("nope", "x"),
        lambda lab: lab.cancel_test_run("nope", by="alice"),
    ],
)
def test_an_unknown_run_is_not_found(lab, operation) -> None:
    with pytest.raises(NotFound):
        operation(lab)


# -- the reaper ------------------------------------------------------------------------------


def test_overdue_runs_fail_with_timeout_and_free_their_devices(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    done = lab.start([bench.d2], [bench.voltage], bench.chamber)
    lab.record_result(done.id, passing(done))
    until_deadline = (run.deadline - lab.clock.now()).total_seconds()

    lab.clock.advance(until_deadline)
    assert lab.expire_overdue_runs() == []
    assert lab.get_test_run(run.id).status is RunStatus.QUEUED

    lab.clock.advance(1)
    assert lab.expire_overdue_runs() == [run.id]
    stored = lab.get_test_run(run.id)
    assert (stored.status, stored.failure_reason) == (RunStatus.FAILED, "timeout")
    assert held_by(lab, bench.d1) == [None]
    assert lab.device_history(bench.d1.id)[0].actor == "reaper"
    assert lab.get_test_run(done.id).status is RunStatus.COMPLETED
    assert lab.expire_overdue_runs() == []


def test_a_run_kept_alive_by_progress_is_not_expired(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.clock.advance((run.deadline - lab.clock.now()).total_seconds() - 10)
    lab.record_progress(run.id, ProgressReport(0.9))
    lab.clock.advance(20)
    assert lab.expire_overdue_runs() == []
    assert held_by(lab, bench.d1) == [run.id]


def test_a_late_result_after_expiry_is_refused(lab, bench) -> None:
    run = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.clock.advance(24 * 3600)
    lab.expire_overdue_runs()
    with pytest.raises(RunAlreadyFinished):
        lab.record_result(run.id, passing(run))
    assert lab.get_test_run(run.id).verdict is None


def test_the_reaper_works_in_batches_oldest_deadline_first(lab, bench) -> None:
    first = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.clock.advance(1)
    second = lab.start([bench.d2], [bench.voltage], bench.chamber)
    lab.clock.advance(24 * 3600)
    assert lab.expire_overdue_runs(batch=1) == [first.id]
    assert lab.expire_overdue_runs(batch=1) == [second.id]
