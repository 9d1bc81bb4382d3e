"""Migrating the database schema from code, without a cwd-relative alembic.ini.

The Alembic config is built here, with the migrations directory found next to this module, so
this works the same from a checkout and from an installed package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from adapters.persistence.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # the config is an INI parser: a literal % (URL-encoded passwords) must be doubled
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade_schema(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database no migration has touched."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


# -- the auth store (users, sessions): its own history and version table ---------------------

AUTH_MIGRATIONS_DIR = Path(__file__).resolve().parent / "auth_migrations"


def auth_alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(AUTH_MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_auth_schema(url: str, revision: str = "head") -> None:
    command.upgrade(auth_alembic_config(url), revision)


def downgrade_auth_schema(url: str, revision: str) -> None:
    command.downgrade(auth_alembic_config(url), revision)


def current_auth_revision(url: str) -> str | None:
    from adapters.persistence.auth_tables import VERSION_TABLE

    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def auth_head_revision() -> str:
    head = ScriptDirectory.from_config(auth_alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {AUTH_MIGRATIONS_DIR}")
    return head
