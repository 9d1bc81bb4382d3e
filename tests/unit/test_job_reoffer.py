"""ReofferAbandonedJobs on the in-memory adapters: the worker writes the job of a run whose
claimant fell silent to the outbox again (a transport that lost a killed runner's message
never redelivers it), once per silence, a bounded number of times, never for a live
claimant, a finished run or a run nobody claims."""

from __future__ import annotations

import pytest

from application.job_contract import JOB_KIND, job_payload
from application.use_cases.test_runs import ProgressReport, ReofferAbandonedJobs
from domain.errors import RunClaimed
from domain.test_runs import Observation, ResultReport, RunStatus, Verdict
from entrypoints.settings import Settings, SettingsError


@pytest.fixture
def bench(lab):
    class Bench:
        d1 = lab.add_device("meter-01")
        d2 = lab.add_device("meter-02")
        voltage = lab.add_test_case("voltage", timeout_s=600)
        chamber = lab.add_environment("chamber")

    return Bench


def claimed_run(lab, bench, runner="runner-a"):
    run = lab.start([bench.d1, bench.d2], [bench.voltage], bench.chamber)
    lab.record_started(run.id, runner=runner)
    lab.record_progress(run.id, ProgressReport(0.3, "measuring", runner=runner))
    return run


def jobs_of(lab, run) -> list[dict]:
    return [m.payload for m in lab.outbox(JOB_KIND) if m.run_id == run.id]


def test_a_silent_claimants_job_is_offered_again_once(lab, bench) -> None:
    run = claimed_run(lab, bench)
    lab.clock.advance(lab.reoffer_after_s + 1)  # runner-a was killed: not a word since

    assert lab.reoffer_abandoned_jobs() == [run.id]

    offered = lab.get_test_run(run.id)
    assert offered.status is RunStatus.RUNNING and offered.runner == "runner-a"
    assert (offered.reoffers, offered.reoffered_at) == (1, lab.clock.now())
    assert offered.progress_message == "job offered again after runner runner-a fell silent"
    first, again = jobs_of(lab, run)
    assert again == job_payload(offered) and again["run_id"] == first["run_id"] == run.id
    assert [lab.get_device(d.id).held_by for d in (bench.d1, bench.d2)] == [run.id] * 2
    # the next pass, and the next few seconds: the same silence is not offered twice
    assert lab.reoffer_abandoned_jobs() == []
    lab.clock.advance(lab.reoffer_after_s - 1)
    assert lab.reoffer_abandoned_jobs() == []
    assert len(jobs_of(lab, run)) == 2


def test_only_a_silence_longer_than_the_setting_counts(lab, bench) -> None:
    run = claimed_run(lab, bench)
    lab.clock.advance(lab.reoffer_after_s)
    assert lab.reoffer_abandoned_jobs() == []
    lab.clock.advance(0.5)
    assert lab.reoffer_abandoned_jobs() == [run.id]


def test_a_claimant_that_keeps_reporting_keeps_its_only_job(lab, bench) -> None:
    run = claimed_run(lab, bench)
    for _ in range(100):  # a heartbeat every 2 s, far past the re-offer time
        lab.clock.advance(2)
        lab.record_progress(run.id, ProgressReport(0.5, "measuring", runner="runner-a"))
        assert lab.reoffer_abandoned_jobs() == []
    assert len(jobs_of(lab, run)) == 1 and lab.get_test_run(run.id).reoffers == 0


def test_whoever_gets_the_offered_job_takes_the_run_over_at_once(lab, bench) -> None:
    run = claimed_run(lab, bench)
    lab.clock.advance(lab.reoffer_after_s + 1)
    lab.reoffer_abandoned_jobs()
    lab.clock.advance(1)

    taken = lab.record_started(run.id, runner="runner-b")  # no claim lease left to wait for

    assert taken.changed and taken.run.runner == "runner-b"
    with pytest.raises(RunClaimed):  # runner-a, should it wake up, must stop
        lab.record_progress(run.id, ProgressReport(0.5, runner="runner-a"))
    lab.record_result(
        run.id,
        [
            ResultReport(bench.voltage.id, d.id, (Observation("voltage", 230),))
            for d in (bench.d1, bench.d2)
        ],
    )
    assert lab.get_test_run(run.id).verdict is Verdict.PASS
    lab.clock.advance(10 * lab.reoffer_after_s)
    assert lab.reoffer_abandoned_jobs() == []  # finished: nothing to offer


def test_a_claimant_that_was_only_frozen_keeps_its_run_after_the_offer(lab, bench) -> None:
    run = claimed_run(lab, bench)
    lab.clock.advance(lab.reoffer_after_s + 1)
    lab.reoffer_abandoned_jobs()

    lab.record_progress(run.id, ProgressReport(0.6, "measuring", runner="runner-a"))

    with pytest.raises(RunClaimed):  # the offered copy's runner waits and defers it
        lab.record_started(run.id, runner="runner-b")
    assert lab.get_test_run(run.id).runner == "runner-a"


