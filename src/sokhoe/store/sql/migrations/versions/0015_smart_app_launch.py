"""SMART App Launch: apps, authorization codes, grants, the id_token key

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auth_app',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('secret_hash', sa.Text(), nullable=True),
    sa.Column('redirect_uris', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('auth_app_code',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('challenge', sa.String(length=128), nullable=False),
    sa.Column('grant_id', sa.String(length=64), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code_hash')
    )
    op.create_table('auth_app_grant',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('principal', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'),
              nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('refresh_hash', sa.String(length=64), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_auth_app_grant_agent', 'auth_app_grant', ['agent'])
    op.create_index('ix_auth_app_grant_refresh', 'auth_app_grant', ['refresh_hash'])
    op.create_table('auth_id_key',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kid')
    )


def downgrade() -> None:
    op.drop_table('auth_id_key')
    op.drop_index('ix_auth_app_grant_refresh', 'auth_app_grant')
    op.drop_index('ix_auth_app_grant_agent', 'auth_app_grant')
    op.drop_table('auth_app_grant')
    op.drop_table('auth_app_code')
    op.drop_table('auth_app')
