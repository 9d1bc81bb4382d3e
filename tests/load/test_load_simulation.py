"""MeterLab US-091: many engineers start runs on overlapping devices at once while reference
runners consume the jobs — the API (gunicorn), the worker and the runners as separate
processes on PostgreSQL and RabbitMQ, everything on 127.0.0.1.

Each engineer signs in with an account of their own and, a bounded number of times, starts a
run on one to three devices of a small shared pool (so most starts collide), and now and then
cancels a run of theirs. Meanwhile a monitor checks the database's booking invariants over
and over. Afterwards:
- every run ended completed, failed or aborted;
- no device was ever held by two runs (live snapshots and the full status history);
- no device stayed in test after its run ended (live snapshots; at the end all are free);
- the jobs consumed equal the runs started: one job per run went out, and once the runners
  have stopped, nothing is left in the job queue nor in the dead-letter queue.

`make test` runs the short version; `make bench` the long one (DEVICELAB_LOAD_LONG=1)."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.support.booking_checks import history_violations, live_violations
from tests.support.deployment import Deployment

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

LONG = os.environ.get("DEVICELAB_LOAD_LONG") == "1"
ENGINEERS = 24 if LONG else 8
ATTEMPTS = 60 if LONG else 12  # starts per engineer
RUNNERS = 4 if LONG else 3
DEVICES = 16 if LONG else 6
CANCEL_PROBABILITY = 0.15
PASSWORD = "engineer-password-1"


@pytest.fixture
def lab(tmp_path, postgres_server, rabbitmq_url):
    from adapters.persistence.schema import upgrade_schema

    database_url = postgres_server.create_database("load")
    upgrade_schema(database_url)
    suffix = uuid.uuid4().hex[:8]
    names = {
        "DEVICELAB_EXCHANGE": f"load.{suffix}",
        "DEVICELAB_JOB_QUEUE": f"load.{suffix}.jobs",
        "DEVICELAB_DEAD_LETTER_QUEUE": f"load.{suffix}.dead",
        "DEVICELAB_CONTROL_EXCHANGE": f"load.{suffix}.control",
    }
    deployment = Deployment(
        tmp_path,
        DEVICELAB_DATABASE_URL=database_url,
        DEVICELAB_BROKER_URL=rabbitmq_url,
        # a simulated case of 1 s takes 0.1 s: runs overlap, and the lab stays quick
        DEVICELAB_RUNNER_TIME_FACTOR="0.1",
        DEVICELAB_LOG_LEVEL="WARNING",
        **names,
    )
    deployment.database_url, deployment.names = database_url, names
    try:
        deployment.start(runners=RUNNERS)
        yield deployment
    finally:
        deployment.stop()
        from kombu import Connection

        with Connection(rabbitmq_url) as connection:
            channel = connection.channel()
            for queue in (names["DEVICELAB_JOB_QUEUE"], names["DEVICELAB_DEAD_LETTER_QUEUE"]):
                channel.queue_delete(queue)
            for exchange in (names["DEVICELAB_EXCHANGE"], names["DEVICELAB_CONTROL_EXCHANGE"]):
                channel.exchange_delete(exchange)
        postgres_server.drop_database(database_url)


class Engineer(threading.Thread):
    def __init__(self, lab: Deployment, token: str, catalog: dict, seed: int) -> None:
        super().__init__(name=f"engineer-{seed}", daemon=True)
        self.lab, self.token, self.catalog = lab, token, catalog
        self.random = random.Random(seed)
        self.started: list[str] = []
        self.answers: Counter = Counter()
        self.unexpected: list = []

    def call(self, method: str, path: str, body: dict | None = None):
        return self.lab.request(
            method, path, body, auth=False, headers={"Authorization": f"Bearer {self.token}"}
        )

    def run(self) -> None:
        for _ in range(ATTEMPTS):
            devices = self.random.sample(self.catalog["devices"], self.random.randint(1, 3))
            status, body = self.call(
                "POST",
                "/api/test-runs",
                {
                    "test_case_ids": [self.random.choice(self.catalog["cases"])],
                    "environment_id": self.catalog["env"],
                    "device_ids": devices,
                    "when_busy": "reject",  # engineers who retry rather than queue
                },
            )
            self.answers[f"start {status}"] += 1
            if status == 201:
                self.started.append(body["id"])
                if self.random.random() < CANCEL_PROBABILITY:
                    status, body = self.call("POST", f"/api/test-runs/{body['id']}/cancel", {})
                    self.answers[f"cancel {status}"] += 1
                    if status not in (200, 409):  # 409: it finished first
                        self.unexpected.append(("cancel", status, body))
            elif not (status == 409 and body["code"] == "device_unavailable"):
                self.unexpected.append(("start", status, body))
            time.sleep(self.random.uniform(0.05, 0.25))  # reads the answer, thinks


class Monitor(threading.Thread):
    """Checks the booking invariants on live snapshots until told to stop."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="monitor", daemon=True)
        self.engine = sa.create_engine(database_url, poolclass=NullPool)
        self.stopping = threading.Event()
        self.snapshots = 0
        self.violations: list = []

    def rows(self, query: str) -> list:
        with self.engine.connect() as connection:
            return connection.execute(sa.text(query)).all()

    def run(self) -> None:
        while not self.stopping.wait(0.05):
            found = live_violations(self.rows)
            if found:
                self.violations.append(found)
            self.snapshots += 1