def test_re_offers_are_bounded_then_the_reaper_has_the_run(lab, bench) -> None:
    run = claimed_run(lab, bench)
    offered = []
    for _ in range(lab.max_reoffers + 3):  # every runner that gets the job dies at once
        lab.clock.advance(lab.reoffer_after_s + 1)
        offered += lab.reoffer_abandoned_jobs()
    assert offered == [run.id] * lab.max_reoffers
    assert len(jobs_of(lab, run)) == 1 + lab.max_reoffers
    assert lab.get_test_run(run.id).reoffers == lab.max_reoffers

    lab.clock.advance((run.deadline - lab.clock.now()).total_seconds() + 1)
    assert lab.expire_overdue_runs() == [run.id]
    assert lab.get_test_run(run.id).failure_reason == "timeout"


def test_finished_queued_and_unclaimed_runs_are_never_offered_again(lab, bench) -> None:
    d3, d4, d5 = (lab.add_device(f"meter-0{n}") for n in (3, 4, 5))
    cancelled = claimed_run(lab, bench)
    lab.cancel_test_run(cancelled.id, by="alice")
    queued = lab.start([d3], [bench.voltage], bench.chamber)  # its job may wait in a backlog
    given_back = lab.start([d4], [bench.voltage], bench.chamber)
    lab.record_started(given_back.id, runner="runner-c")
    lab.record_released(given_back.id, runner="runner-c")  # its job went back to the queue
    anonymous = lab.start([d5], [bench.voltage], bench.chamber)
    lab.record_started(anonymous.id)  # a runner that does not name itself holds no claim
    lab.clock.advance(5 * lab.reoffer_after_s)

    assert lab.reoffer_abandoned_jobs() == []
    for run in (cancelled, queued, given_back, anonymous):
        assert len(jobs_of(lab, run)) == 1
        assert lab.get_test_run(run.id).reoffers == 0


def test_the_longest_silent_go_first_and_a_batch_is_bounded(lab, bench) -> None:
    first = lab.start([bench.d1], [bench.voltage], bench.chamber)
    lab.record_started(first.id, runner="runner-a")
    lab.clock.advance(5)
    second = lab.start([bench.d2], [bench.voltage], bench.chamber)
    lab.record_started(second.id, runner="runner-b")
    lab.clock.advance(lab.reoffer_after_s + 1)

    assert lab.reoffer_abandoned_jobs(batch=1) == [first.id]
    assert lab.reoffer_abandoned_jobs(batch=1) == [second.id]


def test_a_report_arriving_after_the_query_is_seen_under_the_lock(lab, bench) -> None:
    run = claimed_run(lab, bench)
    lab.clock.advance(lab.reoffer_after_s + 1)

    def uow_with_a_late_report(read_only: bool = False):
        if not read_only:  # the query found the run silent; then its runner spoke up
            lab.record_progress(run.id, ProgressReport(0.7, "measuring", runner="runner-a"))
        return lab.new_uow(read_only)

    reoffer = ReofferAbandonedJobs(
        uow_with_a_late_report, lab.clock, lab.ids, lab.reoffer_after_s, lab.max_reoffers
    )

    assert reoffer() == []
    assert len(jobs_of(lab, run)) == 1 and lab.get_test_run(run.id).reoffers == 0


def test_no_re_offers_when_the_limit_is_zero(lab, bench) -> None:
    run = claimed_run(lab, bench)
    lab.clock.advance(lab.reoffer_after_s + 1)
    disabled = ReofferAbandonedJobs(lab.new_uow, lab.clock, lab.ids, lab.reoffer_after_s, 0)
    assert disabled() == []
    assert len(jobs_of(lab, run)) == 1


def test_the_re_offer_time_follows_the_claim_lease_and_must_exceed_it() -> None:
    assert Settings.from_env({}).reoffer_after_s == 40
    assert Settings.from_env({}).reoffer_limit == 3
    assert Settings.from_env({"DEVICELAB_CLAIM_LEASE_S": "3"}).reoffer_after_s == 6
    tuned = Settings.from_env({"DEVICELAB_REOFFER_AFTER_S": "25", "DEVICELAB_REOFFER_LIMIT": "0"})
    assert (tuned.reoffer_after_s, tuned.reoffer_limit) == (25, 0)
    with pytest.raises(SettingsError, match="longer than DEVICELAB_CLAIM_LEASE_S"):
        Settings.from_env({"DEVICELAB_REOFFER_AFTER_S": "20"})
    with pytest.raises(SettingsError, match="DEVICELAB_REOFFER_LIMIT"):
        Settings.from_env({"DEVICELAB_REOFFER_LIMIT": "-1"})
