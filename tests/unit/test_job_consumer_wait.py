"""How long the job consumer waits for the broker between looks at its job: a finished job's
message must be settled soon after the job ends (the broker sends nothing else meanwhile,
prefetch 1), without a busy loop during a long job."""

from __future__ import annotations

import time
from types import SimpleNamespace

from adapters.messaging.job_consumer import ConsumerOptions, JobConsumer


def consumer_with_job_of_age(age_s: float | None) -> JobConsumer:
    consumer = JobConsumer(
        "amqp://guest:guest@127.0.0.1:1//", lambda body: None, options=ConsumerOptions(poll_s=1.0)
    )
    if age_s is not None:
        consumer._job = SimpleNamespace(began=time.monotonic() - age_s, started=True)
    return consumer


def test_idle_it_waits_the_whole_poll_interval():
    assert consumer_with_job_of_age(None).wait_s() == 1.0


def test_a_young_job_is_looked_at_every_few_milliseconds():
    assert consumer_with_job_of_age(0).wait_s() <= 0.005
    assert consumer_with_job_of_age(0.05).wait_s() <= 0.01


def test_an_older_job_is_looked_at_less_often_never_beyond_the_poll_interval():
    assert 0.4 <= consumer_with_job_of_age(5).wait_s() <= 0.6
    assert consumer_with_job_of_age(600).wait_s() == 1.0
