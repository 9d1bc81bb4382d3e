"""Readiness check of the auth store's database (which may be another than the lab's)."""

from __future__ import annotations

from adapters.persistence.readiness import DatabaseCheck


class AuthDatabaseCheck(DatabaseCheck):
    name = "auth_database"
