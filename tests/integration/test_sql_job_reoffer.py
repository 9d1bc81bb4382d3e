"""Re-offering a silent claimant's job on the SQL adapters, SQLite and PostgreSQL: the query
finds exactly the runs the domain calls abandoned, the re-offer and its job are one
transaction, several workers at once make one copy, and migration 0007 upgrades a database
with runs in it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from adapters.identifiers import UuidGenerator
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.job_contract import JOB_KIND, job_payload
from application.use_cases.test_runs import ProgressReport, ReofferAbandonedJobs
from domain.test_runs import RunStatus
from tests.support.concurrency import fire_together

CLAIM_LEASE_S = 20  # what the integration lab's RecordRunStarted uses
SILENT_FOR_S = 2 * CLAIM_LEASE_S


def _jobs(lab: Any, run_id: str) -> list[dict]:
    rows = lab.rows(
        "SELECT payload FROM outbox WHERE kind = :k AND run_id = :r ORDER BY created_at, id",
        k=JOB_KIND,
        r=run_id,
    )
    return [json.loads(r.payload) if isinstance(r.payload, str) else r.payload for r in rows]


def _reoffer(lab: Any, new_uow: Any, max_reoffers: int = 3) -> ReofferAbandonedJobs:
    return ReofferAbandonedJobs(new_uow, lab.clock, UuidGenerator(), SILENT_FOR_S, max_reoffers)


def test_a_silent_claimants_job_goes_to_the_outbox_again_once(lab: Any, new_uow: Any) -> None:
    device = lab.add_device("meter-1")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    run = lab.start([device], [case], environment)
    lab.record_started(run.id, runner="runner-a")
    lab.clock.advance(SILENT_FOR_S + 1)
    reoffer = _reoffer(lab, new_uow)

    assert reoffer() == [run.id]

    stored = lab.get_test_run(run.id)
    assert (stored.reoffers, stored.reoffered_at) == (1, lab.clock.now())
    assert stored.status is RunStatus.RUNNING and stored.runner == "runner-a"
    assert "runner-a fell silent" in stored.progress_message
    first, again = _jobs(lab, run.id)
    assert again == job_payload(stored) and first["run_id"] == run.id
    assert reoffer() == []
    lab.clock.advance(SILENT_FOR_S + 1)
    assert reoffer() == [run.id]
    assert lab.get_test_run(run.id).reoffers == 2


def test_the_query_skips_live_finished_queued_unclaimed_and_spent_runs(
    lab: Any, new_uow: Any
) -> None:
    devices = [lab.add_device(f"meter-{n}") for n in range(6)]
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    runs = [lab.start([d], [case], environment) for d in devices]
    silent, live, cancelled, _queued, unclaimed, spent = runs
    for run in (silent, live, cancelled, spent):
        lab.record_started(run.id, runner=f"runner-{run.id}")
    lab.record_started(unclaimed.id)
    lab.cancel_test_run(cancelled.id, by="alice")
    for _ in range(2):
        lab.clock.advance(SILENT_FOR_S + 1)
        lab.record_progress(live.id, ProgressReport(0.5, runner=f"runner-{live.id}"))
        if not lab.get_test_run(silent.id).reoffers:
            assert _reoffer(lab, new_uow)() == [silent.id, spent.id]
    heard_before = lab.clock.now() - timedelta(seconds=SILENT_FOR_S)

    with new_uow(read_only=True) as uow:
        assert uow.test_runs.list_silent_claims(heard_before, 3, 100) == [silent.id, spent.id]
        assert uow.test_runs.list_silent_claims(heard_before, 1, 100) == []  # offered once
        assert uow.test_runs.list_silent_claims(heard_before, 3, 1) == [silent.id]
    assert [lab.get_test_run(r.id).reoffers for r in runs] == [1, 0, 0, 0, 0, 1]


def test_workers_re_offering_at_once_make_one_copy(lab: Any, new_uow: Any) -> None:
    device = lab.add_device("meter-1")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    for _ in range(3):
        run = lab.start([device], [case], environment)
        lab.record_started(run.id, runner="runner-a")
        lab.clock.advance(SILENT_FOR_S + 1)
        workers = [_reoffer(lab, new_uow) for _ in range(4)]

        outcomes = fire_together(workers)

        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        assert sorted(outcomes) == [[], [], [], [run.id]]
        assert len(_jobs(lab, run.id)) == 2
        assert lab.get_test_run(run.id).reoffers == 1
        lab.cancel_test_run(run.id, by="alice")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    url = request.getfixturevalue(fixture)
    upgrade_schema(url)
    return url


def test_migration_0007_upgrades_a_database_with_runs(
    fresh_url: str, clock: Any, lab_factory: Any
) -> None:
    engine = make_engine(fresh_url)

    def new_uow(read_only: bool = False) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(make_session_factory(engine), read_only)

    lab = lab_factory(new_uow, clock, UuidGenerator(), engine)
    device = lab.add_device("meter-1")
    case, environment = lab.add_test_case("voltage"), lab.add_environment()
    run = lab.start([device], [case], environment)
    lab.record_started(run.id, runner="runner-a")
    engine.dispose()
    downgrade_schema(fresh_url, "0006")  # the runs as devicelab before 0007 kept them

    upgrade_schema(fresh_url, "0007")
    upgrade_schema(fresh_url)  # today's code reads the rows at the latest revision

    engine = make_engine(fresh_url)
    lab = lab_factory(new_uow, clock, UuidGenerator(), engine)
    try:
        stored = lab.get_test_run(run.id)
        assert (stored.reoffers, stored.reoffered_at) == (0, None)
        assert stored.runner == "runner-a" and stored.status is RunStatus.RUNNING
        clock.advance(SILENT_FOR_S + 1)
        assert _reoffer(lab, new_uow)() == [run.id]
        assert lab.get_test_run(run.id).reoffers == 1
    finally:
        engine.dispose()
