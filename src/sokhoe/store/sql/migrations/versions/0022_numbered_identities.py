"""Search-index rows name their parameter and token system by number

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 09:00:00

Every row of the seven ``sp_*`` tables held its resource type and parameter name as text, and
``sp_token`` its system URL, each again in the search B-tree; they become ``pid`` (the
parameter's number) and a numeric ``system``, computed by ``store/sql/identity.py``, and
``token_system`` keeps each system's text beside its number. The numbers are copied here as
literals computed once from the text found in the database (a migration must not change when
the code does), through small mapping tables, with the same plain SQL on SQLite (3.35 and
later) and PostgreSQL, plain or partitioned (``ALTER TABLE`` on the partitioned parent).

The downgrade writes the text back: the parameters from the registry's every (type, code)
pair (a number it does not know stops it with an error, before anything changes), the systems
from ``token_system``.
"""

from __future__ import annotations

from hashlib import blake2b

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

INDEXES: dict[str, list[tuple[list[str], list[str]]]] = {
    "sp_string": [(["resource_type", "param", "norm"], ["pid", "norm"])],
    "sp_token": [(["resource_type", "param", "code", "system"], ["pid", "code", "system"])],
    "sp_date": [
        (["resource_type", "param", "low"], ["pid", "low"]),
        (["resource_type", "param", "high"], ["pid", "high"]),
    ],
    "sp_reference": [
        (["target_id", "target_type", "param", "resource_type"], ["target_id", "target_type", "pid"])
    ],
    "sp_quantity": [(["resource_type", "param", "value"], ["pid", "value"])],
    "sp_number": [(["resource_type", "param", "value"], ["pid", "value"])],
    "sp_uri": [(["resource_type", "param", "value"], ["pid", "value"])],
}
"""Table -> its value indexes ``ix_<table>_<i>``: (columns at 0021, columns from here)."""


def _signed(text: str, size: int) -> int:
    """``identity.param_id`` (4 bytes) and ``identity.system_id`` (8), as they are today."""
    return int.from_bytes(blake2b(text.encode(), digest_size=size).digest(), "big", signed=True)


def _indexes(table: str, which: int) -> None:
    for i, cols in enumerate(pair[which] for pair in INDEXES[table]):
        op.execute(sa.text(f"CREATE INDEX ix_{table}_{i} ON {table} ({', '.join(cols)})"))


def _drop_indexes(table: str) -> None:
    for i in range(len(INDEXES[table])):
        op.execute(sa.text(f"DROP INDEX ix_{table}_{i}"))


def _replace_system(kind: str, value: str, key: str) -> None:
    """``sp_token.system`` as ``kind``: ``value`` of the ``token_system`` row whose ``key`` is
    the old one (the number for the text, or the text for the number)."""
    op.execute(sa.text(f"ALTER TABLE sp_token ADD COLUMN system_new {kind}"))
    op.execute(
        sa.text(
            f"UPDATE sp_token SET system_new = (SELECT {value} FROM token_system s "  # noqa: S608
            f"WHERE {key} = sp_token.system) WHERE system IS NOT NULL"
        )
    )
    op.execute(sa.text("ALTER TABLE sp_token DROP COLUMN system"))
    op.execute(sa.text("ALTER TABLE sp_token RENAME COLUMN system_new TO system"))


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    op.create_table(
        'token_system',
        sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('system', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    mapping = op.create_table(
        '_param_map',
        sa.Column('resource_type', sa.String(64), nullable=False),
        sa.Column('param', sa.String(100), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('resource_type', 'param'),
    )
    pairs: set[tuple[str, str]] = set()
    for table in INDEXES:
        pairs |= {
            (t, p)
            for t, p in conn.execute(sa.text(f"SELECT DISTINCT resource_type, param FROM {table}"))  # noqa: S608
        }
    if pairs:
        op.bulk_insert(
            mapping,
            [{"resource_type": t, "param": p, "pid": _signed(f"{t}.{p}", 4)} for t, p in pairs],
        )
    systems = [
        s
        for (s,) in conn.execute(
            sa.text("SELECT DISTINCT system FROM sp_token WHERE system IS NOT NULL")
        )
    ]
    numbered = sa.table("token_system", sa.column("id"), sa.column("system"))
    if systems:
        op.bulk_insert(numbered, [{"id": _signed(s, 8), "system": s} for s in systems])
        op.execute(sa.text("CREATE INDEX _token_system_text ON token_system (system)"))
    for table in INDEXES:
        op.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN pid INTEGER"))
        op.execute(
            sa.text(
                f"UPDATE {table} SET pid = (SELECT m.pid FROM _param_map m "  # noqa: S608
                f"WHERE m.resource_type = {table}.resource_type AND m.param = {table}.param)"
            )
        )
        _drop_indexes(table)
        op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN param"))
        op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN resource_type"))
        if postgres:
            op.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN pid SET NOT NULL"))
        if table == "sp_token":
            _replace_system("BIGINT", "s.id", "s.system")
        _indexes(table, 1)
    if systems:
        op.execute(sa.text("DROP INDEX _token_system_text"))
    op.drop_table('_param_map')


def downgrade() -> None:
    from sokhoe.store.sql.identity import every_param

    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    known = every_param()
    found: set[int] = set()
    for table in INDEXES:
        found |= {p for (p,) in conn.execute(sa.text(f"SELECT DISTINCT pid FROM {table}"))}  # noqa: S608
    unknown = sorted(found - known.keys())
    if unknown:
        raise RuntimeError(
            f"index rows of parameters this version does not know (numbers {unknown[:5]}): "
            "they cannot be named again; downgrade with the version that wrote them"
        )
    mapping = op.create_table(
        '_param_map',
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('resource_type', sa.String(64), nullable=False),
        sa.Column('param', sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint('pid'),
    )
    if found:
        op.bulk_insert(
            mapping,
            [{"pid": p, "resource_type": known[p][0], "param": known[p][1]} for p in found],
        )
    for table in INDEXES:
        op.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN resource_type VARCHAR(64)"))
        op.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN param VARCHAR(100)"))
        for column in ("resource_type", "param"):
            op.execute(
                sa.text(
                    f"UPDATE {table} SET {column} = (SELECT m.{column} FROM _param_map m "  # noqa: S608
                    f"WHERE m.pid = {table}.pid)"
                )
            )
        _drop_indexes(table)
        op.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN pid"))
        if postgres:
            for column in ("resource_type", "param"):
                op.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL"))
        if table == "sp_token":
            _replace_system("TEXT", "s.system", "s.id")
        _indexes(table, 0)
    op.drop_table('_param_map')
    op.drop_table('token_system')
