"""Runs that wait for their devices, on the in-memory adapters: a run on busy devices waits
(no device, no job), and starts by itself, all devices at once, when they free up; priority
order; devices asked for by kind; what is refused at once; queue timeout; cancel while waiting."""

from __future__ import annotations

import pytest

from adapters.persistence.in_memory import InMemoryDeviceRepository
from application.job_contract import CANCEL_KIND, JOB_KIND
from application.use_cases.devices import SetDeviceStatusRequest
from application.use_cases.scheduling import GetQueue, ScheduleWaitingRuns
from domain.errors import DeviceUnavailable, InvalidTransition, InvalidValue
from domain.queueing import book
from domain.scheduling import DeviceRequest, Priority
from domain.test_runs import QUEUE_TIMEOUT_REASON, Observation, ResultReport, RunStatus


@pytest.fixture
def bench(lab):
    class Bench:
        m1 = lab.add_device("meter-01", model="EM-340")
        m2 = lab.add_device("meter-02", model="EM-340")
        special = lab.add_device("meter-03", model="EM-340", labels={"phase": "L3"})
        dongle = lab.add_device("dongle-01", labels={"type": "dongle"})
        case = lab.add_test_case("voltage", duration_s=60, timeout_s=120)
        env = lab.add_environment("chamber")

    return Bench


def finish(lab, run) -> None:
    run = lab.get_test_run(run.id)
    lab.record_result(
        run.id,
        [
            ResultReport(c.id, d.id, (Observation("voltage", 230),))
            for c in run.test_cases
            for d in run.devices
        ],
    )


def jobs_for(lab, run_id: str) -> int:
    return sum(1 for m in lab.outbox(JOB_KIND) if m.run_id == run_id)


def test_a_start_on_free_devices_with_an_empty_queue_is_queued_at_once(lab, bench) -> None:
    run = lab.start([bench.m1], [bench.case], bench.env)
    assert run.status is RunStatus.QUEUED
    assert run.device_ids == (bench.m1.id,)
    assert run.devices[0].role is None
    assert lab.get_device(bench.m1.id).held_by == run.id
    assert jobs_for(lab, run.id) == 1


def test_a_run_on_a_busy_device_waits_and_starts_by_itself_when_the_device_frees_up(
    lab, bench
) -> None:
    first = lab.start([bench.m1], [bench.case], bench.env)
    second = lab.start([bench.m1, bench.m2], [bench.case], bench.env)

    assert second.status is RunStatus.WAITING
    assert second.devices == ()
    assert jobs_for(lab, second.id) == 0
    # all or nothing: the free meter-02 is not booked while meter-01 is busy
    assert lab.get_device(bench.m2.id).held_by is None

    finish(lab, first)

    started = lab.get_test_run(second.id)
    assert started.status is RunStatus.QUEUED
    assert set(started.device_ids) == {bench.m1.id, bench.m2.id}
    assert lab.get_device(bench.m1.id).held_by == second.id
    assert lab.get_device(bench.m2.id).held_by == second.id
    assert jobs_for(lab, second.id) == 1


def test_a_later_run_does_not_overtake_a_waiting_one_for_a_device_it_needs(lab, bench) -> None:
    first = lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1, bench.m2], [bench.case], bench.env)
    later = lab.start([bench.m2], [bench.case], bench.env)
    assert later.status is RunStatus.WAITING  # meter-02 is kept for the run before it
    backfill = lab.start([bench.dongle], [bench.case], bench.env)
    assert backfill.status is RunStatus.QUEUED  # a device the waiting run cannot use

    finish(lab, first)
    assert lab.get_test_run(waiting.id).status is RunStatus.QUEUED
    assert lab.get_test_run(later.id).status is RunStatus.WAITING


def test_higher_priority_goes_first(lab, bench) -> None:
    first = lab.start([bench.m1], [bench.case], bench.env)
    normal = lab.start([bench.m1], [bench.case], bench.env)
    urgent = lab.start([bench.m1], [bench.case], bench.env, priority="high")
    assert lab.get_test_run(urgent.id).priority is Priority.HIGH
    queue = GetQueue(lab.new_uow, lab.clock)()
    assert [(e.id, e.position) for e in queue] == [(urgent.id, 1), (normal.id, 2)]
    assert queue[0].waiting_for.devices == {bench.m1.id: "busy"}

    finish(lab, first)
    assert lab.get_test_run(urgent.id).status is RunStatus.QUEUED
    assert lab.get_test_run(normal.id).status is RunStatus.WAITING


