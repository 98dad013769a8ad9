"""Staff who work at several facilities (staff_facility)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_facility',
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('facility', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('username', 'facility')
    )


def downgrade() -> None:
    op.drop_table('staff_facility')
