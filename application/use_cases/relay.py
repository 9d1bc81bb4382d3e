"""Publishing the outbox: what the transactions wrote, handed to the broker afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from application.errors import PublishFailed
from application.job_contract import JOB_KIND
from application.ports import (
    Clock,
    MessagePublisher,
    OutboxMessage,
    RunCredentials,
)
from application.ports import (
    UnitOfWorkFactory as UowFactory,
)


@dataclass(frozen=True)
class RelayReport:
    sent: int
    failed: int
    error: str = ""
    more: bool = False  # the batch was full: more messages may be waiting


class RelayOutbox:
    """Claim a batch of unsent messages, publish them, mark each sent once the broker has
    confirmed it. The claim is committed before publishing, so no database lock is held
    while the broker is slow or away; a relay that dies mid-batch leaves claims that run
    out, and another relay publishes those messages (at least once, never lost)."""

    def __init__(
        self,
        uow: UowFactory,
        publisher: MessagePublisher,
        credentials: RunCredentials,
        clock: Clock,
        callback_base_url: str,
        credential_grace_s: float = 3600,
        claim_s: float = 30,
        batch: int = 100,
    ) -> None:
        self.uow, self.publisher, self.credentials, self.clock = uow, publisher, credentials, clock
        self.callback_base_url = callback_base_url.rstrip("/")
        self.credential_grace_s = credential_grace_s
        self.claim_s = claim_s
        self.batch = batch

    def __call__(self) -> RelayReport:
        now = self.clock.now()
        with self.uow() as uow:
            messages = uow.outbox.claim(now, now + timedelta(seconds=self.claim_s), self.batch)
            uow.commit()
        confirmed: list[tuple[OutboxMessage, datetime]] = []
        error = ""
        for message in messages:
            try:
                self.publisher.publish(message.kind, self._body(message))
            except PublishFailed as failure:
                error = str(failure)  # the broker is away: stop here, the rest waits
                break
            confirmed.append((message, self.clock.now()))
        if messages:
            # One transaction for the whole batch, not one commit per message: the relay's
            # pace is the broker's confirms, not the database's fsyncs. Should the relay die
            # before this commit, its claims run out and the batch goes out again (at least
            # once; runners drop a job whose run is no longer theirs).
            with self.uow() as uow:
                uow.outbox.mark_sent([(message.id, sent_at) for message, sent_at in confirmed])
                for unsent in messages[len(confirmed) :]:
                    uow.outbox.release_claim(unsent.id)
                uow.commit()
        if error:
            return RelayReport(len(confirmed), len(messages) - len(confirmed), error)
        return RelayReport(len(confirmed), 0, more=len(messages) == self.batch)

    def _body(self, message: OutboxMessage) -> dict:
        if message.kind != JOB_KIND:
            return message.payload
        deadline = datetime.fromisoformat(message.payload["deadline"])
        expires = deadline + timedelta(seconds=self.credential_grace_s)
        return {
            **message.payload,
            "callback": {
                "base_url": f"{self.callback_base_url}/api/runner/test-runs/{message.run_id}",
                "token": self.credentials.issue(message.run_id, expires),
            },
        }


class PurgeHistory:
    """Drop what only mattered for a while: sent outbox messages and old change-log rows."""

    def __init__(self, uow: UowFactory, clock: Clock, keep_s: float = 86400) -> None:
        self.uow, self.clock, self.keep_s = uow, clock, keep_s

    def __call__(self) -> int:
        cutoff = self.clock.now() - timedelta(seconds=self.keep_s)
        with self.uow() as uow:
            purged = uow.outbox.purge_sent(cutoff) + uow.changes.purge(cutoff)
            uow.commit()
        return purged
