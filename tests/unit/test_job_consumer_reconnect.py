"""The job consumer's reconnect backoff: it grows while the broker stays away, and starts
afresh once consuming worked again, so a second outage hours later is not waited out with the
first outage's long delay. The broker is a script of connection outcomes, the pauses are
recorded instead of slept."""

from __future__ import annotations

from adapters.messaging.job_consumer import ConsumerOptions, JobConsumer


class ScriptedConnection:
    connection_errors = (ConnectionError,)
    channel_errors = ()

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome

    def __enter__(self) -> ScriptedConnection:
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def ensure_connection(self, max_retries: int) -> None:
        if self.outcome == "refused":
            raise ConnectionError("connection refused")


def consumer_through(outcomes: list[str]) -> tuple[JobConsumer, list[float]]:
    """A consumer whose connections go as `outcomes` says ("refused", or "lost" after
    consuming for a while); it stops when the script ends."""
    consumer = JobConsumer(
        "amqp://guest:guest@127.0.0.1:1//",
        lambda body: None,
        options=ConsumerOptions(first_reconnect_delay_s=1, max_reconnect_delay_s=30),
    )
    script = list(outcomes)
    pauses: list[float] = []

    def connection() -> ScriptedConnection:
        return ScriptedConnection(script.pop(0))

    def serve(connection: ScriptedConnection) -> None:
        consumer.ready.set()  # consuming, until the connection drops
        raise ConnectionError("connection reset by peer")

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if not script:
            consumer.stop()

    consumer._connection = connection  # type: ignore[method-assign]
    consumer._serve = serve  # type: ignore[method-assign]
    consumer._sleep = sleep  # type: ignore[method-assign]
    return consumer, pauses


def test_the_backoff_grows_while_the_broker_stays_away():
    consumer, pauses = consumer_through(["refused"] * 5)
    consumer.run()
    assert pauses == [1, 2, 4, 8, 16]


def test_the_backoff_starts_afresh_after_a_successful_reconnect():
    outage, back, second_outage = ["refused"] * 3, ["lost"], ["refused"] * 2
    consumer, pauses = consumer_through(outage + back + second_outage)
    consumer.run()
    assert pauses == [1, 2, 4, 1, 2, 4]
