"""Takes jobs off the job queue one at a time and settles each message once its job is done.

- prefetch 1 and manual acks: a runner holds at most one job, and its message stays unacked
  (redelivered if the runner dies) until the job's handler decided what becomes of it;
- the handler runs in a worker thread while this thread keeps serving the connection
  (AMQP heartbeats, cancellations on the control exchange); every ack, requeue and
  dead-letter happens on this thread, the only one that touches the channel;
- a lost broker connection is re-established with exponential backoff (starting afresh once
  consuming worked again); a job in progress then runs to its end (its message went back to
  the queue with the connection, and devicelab turns the redelivered copy away once the run
  has finished);
- a deferred job (its run is claimed by a live runner) is published again at the end of the
  job queue with a not-before time and its message acked; whoever takes that copy holds it,
  without starting it, until then: a delayed requeue that works on every transport;
- `stop()` (safe to call from a signal handler) asks the handler's owner to stop the job in
  progress (`on_shutdown`) and ends once its message has been settled."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Consumer, Producer, Queue
from kombu.exceptions import OperationalError
from kombu.message import Message

from adapters.messaging.topology import (
    DEAD_ROUTING_KEY,
    JOB_ROUTING_KEY,
    Topology,
    supports_fanout,
)
from application.runner import Disposition, JobOutcome

log = logging.getLogger(__name__)

DEAD_REASON_HEADER = "x-devicelab-dead-reason"
DEAD_DETAIL_HEADER = "x-devicelab-dead-detail"
NOT_BEFORE_HEADER = "x-devicelab-not-before"  # a deferred job: seconds since the epoch
DEFERRALS_HEADER = "x-devicelab-deferrals"  # how often the job was deferred so far


@dataclass(frozen=True)
class ConsumerOptions:
    poll_s: float = 1.0  # how often the loop looks at its flags while the broker is quiet
    heartbeat_s: float = 30.0  # AMQP heartbeat
    connect_timeout_s: float = 5.0
    first_reconnect_delay_s: float = 1.0
    # A broker restart takes 10-20 s: with a longer cap, doubling delays (1, 2, 4, 8, 16 s)
    # would leave a runner idle up to that long after the broker is back. A refused
    # connection every 5 s per runner costs the broker nothing.
    max_reconnect_delay_s: float = 5.0
    # the embedded (SQLAlchemy) transport polls its tables this often
    polling_interval_s: float = 1.0
    # the longest a deferred job is held before it starts, whatever its not-before time says
    # (another host's clock may be off)
    max_defer_s: float = 600.0


class _Job:
    """A job message whose handler runs in a worker thread, from `hold_s` on (a deferred
    job waits so long first)."""

    def __init__(
        self, message: Message, handle: Callable[[bytes], JobOutcome], hold_s: float = 0.0
    ) -> None:
        self.message = message
        self.outcome: JobOutcome | None = None
        self.done = threading.Event()
        self.began = time.monotonic()
        self.due = self.began + hold_s
        self.started = False
        self.thread = threading.Thread(
            target=self._run, args=(handle, _raw_body(message)), name="job", daemon=True
        )

    def start_when_due(self) -> None:
        if not self.started and time.monotonic() >= self.due:
            self.started = True
            self.began = time.monotonic()
            self.thread.start()

    def give_back_unstarted(self) -> None:
        """The runner stops before the job's time came: the message goes back untouched."""
        if not self.started:
            self.started = True
            self.outcome = JobOutcome(Disposition.REQUEUE, "shutdown")
            self.done.set()

    def _run(self, handle: Callable[[bytes], JobOutcome], body: bytes) -> None:
        try:
            self.outcome = handle(body)
        except Exception as error:
            log.exception("the job handler crashed")
            # once more for a transient crash; a second crash on the same message is a bug
            redelivered = bool(self.message.delivery_info.get("redelivered"))
            self.outcome = JobOutcome(
                Disposition.DEAD_LETTER if redelivered else Disposition.REQUEUE,
                "runner_error",
                f"{type(error).__name__}: {error}",
            )
        finally:
            self.done.set()


