"""Audit events' JSON zstd-compressed like resources'

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:40:00

An AuditEvent of a bundle lists every resource it wrote: about 3.4 kB of JSON, 10 % of the
database after 0016. The hash chain covers the canonical JSON of the content, not its stored
bytes (``access/audit.py``, ``chain_hash``), so every hash stays valid.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sokhoe.store.sql.content import CompressedJson
from sokhoe.store.sql.recode import json_type, recode_content

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

TABLES: dict[str, tuple[str, ...]] = {"audit_event": ("seq",)}


def upgrade() -> None:
    conn = op.get_bind()
    recode_content(
        TABLES, json_type(conn), CompressedJson(), sa.LargeBinary(), nullable=False
    )


def downgrade() -> None:
    conn = op.get_bind()
    recode_content(TABLES, CompressedJson(), json_type(conn), json_type(conn), nullable=False)
