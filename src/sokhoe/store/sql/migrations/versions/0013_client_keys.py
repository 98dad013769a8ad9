"""SMART Backend Services: connected systems' public keys and used assertions (auth_client_key, auth_assertion)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auth_client_key',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jwks', sa.Text(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('auth_assertion',
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('jti')
    )


def downgrade() -> None:
    op.drop_table('auth_assertion')
    op.drop_table('auth_client_key')
