"""Where messages go: exchange and queue names (from configuration) and their declarations.

Jobs go through a durable direct exchange to a durable job queue that every runner consumes.
Messages a runner cannot parse are moved to a dead-letter queue. Cancellations go to a fanout
control exchange that each runner binds a private queue to (brokers that support fanout only;
on the embedded transport a runner learns of a cancellation from the 409 its next progress
report gets)."""

from __future__ import annotations

from dataclasses import dataclass

from kombu import Exchange, Queue

JOB_ROUTING_KEY = "test_run.job"
DEAD_ROUTING_KEY = "test_run.dead"


@dataclass(frozen=True)
class Topology:
    exchange: str = "devicelab"
    job_queue: str = "devicelab.jobs"
    dead_letter_queue: str = "devicelab.jobs.dead"
    control_exchange: str = "devicelab.control"

    @property
    def job_exchange(self) -> Exchange:
        return Exchange(self.exchange, type="direct", durable=True)

    @property
    def jobs(self) -> Queue:
        return Queue(
            self.job_queue,
            self.job_exchange,
            routing_key=JOB_ROUTING_KEY,
            durable=True,
            # RabbitMQ moves rejected messages there by itself; the runner also moves
            # unparseable messages explicitly, which works on every transport.
            queue_arguments={
                "x-dead-letter-exchange": self.exchange,
                "x-dead-letter-routing-key": DEAD_ROUTING_KEY,
            },
        )

    @property
    def dead_letters(self) -> Queue:
        return Queue(
            self.dead_letter_queue, self.job_exchange, routing_key=DEAD_ROUTING_KEY, durable=True
        )

    @property
    def control(self) -> Exchange:
        return Exchange(self.control_exchange, type="fanout", durable=True)


def supports_fanout(broker_url: str) -> bool:
    return broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))
