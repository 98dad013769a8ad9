"""Offline station synchronisation state (sync_state)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 20:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_state',
    sa.Column('peer', sa.String(length=200), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('local_version', sa.Integer(), nullable=False),
    sa.Column('upstream_version', sa.Integer(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('conflict_task', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('peer', 'resource_type', 'id')
    )


def downgrade() -> None:
    op.drop_table('sync_state')