class JobConsumer:
    def __init__(
        self,
        broker_url: str,
        handle_job: Callable[[bytes], JobOutcome],
        on_cancel: Callable[[bytes], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
        topology: Topology | None = None,
        options: ConsumerOptions | None = None,
        name: str = "runner",
        takes_jobs: Callable[[], bool] | None = None,
    ) -> None:
        """`takes_jobs()` False (the runner is drained): stop consuming once no job is in
        hand, and consume again when it turns True."""
        self.takes_jobs = takes_jobs or (lambda: True)
        self.broker_url = broker_url
        self.handle_job, self.on_cancel, self.on_shutdown = handle_job, on_cancel, on_shutdown
        self.topology = topology or Topology()
        self.options = options or ConsumerOptions()
        self.name = name
        self._stop_requested = False  # a plain flag: set from signal handlers
        self._shutdown_started = False
        self._job: _Job | None = None
        self.ready = threading.Event()  # set while consuming (for tests and health checks)

    def stop(self) -> None:
        self._stop_requested = True

    @property
    def stopping(self) -> bool:
        return self._stop_requested

    @property
    def busy(self) -> bool:
        """A job is executing, or its message is not settled yet."""
        return self._job is not None

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until `stop()`; reconnects with backoff when the broker goes away."""
        delay = self.options.first_reconnect_delay_s
        while not self._stop_requested:
            connection = self._connection()
            errors = (
                *connection.connection_errors,
                *connection.channel_errors,
                OperationalError,
                OSError,
            )
            try:
                with connection:
                    # one attempt; the backoff below is ours, so stop() is noticed meanwhile
                    connection.ensure_connection(max_retries=0)
                    self._serve(connection)
                    delay = self.options.first_reconnect_delay_s
            except errors as error:
                if self.ready.is_set():
                    # it was consuming: a new outage, so the backoff starts afresh
                    delay = self.options.first_reconnect_delay_s
                self.ready.clear()
                log.warning(
                    "broker connection lost or refused (%s: %s)", type(error).__name__, error
                )
                self._finish_job_without_broker()
                if self._stop_requested:
                    break
                log.info("reconnecting to the broker in %.1f s", delay)
                self._sleep(delay)
                delay = min(delay * 2, self.options.max_reconnect_delay_s)
        self.ready.clear()
        self._begin_shutdown()
        log.info("job consumer stopped")

    def _connection(self) -> Connection:
        amqp = supports_fanout(self.broker_url)
        connection = Connection(
            self.broker_url,
            heartbeat=self.options.heartbeat_s if amqp else 0,
            connect_timeout=self.options.connect_timeout_s,
            # amqp: the dead-letter copy is confirmed by the broker before the job is acked
            transport_options={"confirm_publish": True} if amqp else {},
        )
        if not amqp:
            # not a transport option: the SQLAlchemy transport hands those to create_engine
            connection.transport.polling_interval = self.options.polling_interval_s
        return connection

    def _serve(self, connection: Connection) -> None:
        channel = connection.channel()
        for queue in (self.topology.jobs, self.topology.dead_letters):
            queue.bind(channel).declare()
        producer = Producer(channel)
        jobs = Consumer(
            channel,
            queues=[self.topology.jobs],
            on_message=self._on_job,
            prefetch_count=1,
            no_ack=False,
        )
        control = None
        if supports_fanout(self.broker_url) and self.on_cancel is not None:
            control_queue = Queue(
                f"{self.topology.control_exchange}.{self.name}.{uuid.uuid4().hex[:12]}",
                self.topology.control,
                durable=False,
                exclusive=True,
                auto_delete=True,
            )
            control = Consumer(
                connection.channel(), [control_queue], on_message=self._on_control, no_ack=True
            )
            control.consume()
        jobs.consume()
        self.ready.set()
        log.info("consuming jobs from %s", self.topology.job_queue)
        consuming = True
        while True:
            if self._stop_requested:
                self._begin_shutdown()
                if consuming:
                    jobs.cancel()  # take no new job while the last one is settled
                    consuming = False
                if self._job is not None:
                    self._job.give_back_unstarted()
                if self._job is None:
                    break
            elif consuming != self.takes_jobs() and (self._job is None or not consuming):
                consuming = not consuming
                if consuming:
                    jobs.consume()
                    log.info("consuming jobs from %s again", self.topology.job_queue)
                else:
                    jobs.cancel()
                    log.info("not consuming jobs while drained")
            if self._job is not None:
                self._job.start_when_due()
            with contextlib.suppress(TimeoutError):  # quiet broker: look at the flags again
                connection.drain_events(timeout=self.wait_s())
            connection.heartbeat_check()
            self._settle(producer)
        if control is not None:
            control.cancel()

    def wait_s(self) -> float:
        """How long the loop waits for the broker before it looks at its job again. With a
        job in hand the broker sends nothing (prefetch 1) until its message is settled, and
        the loop settles it only between waits: so wait at most a tenth of the job's age
        (2 ms at first), and a job that takes 20 ms is acked a few ms after it ends instead of
        up to `poll_s` later, while a long job costs no busy loop."""
        job = self._job
        if job is None:
            return self.options.poll_s
        if not job.started:  # a deferred job: look again when it is due
            return min(self.options.poll_s, max(0.002, job.due - time.monotonic()))
        return min(self.options.poll_s, max(0.002, (time.monotonic() - job.began) / 10))

    # -- messages --------------------------------------------------------------------------------

    def _on_job(self, message: Message) -> None:
        if self._job is not None or self._stop_requested or not self.takes_jobs():
            # prefetch 1 makes this rare; never run two jobs at once (nor one while drained)
            message.requeue()
            return
        self._job = _Job(message, self.handle_job, self._hold_s(message))
        self._job.start_when_due()

    def _hold_s(self, message: Message) -> float:
        raw = (message.headers or {}).get(NOT_BEFORE_HEADER)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return 0.0
        return min(max(0.0, raw - time.time()), self.options.max_defer_s)

    def _on_control(self, message: Message) -> None:
        assert self.on_cancel is not None
        try:
            self.on_cancel(_raw_body(message))
        except Exception:
            log.warning("ignoring a control message that could not be handled", exc_info=True)

    def _settle(self, producer: Producer) -> None:
        job = self._job
        if job is None or not job.done.is_set():
            return
        outcome = job.outcome
        assert outcome is not None
        message = job.message
        if outcome.disposition is Disposition.REQUEUE:
            message.requeue()
        elif outcome.disposition is Disposition.DEFER:
            self._defer(producer, message, outcome)
            message.ack()
        elif outcome.disposition is Disposition.DEAD_LETTER:
            self._dead_letter(producer, message, outcome)
            message.ack()
        else:
            message.ack()
        self._job = None
        log.info(
            "job %s settled: %s (%s)", outcome.run_id or "?", outcome.disposition, outcome.reason
        )

    def _dead_letter(self, producer: Producer, message: Message, outcome: JobOutcome) -> None:
        headers = {
            DEAD_REASON_HEADER: outcome.reason,
            DEAD_DETAIL_HEADER: outcome.detail[:1000],
            "x-devicelab-dead-lettered-by": self.name,
            "x-devicelab-dead-lettered-at": datetime.now(UTC).isoformat(),
        }
        self._publish_copy(producer, message, DEAD_ROUTING_KEY, headers)
        log.warning("job message dead-lettered: %s (%s)", outcome.reason, outcome.detail)

    def _defer(self, producer: Producer, message: Message, outcome: JobOutcome) -> None:
        """A copy at the end of the job queue that no runner starts before the delay; the
        original is acked after the copy was published (confirmed, on RabbitMQ)."""
        deferrals = (message.headers or {}).get(DEFERRALS_HEADER)
        count = deferrals + 1 if isinstance(deferrals, int) and deferrals >= 0 else 1
        headers = {NOT_BEFORE_HEADER: time.time() + outcome.delay_s, DEFERRALS_HEADER: count}
        self._publish_copy(producer, message, JOB_ROUTING_KEY, headers)
        log.info(
            "job %s deferred for %.0f s (%d time(s) so far): %s",
            outcome.run_id or "?",
            outcome.delay_s,
            count,
            outcome.detail,
        )

    def _publish_copy(
        self, producer: Producer, message: Message, routing_key: str, headers: dict[str, Any]
    ) -> None:
        queue = (
            self.topology.dead_letters if routing_key == DEAD_ROUTING_KEY else self.topology.jobs
        )
        producer.publish(
            _raw_body(message),
            exchange=self.topology.job_exchange,
            routing_key=routing_key,
            content_type=message.content_type or "application/octet-stream",
            content_encoding=message.content_encoding or "binary",
            headers={**(message.headers or {}), **headers},
            delivery_mode=2,
            declare=[queue],
        )

    # -- stopping ---------------------------------------------------------------------------------

    def _begin_shutdown(self) -> None:
        if self._shutdown_started:
            return
        self._shutdown_started = True
        if self.on_shutdown is not None:
            self.on_shutdown()

    def _finish_job_without_broker(self) -> None:
        """The connection is gone and with it the job's message (back in the queue): let the
        job run to its end, its outcome reaches devicelab over HTTP all the same."""
        job, self._job = self._job, None
        if job is None or not job.started:  # a deferred job not started yet: nothing runs
            return
        log.warning("the broker connection dropped during a job; finishing it first")
        while not job.done.wait(self.options.poll_s):
            if self._stop_requested:
                self._begin_shutdown()
        log.info(
            "job %s ended (%s) after its message went back to the queue",
            job.outcome.run_id if job.outcome else "?",
            job.outcome.reason if job.outcome else "?",
        )

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop_requested and time.monotonic() < end:
            time.sleep(min(self.options.poll_s, max(0.0, end - time.monotonic())))


def _raw_body(message: Message) -> bytes:
    body = message.body
    return body.encode() if isinstance(body, str) else bytes(body)
