"""Resource JSON stored once and zstd-compressed with a dictionary

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:45:00

Before: the current version's JSON in ``resource`` and again in ``resource_history``, as JSON
(JSONB on PostgreSQL). After: ``content`` holds ``store/sql/content.py``'s compressed bytes,
the current version's only in ``resource`` (its history row has NULL), and
``content_dictionary`` holds the dictionaries they were written with. Existing rows are
converted in key order, 2,000 at a time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from sokhoe.store.sql.content import CompressedJson, shipped_dictionaries

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BATCH = 2000
KEYS = {
    "resource": ("resource_type", "id"),
    "resource_history": ("resource_type", "id", "version_id"),
}


def _convert(conn: sa.Connection, name: str, old: Any, new: Any) -> None:
    """Copy ``content`` (of type ``old``) into ``content_z`` (of type ``new``), by key."""
    t = sa.table(
        name,
        *(sa.column(k) for k in KEYS[name]),
        sa.column("content", old),
        sa.column("content_z", new),
    )
    keys = [t.c[k] for k in KEYS[name]]
    after: tuple[Any, ...] | None = None
    while True:
        stmt = sa.select(*keys, t.c.content).where(t.c.content.is_not(None))
        if after is not None:
            stmt = stmt.where(sa.tuple_(*keys) > sa.tuple_(*after))
        rows = conn.execute(stmt.order_by(*keys).limit(BATCH)).all()
        if not rows:
            return
        update = (
            sa.update(t)
            .where(*(k == sa.bindparam(f"k_{k.name}") for k in keys))
            .values(content_z=sa.bindparam("z", type_=new))
        )
        conn.execute(
            update,
            [
                {**{f"k_{k}": row[i] for i, k in enumerate(KEYS[name])}, "z": row.content}
                for row in rows
            ],
        )
        after = tuple(rows[-1][: len(keys)])


def _json(conn: sa.Connection) -> Any:
    return JSONB() if conn.dialect.name == "postgresql" else sa.JSON()


def _swap(conn: sa.Connection, old: Any, new: Any, new_sql: Any) -> None:
    for name in KEYS:
        op.add_column(name, sa.Column("content_z", new_sql, nullable=True))
        _convert(conn, name, old, new)
        # plain SQL on both: SQLite has had DROP and RENAME COLUMN since 3.35
        op.execute(f"ALTER TABLE {name} DROP COLUMN content")
        op.execute(f"ALTER TABLE {name} RENAME COLUMN content_z TO content")


def upgrade() -> None:
    op.create_table(
        "content_dictionary",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    conn = op.get_bind()
    dictionary = sa.table("content_dictionary", sa.column("id"), sa.column("data"))
    conn.execute(
        sa.insert(dictionary), [{"id": i, "data": data} for i, data in shipped_dictionaries()]
    )
    # the current version's JSON lives in resource alone
    conn.execute(
        sa.text(
            "UPDATE resource_history SET content = NULL WHERE EXISTS (SELECT 1 FROM resource r "
            "WHERE r.resource_type = resource_history.resource_type "
            "AND r.id = resource_history.id AND r.version_id = resource_history.version_id)"
        )
    )
    _swap(conn, _json(conn), CompressedJson(), sa.LargeBinary())


def downgrade() -> None:
    conn = op.get_bind()
    _swap(conn, CompressedJson(), _json(conn), _json(conn))
    conn.execute(
        sa.text(
            "UPDATE resource_history SET content = (SELECT r.content FROM resource r "
            "WHERE r.resource_type = resource_history.resource_type "
            "AND r.id = resource_history.id AND r.version_id = resource_history.version_id) "
            "WHERE content IS NULL AND deleted = false"
        )
    )
    op.drop_table("content_dictionary")
