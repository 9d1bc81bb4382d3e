"""Alembic environment of the auth store (users, sessions).

Its own history and version table (`alembic_version_auth`), so it can share the lab's
database or live in its own. It only ever looks at its own tables: the lab's tables in a
shared database are none of its business, and autogenerate must not propose dropping them.
Run through `adapters.persistence.schema.upgrade_auth_schema`; to write a new revision, see
the [auth] section of `alembic.ini`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.pool import NullPool

from adapters.persistence.auth_tables import VERSION_TABLE, auth_metadata
from adapters.persistence.engine import make_engine

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or pass -x url=...")
    return url


def _only_auth_tables(name: str | None, type_: str, parent_names: dict) -> bool:
    return type_ != "table" or name in auth_metadata.tables


def _configure(**kw) -> None:
    context.configure(
        target_metadata=auth_metadata,
        version_table=VERSION_TABLE,
        include_name=_only_auth_tables,
        compare_type=True,
        transactional_ddl=True,
        **kw,
    )


if context.is_offline_mode():
    url = _url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = make_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            is_sqlite = connection.dialect.name == "sqlite"
            if is_sqlite:
                # batch migrations re-create tables; with foreign keys on, dropping `users`
                # would cascade into `sessions` (the pragma only works outside a transaction)
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
            _configure(connection=connection, render_as_batch=is_sqlite)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
