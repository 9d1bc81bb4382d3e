"""Readiness check: can we run a query on the database?"""

from __future__ import annotations

from sqlalchemy import Engine, text


class DatabaseCheck:
    name = "database"
    critical = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check(self) -> str | None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
