"""The outbox relay: every job reaches the broker exactly once in the normal path, and none
is lost while the broker is away."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.auth.run_credentials import SignedRunCredentials
from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.messaging.in_memory import InMemoryPublisher
from adapters.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork
from application.errors import InvalidRunCredential
from application.job_contract import CANCEL_KIND, JOB_KIND
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    TestCaseInput,
)
from application.use_cases.devices import RegisterDevice, RegisterDeviceRequest
from application.use_cases.relay import PurgeHistory, RelayOutbox
from application.use_cases.test_runs import CancelTestRun, StartTestRun, StartTestRunRequest

SECRET = "unit-test-secret-0123456789-0123456789"


class Lab:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.clock = SettableClock()
        self.ids = SequentialIds()
        self.publisher = InMemoryPublisher()
        self.credentials = SignedRunCredentials(SECRET)

        def uow(read_only: bool = False):
            return InMemoryUnitOfWork(self.store, read_only)

        self.uow = uow
        register = RegisterDevice(uow, self.clock, self.ids)
        self.devices = [register(RegisterDeviceRequest(name=f"d{i}")).id for i in range(4)]
        self.case = CreateTestCase(uow, self.clock, self.ids)(
            TestCaseInput("c", [CriterionInput("v", "<", 1)], duration_s=1, timeout_s=60)
        ).id
        self.env = CreateEnvironment(uow, self.clock, self.ids)(EnvironmentInput("e")).id
        self.start_run = StartTestRun(uow, self.clock, self.ids, queue_allowance_s=100)
        self.cancel = CancelTestRun(uow, self.clock, self.ids)
        self.relay = RelayOutbox(
            uow,
            self.publisher,
            self.credentials,
            self.clock,
            "http://lab:8000/",
            3600,
            claim_s=30,
            batch=2,
        )

    def start(self, device_index: int):
        return self.start_run(
            StartTestRunRequest([self.case], self.env, [self.devices[device_index]])
        )


@pytest.fixture
def lab() -> Lab:
    return Lab()


def jobs(lab: Lab) -> list[dict]:
    return [payload for kind, payload in lab.publisher.published if kind == JOB_KIND]


def test_each_job_is_published_once_with_a_callback_for_its_run(lab):
    runs = [lab.start(i).id for i in range(3)]
    first = lab.relay()
    assert (first.sent, first.failed, first.more) == (2, 0, True)
    second = lab.relay()
    assert (second.sent, second.more) == (1, False)
    assert lab.relay().sent == 0  # nothing is published twice
    published = jobs(lab)
    assert [job["run_id"] for job in published] == runs
    for job in published:
        callback = job["callback"]
        assert callback["base_url"] == f"http://lab:8000/api/runner/test-runs/{job['run_id']}"
        assert lab.credentials.verify(callback["token"], lab.clock.now()) == job["run_id"]
        assert job["contract_version"] == 2 and job["devices"] and job["test_cases"]


def test_the_credential_expires_after_the_deadline_plus_grace(lab):
    run = lab.start(0)
    lab.relay()
    token = jobs(lab)[0]["callback"]["token"]
    lab.clock.advance((run.deadline - lab.clock.now()).total_seconds() + 3599)
    assert lab.credentials.verify(token, lab.clock.now()) == run.id
    lab.clock.advance(2)
    with pytest.raises(InvalidRunCredential):
        lab.credentials.verify(token, lab.clock.now())


def test_broker_down_keeps_the_jobs_and_sends_them_when_it_returns(lab):
    lab.publisher.available = False
    runs = [lab.start(i).id for i in range(3)]  # starting never needs the broker
    report = lab.relay()
    assert (report.sent, report.failed) == (0, 2) and "switched off" in report.error
    assert lab.relay().sent == 0  # still down: nothing sent, nothing lost
    lab.publisher.available = True
    while lab.relay().sent:
        pass
    assert sorted(job["run_id"] for job in jobs(lab)) == sorted(runs)
    assert len(jobs(lab)) == 3


def test_a_claim_of_a_relay_that_died_runs_out_and_another_relay_sends(lab):
    run = lab.start(0)
    with lab.uow() as uow:  # a relay claims the message, then dies before publishing
        now = lab.clock.now()
        assert len(uow.outbox.claim(now, now + timedelta(seconds=30), 10)) == 1
        uow.commit()
    assert lab.relay().sent == 0  # claimed by the dead relay
    lab.clock.advance(31)
    assert lab.relay().sent == 1
    assert [job["run_id"] for job in jobs(lab)] == [run.id]


def test_cancellations_go_out_too(lab):
    run = lab.start(0)
    lab.cancel(run.id, "alice", "wrong firmware")
    while lab.relay().sent:
        pass
    kinds = [kind for kind, _ in lab.publisher.published]
    assert kinds == [JOB_KIND, CANCEL_KIND]
    assert lab.publisher.published[1][1] == {
        "contract_version": 2,
        "run_id": run.id,
        "reason": "wrong firmware",
    }


def test_history_purge_keeps_unsent_messages(lab):
    lab.start(0)
    lab.relay()
    lab.publisher.available = False
    unsent = lab.start(1)
    lab.relay()
    lab.clock.advance(2 * 86400)
    PurgeHistory(lab.uow, lab.clock, keep_s=86400)()
    assert [m.run_id for m in lab.store.outbox] == [unsent.id]  # the sent one is gone
    lab.publisher.available = True
    assert lab.relay().sent == 1
    assert jobs(lab)[-1]["run_id"] == unsent.id


def test_a_broker_lost_mid_batch_keeps_what_it_confirmed_and_retries_the_rest(lab):
    runs = [lab.start(i).id for i in range(2)]
    publish = lab.publisher.publish

    def first_then_gone(kind, payload):
        publish(kind, payload)
        lab.publisher.available = False  # the broker goes away after confirming one

    lab.publisher.publish = first_then_gone
    report = lab.relay()
    assert (report.sent, report.failed) == (1, 1) and report.error
    with lab.uow() as uow:  # the confirmed one is marked sent at once, the other is free again
        now = lab.clock.now()
        assert [m.run_id for m in uow.outbox.claim(now, now, 10)] == [runs[1]]
    lab.clock.advance(31)
    lab.publisher.publish = publish
    lab.publisher.available = True
    assert lab.relay().sent == 1
    assert [job["run_id"] for job in jobs(lab)] == runs  # each exactly once
