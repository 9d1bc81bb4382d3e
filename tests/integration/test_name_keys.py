"""Names unique without regard to case or Unicode form, in the database (migration 0005): the
unique index on the name key refuses what the use cases' own check cannot see (a race), and
the migration brings existing rows under the rules: colliding names renamed (the oldest keeps
its name), forbidden characters removed, environment variable names made valid."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.persistence import tables
from adapters.persistence.engine import make_engine, make_session_factory
from adapters.persistence.schema import downgrade_schema, upgrade_schema
from adapters.persistence.unit_of_work import SqlAlchemyUnitOfWork
from application.errors import AlreadyExists
from application.ports import DeviceFilter, NameFilter
from domain.devices import Device
from domain.environments import Environment

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CAFE = "Caf\u00e9"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'names.db'}"
    return request.getfixturevalue("fresh_postgres_url")


def _uow(engine: sa.Engine) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(make_session_factory(engine))


def test_the_unique_key_refuses_a_case_variant_the_use_case_did_not_see(url: str) -> None:
    upgrade_schema(url)
    engine = make_engine(url)
    try:
        with _uow(engine) as uow:
            uow.devices.add(Device("d1", "Meter 1", created_at=T0, updated_at=T0))
            uow.environments.add(Environment("e1", CAFE, created_at=T0, updated_at=T0))
            uow.commit()
        with _uow(engine) as uow, pytest.raises(AlreadyExists):
            uow.devices.add(Device("d2", "METER 1", created_at=T0, updated_at=T0))
        with _uow(engine) as uow, pytest.raises(AlreadyExists):
            decomposed = unicodedata.normalize("NFD", CAFE).lower()
            uow.environments.add(Environment("e2", decomposed, created_at=T0, updated_at=T0))
        with _uow(engine) as uow:
            assert uow.devices.get_by_name("meter 1").id == "d1"
            assert uow.environments.get_by_name(unicodedata.normalize("NFD", CAFE)).id == "e1"
    finally:
        engine.dispose()


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _old_rows(connection: sa.Connection) -> None:
    """Rows as a database at 0003 may hold them (written before the rules), into its tables
    as they are then (today's metadata has columns that later revisions added or dropped)."""
    meta = sa.MetaData()
    meta.reflect(connection)
    old = meta.tables

    def device(device_id: str, name: str, minutes: int | None) -> dict[str, Any]:
        at = None if minutes is None else _at(minutes)
        return {
            "id": device_id,
            "name": name,
            "model": "",
            "serial": "",
            "firmware_version": "",
            "location": "",
            "held_by": None,
            "marked_offline": False,
            "status": "available",
            "last_seen_at": None,
            "created_at": at,
            "updated_at": at,
            "version": 1,
        }

    devices = [
        device("d-young", "meter 1", 1),
        device("d-oldest", "Meter 1", 0),
        device("d-youngest", "METER 1", 2),
        device("d-suffixed", "Meter 1 (2)", 3),  # was unique: keeps its name
        device("d-cafe", CAFE, 4),
        device("d-cafe-nfd", unicodedata.normalize("NFD", CAFE), 5),
        device("d-bidi", "evil\u202ename", 6),
        device("d-empty", "\x1b\x07", 7),
    ]
    connection.execute(sa.insert(old["devices"]), devices)
    connection.execute(
        sa.insert(old["device_labels"]),
        [
            {"device_id": "d-oldest", "key": "bench", "value": "B"},
            {"device_id": "d-oldest", "key": "bench\x1b", "value": "A\x07"},
            {"device_id": "d-young", "key": "site", "value": "lab"},
        ],
    )

    def case(case_id: str, name: str, minutes: int) -> dict[str, Any]:
        return {
            "id": case_id,
            "name": name,
            "description": "",
            "criteria": [{"metric": "v", "condition": "<", "threshold": 1.0, "unit": ""}],
            "duration_s": 1,
            "timeout_s": 10,
            "default_parameters": {},
            "tags": [],
            "version": 1,
            "created_at": _at(minutes),
            "updated_at": _at(minutes),
        }

    connection.execute(
        sa.insert(old["test_cases"]), [case("c-old", "Voltage", 0), case("c-new", "voltage", 1)]
    )
    variables = {"PATH": "/opt/x", "1A": "v", "a-b": "w", "a_b": "z", "OK": "ok\x1b", "LD_X": ""}
    connection.execute(
        sa.insert(old["environments"]),
        [
            {
                "id": "e-old",
                "name": "Bench",
                "description": "",
                "variables": variables,
                "created_at": _at(0),
                "updated_at": _at(0),
            },
            {
                "id": "e-new",
                "name": "bench",
                "description": "",
                "variables": {"TEMP": "23"},
                "created_at": _at(1),
                "updated_at": _at(1),
            },
        ],
    )


def test_migration_0005_renames_collisions_cleans_names_and_keeps_every_row(url: str) -> None:
    upgrade_schema(url, "0003")
    engine = make_engine(url)
    try:
        old_columns = {c["name"] for c in sa.inspect(engine).get_columns("devices")}
        with engine.begin() as connection:
            # the 0003 schema has no name_key: insert only the columns it has
            assert "name_key" not in old_columns
            _old_rows(connection)
        engine.dispose()
        upgrade_schema(url, "0005")
        with engine.connect() as connection:
            keys = connection.execute(sa.text("SELECT name_key FROM devices")).scalars().all()
            assert len(keys) == len(set(keys)) == 8 and "meter 1" in keys
        upgrade_schema(url)  # today's code reads the rows at the latest revision

        with _uow(engine) as uow:  # every row loads under the new rules
            names = {d.id: d.name for d in uow.devices.list(DeviceFilter(), 100, None)}
            assert names == {
                "d-oldest": "Meter 1",
                "d-young": "meter 1 (3)",
                "d-youngest": "METER 1 (4)",
                "d-suffixed": "Meter 1 (2)",
                "d-cafe": CAFE,
                "d-cafe-nfd": f"{CAFE} (2)",
                "d-bidi": "evilname",
                "d-empty": "unnamed",
            }
            assert uow.devices.get("d-oldest").labels == {"bench": "B", "bench (2)": "A"}
            assert uow.devices.get("d-young").labels == {"site": "lab"}
            cases = {c.id: c.name for c in uow.test_cases.list(NameFilter(), 10, None)}
            assert cases == {"c-old": "Voltage", "c-new": "voltage (2)"}
            old, new = uow.environments.get("e-old"), uow.environments.get("e-new")
            assert (old.name, new.name) == ("Bench", "bench (2)")
            assert old.variables == {
                "LAB_PATH": "/opt/x",
                "_1A": "v",
                "a_b": "z",
                "a_b_2": "w",
                "OK": "ok",
                "LAB_LD_X": "",
            }
            assert new.variables == {"TEMP": "23"}
            assert uow.devices.get_by_name("METER 1").id == "d-oldest"

        downgrade_schema(url, "0003")  # and back: the key columns go, the rows stay
        assert "name_key" not in {c["name"] for c in sa.inspect(engine).get_columns("devices")}
        with engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(tables.devices))
            assert count.scalar_one() == 8
        engine.dispose()
        upgrade_schema(url)
    finally:
        engine.dispose()


def test_migration_0005_on_an_empty_database(url: str) -> None:
    upgrade_schema(url, "0003")
    upgrade_schema(url, "0005")
    engine = make_engine(url)
    try:
        unique = {
            tuple(u["column_names"]) for u in sa.inspect(engine).get_unique_constraints("devices")
        }
        assert ("name_key",) in unique
    finally:
        engine.dispose()
