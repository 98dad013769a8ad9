"""Resource JSON stored once and zstd-compressed with a dictionary

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:45:00

Before: the current version's JSON in ``resource`` and again in ``resource_history``, as JSON
(JSONB on PostgreSQL). After: ``content`` holds ``store/sql/content.py``'s compressed bytes,
the current version's only in ``resource`` (its history row has NULL), and
``content_dictionary`` holds the dictionaries they were written with.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sokhoe.store.sql.content import CompressedJson, shipped_dictionaries
from sokhoe.store.sql.recode import json_type, recode_content

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

TABLES = {
    "resource": ("resource_type", "id"),
    "resource_history": ("resource_type", "id", "version_id"),
}


def upgrade() -> None:
    op.create_table(
        'content_dictionary',
        sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    conn = op.get_bind()
    dictionary = sa.table('content_dictionary', sa.column('id'), sa.column('data'))
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
    recode_content(TABLES, json_type(conn), CompressedJson(), sa.LargeBinary())


def downgrade() -> None:
    conn = op.get_bind()
    recode_content(TABLES, CompressedJson(), json_type(conn), json_type(conn))
    conn.execute(
        sa.text(
            "UPDATE resource_history SET content = (SELECT r.content FROM resource r "
            "WHERE r.resource_type = resource_history.resource_type "
            "AND r.id = resource_history.id AND r.version_id = resource_history.version_id) "
            "WHERE content IS NULL AND deleted = false"
        )
    )
    op.drop_table('content_dictionary')