def test_when_busy_reject_keeps_the_409_and_keeps_nothing(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    runs_before, outbox_before = dict(lab.store.test_runs), list(lab.store.outbox)
    with pytest.raises(DeviceUnavailable) as refused:
        lab.start([bench.m1, bench.m2], [bench.case], bench.env, when_busy="reject")
    assert refused.value.unavailable == {bench.m1.id: "in_test"}
    assert "meter-01" in refused.value.message
    assert lab.store.test_runs.keys() == runs_before.keys()
    assert lab.store.outbox == outbox_before
    assert lab.get_device(bench.m2.id).held_by is None


def test_a_request_by_model_takes_the_plainest_matching_device_with_its_role(lab, bench) -> None:
    run = lab.start(
        [],
        [bench.case],
        bench.env,
        device_requests=[
            DeviceRequest(role="meter", model="EM-340", count=2),
            DeviceRequest(role="gateway", labels={"type": "dongle"}),
        ],
    )
    assert run.status is RunStatus.QUEUED
    roles = {d.id: d.role for d in run.devices}
    # meter-03 has a label beyond those asked for: it is kept for runs that need it
    assert roles == {bench.m1.id: "meter", bench.m2.id: "meter", bench.dongle.id: "gateway"}
    job = next(m for m in lab.outbox(JOB_KIND) if m.run_id == run.id)
    assert {d["id"]: d["role"] for d in job.payload["devices"]} == roles


def test_a_request_no_device_of_the_lab_can_satisfy_is_refused_naming_it(lab, bench) -> None:
    with pytest.raises(InvalidValue) as refused:
        lab.start(
            [],
            [bench.case],
            bench.env,
            device_requests=[DeviceRequest(role="meter", model="EM-340", count=4)],
        )
    assert refused.value.field == "device_requests"
    assert "#1" in refused.value.message and "3 devices match" in refused.value.message
    assert lab.store.test_runs == {}


def test_unknown_named_devices_are_refused(lab, bench) -> None:
    with pytest.raises(InvalidValue) as refused:
        lab.start(["nope"], [bench.case], bench.env)
    assert refused.value.field == "device_ids"
    assert lab.store.test_runs == {}


def test_a_run_waiting_past_its_queue_timeout_is_aborted(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1], [bench.case], bench.env, queue_timeout_s=60)
    lab.clock.advance(61)

    outcome = ScheduleWaitingRuns(lab.new_uow, lab.clock, lab.ids)()

    assert outcome.timed_out == [waiting.id]
    stored = lab.get_test_run(waiting.id)
    assert stored.status is RunStatus.ABORTED
    assert stored.failure_reason == QUEUE_TIMEOUT_REASON
    assert jobs_for(lab, waiting.id) == 0


def test_a_waiting_run_can_be_cancelled_and_no_runner_is_told(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1, bench.m2], [bench.case], bench.env)
    later = lab.start([bench.m2], [bench.case], bench.env)

    outcome = lab.cancel_test_run(waiting.id, by="alice")

    assert outcome.run.status is RunStatus.ABORTED
    assert not [m for m in lab.outbox(CANCEL_KIND) if m.run_id == waiting.id]
    # it kept meter-02 from the run behind it; cancelled, it keeps nothing
    assert lab.get_test_run(later.id).status is RunStatus.QUEUED


