"""Alembic environment for devicelab.

Used both through `adapters.persistence.schema` (which builds the Alembic config in code) and
through the `alembic` command with `adapters/persistence/alembic.ini` when writing a new
revision. The database URL comes from the config's `sqlalchemy.url`, or `-x url=...` on the
command line.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from adapters.persistence.auth_tables import VERSION_TABLE as AUTH_VERSION_TABLE
from adapters.persistence.auth_tables import auth_metadata
from adapters.persistence.engine import make_engine
from adapters.persistence.tables import metadata

config = context.config
if config.config_file_name is not None:
    # the alembic command with alembic.ini; the programmatic API leaves logging alone
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or pass -x url=...")
    return url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    dialect = connection.dialect.name if connection is not None else (url or "").split(":")[0]
    is_sqlite = dialect.startswith("sqlite")
    context.configure(
        connection=connection,
        url=url,
        target_metadata=metadata,
        compare_type=True,
        # SQLite alters tables by copying them; batch mode writes migrations that way.
        render_as_batch=is_sqlite,
        # Our engine emits BEGIN itself on SQLite, so DDL there is transactional too.
        transactional_ddl=True,
        literal_binds=connection is None,
        # the auth store may share this database; its tables belong to its own history
        include_name=_not_an_auth_table,
    )


def _not_an_auth_table(name: str | None, type_: str, parent_names: dict) -> bool:
    return type_ != "table" or (name not in auth_metadata.tables and name != AUTH_VERSION_TABLE)


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            is_sqlite = connection.dialect.name == "sqlite"
            if is_sqlite:
                # A batch migration drops and re-creates tables; with foreign keys enforced
                # that DROP would cascade into the child tables. The pragma must be set
                # outside a transaction, hence on the driver connection before BEGIN.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
                if is_sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
