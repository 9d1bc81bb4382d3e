"""Integration-test fixtures: real SQLite files and a real PostgreSQL server, with schemas built
by the Alembic migrations.

PostgreSQL comes from DEVICELAB_TEST_POSTGRES_URL (default: the local server, user postgres).
Each test session creates its own uniquely named databases there and drops them at the end.
When the server does not answer, PostgreSQL tests are skipped, except in CI (CI=true), where
they fail: a CI run must not pass by silently testing less."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.clocks import SettableClock
from adapters.identifiers import SequentialIds
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.catalog import (
    CreateEnvironment,
    CreateTestCase,
    CriterionInput,
    EnvironmentInput,
    ListEnvironments,
    ListTestCases,
    TestCaseInput,
    UpdateTestCase,
)
from application.use_cases.devices import (
    DeleteDevice,
    GetDevice,
    GetDeviceHistory,
    ListDevices,
    MarkSilentDevicesOffline,
    RecordHeartbeat,
    RegisterDevice,
    RegisterDeviceRequest,
    SetDeviceStatus,
    UpdateDevice,
)
from application.use_cases.test_runs import (
    CancelTestRun,
    ExpireOverdueRuns,
    GetTestRun,
    ListTestRuns,
    RecordRunProgress,
    RecordRunResult,
    RecordRunStarted,
    StartTestRun,
    StartTestRunRequest,
)
from domain.devices import Device
from domain.environments import Environment
from domain.test_cases import TestCase
from domain.test_runs import TestRun

# microseconds on purpose: both backends must keep them
T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    # a subdirectory that does not exist yet: make_engine must create it
    return f"sqlite:///{tmp_path / 'data' / 'devicelab.db'}"


# -- a migrated, empty database on either backend ------------------------------------------


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database with the schema at head, on SQLite and on PostgreSQL."""
    return database_at_head(request, request.param)


def database_at_head(request: pytest.FixtureRequest, backend: str) -> str:
    """For a fixture with more parameters than BACKENDS: an empty database at head on
    `backend` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        return request.getfixturevalue("migrated_sqlite")(request.getfixturevalue("sqlite_url"))
    return request.getfixturevalue("empty_postgres_url")


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest) -> str:
    """A database with no schema yet, on SQLite and on PostgreSQL: a migration test takes it
    to the revision before the one it tests (`at_revision`), fills it, then upgrades."""
    return request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    )


def at_revision(url: str, revision: str) -> str:
    upgrade_schema(url, revision)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: sa.Engine) -> Any:
    return make_session_factory(engine)


@pytest.fixture
def new_uow(session_factory: Any) -> Any:
    return functools.partial(SqlAlchemyUnitOfWork, session_factory)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


@pytest.fixture
def lab(new_uow: Any, clock: SettableClock, engine: sa.Engine) -> Lab:
    return Lab(new_uow, clock, SequentialIds(), engine)


@pytest.fixture
def lab_factory() -> type[Lab]:
    """For a second lab on other adapters, e.g. the in-memory twin to compare with."""
    return Lab


# -- the use cases on the SQL adapters -------------------------------------------------------


class Lab:
    """The use cases wired to one unit-of-work factory (SQL, or in-memory to compare with),
    with builders for the usual test data and a look at the committed rows (SQL only)."""

    def __init__(
        self, new_uow: Any, clock: SettableClock, ids: Any, engine: sa.Engine | None = None
    ) -> None:
        self.new_uow, self.clock, self.ids, self.engine = new_uow, clock, ids, engine
        uow = new_uow
        self.register_device = RegisterDevice(uow, clock, ids)
        self.get_device = GetDevice(uow)
        self.list_devices = ListDevices(uow)
        self.update_device = UpdateDevice(uow, clock)
        self.delete_device = DeleteDevice(uow)
        self.set_device_status = SetDeviceStatus(uow, clock, ids)
        self.device_history = GetDeviceHistory(uow)
        self.record_heartbeat = RecordHeartbeat(uow, clock, ids)
        self.mark_silent_offline = MarkSilentDevicesOffline(uow, clock, max_silence_s=300)
        self.create_test_case = CreateTestCase(uow, clock, ids)
        self.update_test_case = UpdateTestCase(uow, clock)
        self.list_test_cases = ListTestCases(uow)
        self.create_environment = CreateEnvironment(uow, clock, ids)
        self.list_environments = ListEnvironments(uow)
        self.start_test_run = StartTestRun(uow, clock, ids, queue_allowance_s=600)
        self.get_test_run = GetTestRun(uow)
        self.list_test_runs = ListTestRuns(uow)
        self.record_started = RecordRunStarted(uow, clock, ids)
        self.record_progress = RecordRunProgress(uow, clock, ids, lease_s=300)
        self.record_result = RecordRunResult(uow, clock, ids)
        self.cancel_test_run = CancelTestRun(uow, clock, ids)
        self.expire_overdue_runs = ExpireOverdueRuns(uow, clock, ids)

    def add_device(self, name: str, **details: Any) -> Device:
        return self.register_device(RegisterDeviceRequest(name=name, **details))

    def add_test_case(
        self,
        name: str,
        criteria: Iterable[tuple[str, str, float] | CriterionInput] = (("voltage", "<=", 240.0),),
        **details: Any,
    ) -> TestCase:
        inputs = [c if isinstance(c, CriterionInput) else CriterionInput(*c) for c in criteria]
        return self.create_test_case(
            TestCaseInput(name=name, criteria=inputs, **details), may_define_execution=True
        )

    def add_environment(self, name: str = "climate chamber", **details: Any) -> Environment:
        return self.create_environment(EnvironmentInput(name=name, **details))

    def start(
        self,
        devices: Iterable[Device | str],
        cases: Iterable[TestCase | str],
        environment: Environment | str,
        **request: Any,
    ) -> TestRun:
        return self.start_test_run(
            StartTestRunRequest(
                test_case_ids=[_id(c) for c in cases],
                environment_id=_id(environment),
                device_ids=[_id(d) for d in devices],
                **request,
            )
        )

    def rows(self, sql: str, **params: Any) -> list[Any]:
        assert self.engine is not None
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).all()

    def scalar(self, sql: str, **params: Any) -> Any:
        assert self.engine is not None
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()


def _id(item: Any) -> str:
    return item if isinstance(item, str) else item.id
