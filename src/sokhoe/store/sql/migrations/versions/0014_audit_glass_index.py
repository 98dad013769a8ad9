"""Audit log: a partial index of the break-the-glass alerts by time (ix_audit_glass)

The citizen's SMS notifier (``portal/glass_alerts.py``) reads the recent alerts every minute;
the index holds those rows alone, so the read stays small however long the log grows.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(
            'ix_audit_glass',
            ['recorded'],
            unique=False,
            sqlite_where=sa.text("action = 'break-the-glass'"),
            postgresql_where=sa.text("action = 'break-the-glass'"),
        )


def downgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_glass')
