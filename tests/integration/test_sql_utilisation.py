"""Device status timelines in SQL (adapters/persistence/repositories/utilisation.py) against
the in-memory twin: the same scripted history, the same utilisation per day, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from application.use_cases.utilisation import ShowUtilisation
from domain.devices import DeviceStatus as S
from tests.integration.test_sql_comparison import twins  # noqa: F401  (a fixture)
from tests.support.device_days import HOUR, script


def test_sql_and_memory_share_the_days_alike(twins):  # noqa: F811
    sql, memory = twins
    script(sql)
    script(memory)
    for days in (1, 2, 5):
        on_sql = ShowUtilisation(sql.new_uow, sql.clock)(days=days)
        assert on_sql == ShowUtilisation(memory.new_uow, memory.clock)(days=days)
    today = ShowUtilisation(sql.new_uow, sql.clock)(days=1)
    # the window starts after every change of m1 and after m2's offline: carried into it
    # (the clock starts a fraction of a second after 08:00 here)
    assert today[0].seconds == pytest.approx(
        {S.AVAILABLE: 4 * HOUR, S.OFFLINE: 2 * HOUR, S.MAINTENANCE: 2 * HOUR}, abs=1
    )
