"""Names are unique without regard to case or Unicode form; names, labels and environment
variables hold no control or bidi characters.

- devices, test_cases, environments get `name_key` (the name in NFC, case folded: see
  domain/names.py) with a unique index, so "Meter 1", "meter 1" and a decomposed "é" spelling
  of a name are one name.
- Existing rows are made to follow the rules the application now enforces on load:
  - control characters, bidi overrides/isolates (U+202A to U+202E, U+2066 to U+2069) and lone
    surrogates are removed from names, label keys and values and variable values; names are
    stored in NFC and trimmed (an empty result becomes "unnamed");
  - names that now collide: the oldest row (created_at, then id) keeps its name, each younger
    one is renamed "<name> (2)", "<name> (3)", ... (the first number whose key is free; names
    that did not collide are never touched);
  - device label keys that collide after cleaning get the same " (2)" suffix;
  - environment variable names that do not match [A-Za-z_][A-Za-z0-9_]*, or are reserved
    (PATH, LD_PRELOAD, ... and DEVICELAB_* / LD_*, see domain/environments.py), are renamed
    rather than dropped, so no value is lost: other characters become "_", a leading digit
    gets "_" before it, a reserved name gets the prefix "LAB_" (PATH -> LAB_PATH), and a name
    that is then taken gets "_2", "_3", ...
  Each rename is logged (alembic's logger), so an admin can see what changed.
- Downgrade drops the key columns; cleaned and renamed values stay as they are.

The rules are copied here as they were at this revision (a migration must not change when
the domain code does later).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

NAMED_TABLES = ("devices", "test_cases", "environments")
NAME_LENGTH = 200
BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VARIABLE_NAME_LENGTH = 128
RESERVED_VARIABLES = frozenset(
    {
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "BASH_ENV",
        "ENV",
        "IFS",
        "SHELLOPTS",
        "PERL5LIB",
        "NODE_OPTIONS",
        "HOME",
    }
)
RESERVED_PREFIXES = ("LD_", "DEVICELAB_")


def _clean_text(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cs") and c not in BIDI)


def _clean_name(name: str) -> str:
    cleaned = unicodedata.normalize("NFC", _clean_text(name or "")).strip()
    return cleaned[:NAME_LENGTH] or "unnamed"


def _key(name: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name.strip()).casefold())


def _numbered(base: str, number: int, limit: int = NAME_LENGTH) -> str:
    suffix = f" ({number})"
    return base[: limit - len(suffix)].rstrip() + suffix


def _json_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _rename_colliding(rows: list[Any]) -> dict[str, str]:
    """Cleaned, unique names for `rows` (id, name; oldest first), by id."""
    names = {row.id: _clean_name(row.name) for row in rows}
    keepers: dict[str, str] = {}  # key -> the id that keeps it
    for row in rows:
        keepers.setdefault(_key(names[row.id]), row.id)
    taken = set(keepers)
    for row in rows:
        key = _key(names[row.id])
        if keepers[key] == row.id:
            continue
        number = 2
        while _key(_numbered(names[row.id], number)) in taken:
            number += 1
        names[row.id] = _numbered(names[row.id], number)
        taken.add(_key(names[row.id]))
    return names


def _name_keys(table_name: str) -> None:
    table = sa.table(
        table_name, sa.column("id", sa.String), sa.column("name", sa.String), sa.column("name_key")
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            f"SELECT id, name FROM {table_name} "
            "ORDER BY CASE WHEN created_at IS NULL THEN 0 ELSE 1 END, created_at, id"
        )
    ).all()
    names = _rename_colliding(rows)
    renamed = [row for row in rows if names[row.id] != row.name]
    for row in renamed:
        log.warning("%s %s renamed from %r to %r", table_name, row.id, row.name, names[row.id])
    if renamed:
        # first out of the way (a placeholder per id), so no rename meets the old unique
        # index on name half-way (one row taking a name another one still has)
        bind.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(name=sa.bindparam("new_name")),
            [{"row_id": row.id, "new_name": f"~renaming~{row.id}"} for row in renamed],
        )
    if rows:
        bind.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values(name=sa.bindparam("new_name"), name_key=sa.bindparam("new_key")),
            [
                {"row_id": row.id, "new_name": names[row.id], "new_key": _key(names[row.id])}
                for row in rows
            ],
        )


def _clean_labels() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT device_id, key, value FROM device_labels ORDER BY device_id, key")
    ).all()
    by_device: dict[str, list[Any]] = {}
    for row in rows:
        by_device.setdefault(row.device_id, []).append(row)
    for device_id, labels in by_device.items():
        cleaned: dict[str, str] = {}
        for row in labels:
            key = _clean_text(row.key).strip() or "label"
            base, number = key, 2
            while key in cleaned:
                key, number = f"{base} ({number})", number + 1
            cleaned[key] = _clean_text(row.value)
        if cleaned == {row.key: row.value for row in labels}:
            continue
        log.warning("device %s: labels cleaned to %r", device_id, sorted(cleaned))
        bind.execute(
            sa.text("DELETE FROM device_labels WHERE device_id = :device_id"),
            {"device_id": device_id},
        )
        bind.execute(
            sa.text("INSERT INTO device_labels (device_id, key, value) VALUES (:d, :k, :v)"),
            [{"d": device_id, "k": k, "v": v} for k, v in cleaned.items()],
        )


def _variable_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    if cleaned in RESERVED_VARIABLES or cleaned.startswith(RESERVED_PREFIXES):
        cleaned = "LAB_" + cleaned
    return cleaned[:VARIABLE_NAME_LENGTH]


def _clean_variables() -> None:
    table = sa.table(
        "environments", sa.column("id", sa.String), sa.column("variables", _json_type())
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(table.c.id, table.c.variables)).all():
        variables = row.variables or {}
        fine = {
            k: v
            for k, v in variables.items()
            if VARIABLE_NAME.fullmatch(k)
            and len(k) <= VARIABLE_NAME_LENGTH
            and k not in RESERVED_VARIABLES
            and not k.startswith(RESERVED_PREFIXES)
        }
        cleaned = {k: _clean_text(str(v)) for k, v in fine.items()}
        for name, value in variables.items():
            if name in fine:
                continue
            new_name, number = _variable_name(name), 2
            base = new_name
            while new_name in cleaned:
                suffix = f"_{number}"
                new_name, number = base[: VARIABLE_NAME_LENGTH - len(suffix)] + suffix, number + 1
            cleaned[new_name] = _clean_text(str(value))
            log.warning("environment %s: variable %r renamed to %r", row.id, name, new_name)
        if cleaned != variables:
            bind.execute(
                table.update().where(table.c.id == row.id).values(variables=cleaned),
            )


def upgrade() -> None:
    for table_name in NAMED_TABLES:
        with op.batch_alter_table(table_name) as batch:
            batch.add_column(sa.Column("name_key", sa.Text(), nullable=True))
        _name_keys(table_name)
        with op.batch_alter_table(table_name) as batch:
            batch.alter_column("name_key", existing_type=sa.Text(), nullable=False)
            batch.create_unique_constraint(f"uq_{table_name}_name_key", ["name_key"])
    _clean_labels()
    _clean_variables()


def downgrade() -> None:
    for table_name in NAMED_TABLES:
        with op.batch_alter_table(table_name) as batch:
            batch.drop_constraint(f"uq_{table_name}_name_key", type_="unique")
            batch.drop_column("name_key")
