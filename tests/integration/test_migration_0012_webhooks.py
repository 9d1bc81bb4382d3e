"""Migration 0012 on a database with rows in it: the runs from before are untouched, the new
webhook tables work at once (one delivery per subscription and event), and the way back down
to 0011 keeps the runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from domain.test_runs import RunStatus
from domain.webhooks import Delivery, DeliveryStatus, Subscription, WebhookEvent
from tests.integration.test_migration_0011_estimates import T0, _fill


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url_at_0011(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    url = request.getfixturevalue(fixture)
    upgrade_schema(url, "0009")
    _fill(url)
    upgrade_schema(url, "0011")
    return url


def test_runs_stay_and_webhooks_work_after_0012(url_at_0011: str) -> None:
    upgrade_schema(url_at_0011, "0012")
    engine = make_engine(url_at_0011)
    subscription = Subscription(
        "s1",
        "u1",
        "eng@lab",
        "https://hooks.example.com/x",
        (WebhookEvent.RUN_FINISHED,),
        "whsec_x",
        T0,
    )
    delivery = Delivery(
        "d1", "s1", WebhookEvent.RUN_FINISHED, "run.finished:queued", {"id": "d1"}, T0, T0
    )
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            assert {"webhook_subscriptions", "webhook_deliveries"} <= set(names)
        # head: the repositories read the columns of later revisions too
        upgrade_schema(url_at_0011)
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            assert uow.test_runs.get("queued").status is RunStatus.QUEUED
            assert uow.webhooks.dispatch_cursor() is None
            uow.webhooks.set_dispatch_cursor(7, [5, 6])
            uow.webhooks.add_subscription(subscription)
            assert uow.webhooks.add_delivery(delivery)
            uow.commit()
        with SqlAlchemyUnitOfWork(make_session_factory(engine)) as uow:
            again = Delivery("d2", "s1", delivery.event, delivery.event_key, {}, T0, T0)
            assert uow.webhooks.add_delivery(again) is False
            (due,) = uow.webhooks.due_deliveries(T0 + timedelta(seconds=1), 10)
            assert due.id == "d1" and due.status is DeliveryStatus.PENDING
            assert uow.webhooks.list_subscriptions("u1")[0].events == (WebhookEvent.RUN_FINISHED,)
            assert uow.webhooks.dispatch_cursor() == (7, [5, 6])
        downgrade_schema(url_at_0011, "0011")
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            assert "webhook_deliveries" not in names
            count = connection.execute(sa.text("SELECT count(*) FROM test_runs")).scalar()
            assert count == 2
    finally:
        engine.dispose()