def _sign_in_engineers(lab: Deployment, count: int) -> list[str]:
    tokens = []
    for n in range(count):
        email = f"engineer-{n}@lab.example"
        status, body = lab.request(
            "POST",
            "/auth/users",
            {"email": email, "name": f"Engineer {n}", "role": "engineer", "password": PASSWORD},
        )
        assert status == 201, body
        status, body = lab.request(
            "POST", "/auth/login", {"email": email, "password": PASSWORD}, auth=False
        )
        assert status == 200, body
        tokens.append(body["token"])
    return tokens


def _queue_depths(rabbitmq_url: str, names: dict) -> list[int]:
    from kombu import Connection

    with Connection(rabbitmq_url) as connection:
        channel = connection.channel()
        return [
            channel.queue_declare(queue, passive=True).message_count
            for queue in (names["DEVICELAB_JOB_QUEUE"], names["DEVICELAB_DEAD_LETTER_QUEUE"])
        ]


def test_engineers_on_overlapping_devices_with_runners_consuming(lab, rabbitmq_url):
    made = lab.make_lab(devices=DEVICES, duration_s=1)
    second_case = lab.make_lab(devices=0, duration_s=2)["case"]
    catalog = {"devices": made["devices"], "cases": [made["case"], second_case], "env": made["env"]}
    engineers = [
        Engineer(lab, token, catalog, seed)
        for seed, token in enumerate(_sign_in_engineers(lab, ENGINEERS))
    ]
    monitor = Monitor(lab.database_url)
    monitor.start()
    try:
        for engineer in engineers:
            engineer.start()
        for engineer in engineers:
            engineer.join(timeout=300)
        assert not any(e.is_alive() for e in engineers), "an engineer hung"
        started = [run for e in engineers for run in e.started]
        finished = {
            run: lab.wait_for(run, {"completed", "failed", "aborted"}, within_s=120)
            for run in started
        }
    finally:
        monitor.stopping.set()
        monitor.join(timeout=30)
        monitor.engine.dispose()

    answers = sum((e.answers for e in engineers), Counter())
    assert [u for e in engineers for u in e.unexpected] == []
    # the load was real: many starts, many collisions, runners busy, some cancellations
    assert answers["start 201"] >= ENGINEERS, answers
    assert answers["start 409"] >= ENGINEERS, answers
    assert monitor.snapshots >= 10

    # every run ended, and none was left without an ending by the runners
    statuses = Counter(run["status"] for run in finished.values())
    assert set(statuses) <= {"completed", "failed", "aborted"}, statuses
    assert statuses["completed"] > 0, statuses
    assert all(run["runner"] for run in finished.values() if run["status"] == "completed")

    # no device held by two runs, none held after its run ended: live, and in the history
    assert monitor.violations == []
    engine = sa.create_engine(lab.database_url, poolclass=NullPool)
    try:

        def rows(query: str) -> list:
            with engine.connect() as connection:
                return connection.execute(sa.text(query)).all()

        assert history_violations(rows) == []
        assert live_violations(rows) == {}
        assert rows("SELECT count(*) FROM devices WHERE status <> 'available'") == [(0,)]
        # one job per started run went out, each once
        jobs = rows(
            "SELECT count(*), count(DISTINCT run_id), count(*) FILTER (WHERE sent_at IS NULL) "
            "FROM outbox WHERE kind = 'test_run.job'"
        )
        assert jobs == [(len(started), len(started), 0)]
    finally:
        engine.dispose()

    # the runners stop gracefully (a job in hand would be requeued): then every job was
    # consumed and settled, none is waiting and none was dead-lettered
    for name in [n for n in lab.processes if n.startswith("runner-")]:
        lab.kill(name, signum=15)
    assert _queue_depths(rabbitmq_url, lab.names) == [0, 0]
    print(f"load: {dict(answers)}, runs {dict(statuses)}, {monitor.snapshots} snapshots checked")
