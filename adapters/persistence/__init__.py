"""Persistence adapters: SQLAlchemy (SQLite, PostgreSQL) and an in-memory twin."""