def test_a_waiting_run_takes_no_runner_reports(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    with pytest.raises(InvalidTransition):
        lab.record_started(waiting.id, "runner-a")
    assert lab.get_test_run(waiting.id).status is RunStatus.WAITING


def test_a_waiting_run_is_not_reaped_by_the_run_deadline(lab, bench) -> None:
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    lab.clock.advance(lab.queue_allowance_s + 121)
    expired = lab.expire_overdue_runs()
    assert waiting.id not in expired
    # the first run timed out and freed meter-01: the waiting run got it, with a fresh deadline
    started = lab.get_test_run(waiting.id)
    assert started.status is RunStatus.QUEUED
    assert started.deadline > lab.clock.now()


def test_a_device_set_available_starts_the_run_waiting_for_it(lab, bench) -> None:
    lab.set_device_status(SetDeviceStatusRequest(bench.m1.id, "offline"))
    waiting = lab.start([bench.m1], [bench.case], bench.env)
    assert waiting.status is RunStatus.WAITING

    lab.set_device_status(SetDeviceStatusRequest(bench.m1.id, "available"))

    assert lab.get_test_run(waiting.id).status is RunStatus.QUEUED


def test_a_new_device_starts_the_run_waiting_for_its_kind(lab, bench) -> None:
    waiting = lab.start(
        [], [bench.case], bench.env, device_requests=[DeviceRequest(model="EM-340", count=3)]
    )
    blocker = lab.start([bench.m1], [bench.case], bench.env)
    assert waiting.status is RunStatus.QUEUED and blocker.status is RunStatus.WAITING
    other = lab.start(
        [],
        [bench.case],
        bench.env,
        device_requests=[DeviceRequest(labels={"type": "dongle"}, count=1)],
    )
    assert other.status is RunStatus.QUEUED
    more = lab.start(
        [],
        [bench.case],
        bench.env,
        device_requests=[DeviceRequest(labels={"type": "dongle"}, count=1)],
    )
    assert more.status is RunStatus.WAITING

    lab.add_device("dongle-02", labels={"type": "dongle"})

    assert lab.get_test_run(more.id).status is RunStatus.QUEUED


def test_booking_a_device_deleted_since_the_pass_read_it_is_unavailable_not_a_key_error(
    lab, bench
) -> None:
    """The pass reads the devices, then locks the ones it books; a delete committed in
    between leaves that row out of the lock. Booking then says "unavailable" (the pass moves
    on and decides again next time) instead of failing the whole pass."""
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.get_test_run(lab.start([bench.m1, bench.m2], [bench.case], bench.env).id)
    m2 = lab.get_device(bench.m2.id)
    with pytest.raises(DeviceUnavailable) as gone:
        book(waiting, {bench.m1.id: None, bench.m2.id: None}, [m2], lab.clock.now(), "scheduler")
    assert gone.value.unavailable == {bench.m1.id: "deleted"}
    assert m2.held_by is None


def test_a_start_reads_the_devices_its_queue_can_use_not_the_whole_lab(
    lab, bench, monkeypatch
) -> None:
    """Found by `make bench`: every start paged through the whole lab, twice (its admission
    check and its pass), so on 12,000 devices a start took 1.3 s. Now a start and its pass
    read the devices the queue names or asks for by kind; only a part asking for any device
    at all still needs the whole lab."""
    for n in range(30):
        lab.add_device(f"spare-{n:02}", model="OTHER")

    def whole_lab(*args, **kwargs):
        raise AssertionError("the start read the whole lab")

    monkeypatch.setattr(InMemoryDeviceRepository, "list", whole_lab)
    lab.start([bench.m1], [bench.case], bench.env)
    waiting = lab.start([bench.m1, bench.m2], [bench.case], bench.env)
    assert waiting.status is RunStatus.WAITING
    phase_l3 = DeviceRequest(model="EM-340", labels={"phase": "L3"})
    by_kind = lab.start([], [bench.case], bench.env, device_requests=[phase_l3])
    assert by_kind.device_ids == (bench.special.id,)
    with pytest.raises(DeviceUnavailable) as refused:
        lab.start([bench.m2], [bench.case], bench.env, when_busy="reject")
    assert refused.value.unavailable == {bench.m2.id: "kept for an earlier item"}
    with pytest.raises(InvalidValue, match="cannot be satisfied by this lab"):
        lab.start([], [bench.case], bench.env, device_requests=[DeviceRequest(model="EM-999")])

    monkeypatch.undo()
    anything = lab.start([], [bench.case], bench.env, device_requests=[DeviceRequest()])
    assert anything.status is RunStatus.QUEUED
