"""Connected systems' allow-lists of Subscription notification endpoints (subscription_endpoint)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subscription_endpoint',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('entry', sa.String(length=300), nullable=False),
    sa.Column('added', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'entry')
    )


def downgrade() -> None:
    op.drop_table('subscription_endpoint')
