"""Rewrite a column of every row from one type to another, for migrations that change how a
value is stored (JSON to compressed bytes and back, ``content.py``).

Rows are converted in primary-key order, :data:`BATCH` at a time, into a new column that then
replaces the old one, with the same plain SQL on SQLite (3.35 and later) and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

BATCH = 2000


def _copy(conn: sa.Connection, name: str, keys: tuple[str, ...], old: Any, new: Any) -> None:
    """Copy ``content`` (read as ``old``) into ``content_z`` (written as ``new``), by key."""
    t = sa.table(
        name,
        *(sa.column(k) for k in keys),
        sa.column("content", old),
        sa.column("content_z", new),
    )
    cols = [t.c[k] for k in keys]
    update = (
        sa.update(t)
        .where(*(c == sa.bindparam(f"k_{c.name}") for c in cols))
        .values(content_z=sa.bindparam("z", type_=new))
    )
    after: tuple[Any, ...] | None = None
    while True:
        stmt = sa.select(*cols, t.c.content).where(t.c.content.is_not(None))
        if after is not None:
            stmt = stmt.where(sa.tuple_(*cols) > sa.tuple_(*after))
        rows = conn.execute(stmt.order_by(*cols).limit(BATCH)).all()
        if not rows:
            return
        conn.execute(
            update,
            [{**{f"k_{k}": row[i] for i, k in enumerate(keys)}, "z": row.content} for row in rows],
        )
        after = tuple(rows[-1][: len(keys)])


def recode_content(
    tables: dict[str, tuple[str, ...]],
    old: Any,
    new: Any,
    new_sql: Any,
    *,
    nullable: bool = True,
) -> None:
    """Store each table's ``content`` column as ``new`` (SQL type ``new_sql``) instead of
    ``old``; ``tables`` maps a table to its primary-key columns."""
    conn = op.get_bind()
    for name, keys in tables.items():
        op.add_column(name, sa.Column("content_z", new_sql, nullable=True))
        _copy(conn, name, keys, old, new)
        op.execute(f"ALTER TABLE {name} DROP COLUMN content")
        op.execute(f"ALTER TABLE {name} RENAME COLUMN content_z TO content")
        if not nullable and conn.dialect.name == "postgresql":
            # SQLite cannot add NOT NULL to a column in place; its rows came from NOT NULL ones
            op.execute(f"ALTER TABLE {name} ALTER COLUMN content SET NOT NULL")


def json_type(conn: sa.Connection) -> Any:
    """How the schema stored JSON before: JSONB on PostgreSQL, JSON text on SQLite."""
    from sqlalchemy.dialects.postgresql import JSONB

    return JSONB() if conn.dialect.name == "postgresql" else sa.JSON()
