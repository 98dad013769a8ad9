"""Record tables hash-partitioned by patient, when asked for a new PostgreSQL database

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 06:00:00

With ``Settings.pg_partitions`` = N > 0 (``sokhoe.store.sql.migrate.upgrade(partitions=N)``)
on PostgreSQL, the nine record tables (still empty: the database is new) are made again
``PARTITION BY HASH (patient_id)`` with N partitions, with the columns, defaults and indexes
they have at this revision, read from the database itself so that this migration stays true
whatever the later ones add. Unique indexes cannot be kept (they would have to contain
``patient_id``): ``resource``'s and ``resource_history``'s primary keys become plain indexes
(``ix_resource_key``, ``ix_history_key``), ``ux_resource_pk`` a plain index of the same name,
and ``resource_key`` keeps one row per resource (``store/sql/partitions.py``).

Otherwise (SQLite, N = 0) nothing changes. Converting a database that already holds records
is refused with an error rather than done: copying every row under a lock is a maintenance
job to plan (create a new database and load an export into it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TABLES = {
    "resource": "ix_resource_key",
    "resource_history": "ix_history_key",
    "sp_string": None,
    "sp_token": None,
    "sp_date": None,
    "sp_reference": None,
    "sp_quantity": None,
    "sp_number": None,
    "sp_uri": None,
}
"""Table -> the name of the plain index that takes its primary key's place."""


def upgrade() -> None:
    conn = op.get_bind()
    n = int(context.config.attributes.get("partitions", 0) or 0)
    if conn.dialect.name != "postgresql" or n <= 0:
        return
    held = [
        t for t in TABLES if conn.execute(sa.text(f"SELECT EXISTS (SELECT 1 FROM {t})")).scalar()  # noqa: S608
    ]
    if held:
        raise RuntimeError(
            f"SOKHOE_PG_PARTITIONS={n} asks for tables partitioned by patient, but this "
            f"database already holds records ({', '.join(held)}): only a new database is "
            "created partitioned. Unset the setting, or load an export into a new database."
        )
    for table, key_index in TABLES.items():
        _partition(conn, table, key_index, n)
    op.create_table(
        'resource_key',
        sa.Column('resource_type', sa.String(length=64), nullable=False),
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('resource_type', 'id'),
    )
    conn.execute(
        sa.text("INSERT INTO resource_key (resource_type, id) SELECT resource_type, id FROM resource")
    )


def _partition(conn: sa.Connection, table: str, key_index: str | None, n: int) -> None:
    """``table`` (empty) again, partitioned by hash of ``patient_id`` into ``n`` tables."""
    pk = conn.execute(
        sa.text(
            "SELECT conname, array_to_string(array(SELECT a.attname FROM unnest(c.conkey) "
            "WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = k.n ORDER BY k.o), ', ') FROM pg_constraint c "
            "WHERE c.conrelid = to_regclass(:t) AND c.contype = 'p'"
        ),
        {"t": table},
    ).first()
    indexes = conn.execute(
        sa.text(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = :t ORDER BY indexname"
        ),
        {"t": table},
    ).all()
    conn.execute(
        sa.text(
            f"CREATE TABLE {table}__partitioned (LIKE {table} INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION) "
            "PARTITION BY HASH (patient_id)"
        )
    )
    conn.execute(sa.text(f"DROP TABLE {table}"))
    conn.execute(sa.text(f"ALTER TABLE {table}__partitioned RENAME TO {table}"))
    for i in range(n):
        conn.execute(
            sa.text(
                f"CREATE TABLE {table}_p{i:02d} PARTITION OF {table} "
                f"FOR VALUES WITH (MODULUS {n}, REMAINDER {i})"
            )
        )
    for name, definition in indexes:
        if pk is not None and name == pk[0]:
            conn.execute(sa.text(f"CREATE INDEX {key_index} ON {table} ({pk[1]})"))
        else:
            conn.execute(sa.text(definition.replace("CREATE UNIQUE INDEX", "CREATE INDEX", 1)))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql" and conn.execute(
        sa.text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('resource')")
    ).first():
        raise RuntimeError("A database partitioned by patient does not go back below 0021")
