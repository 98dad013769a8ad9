"""access

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 17:47:56.652109
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('recorded', sa.DateTime(timezone=True), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_patient', ['patient_id', 'seq'], unique=False)

    op.create_table('auth_citizen',
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('phone')
    )
    op.create_table('auth_client',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('facility', sa.String(length=16), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('auth_otp',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('code_hash', sa.Text(), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('auth_otp', schema=None) as batch_op:
        batch_op.create_index('ix_auth_otp_phone', ['phone', 'created'], unique=False)

    op.create_table('auth_rate',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('auth_revoked_token',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('jti')
    )
    op.create_table('auth_signing_key',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retired', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kid')
    )
    op.create_table('auth_user',
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('facility', sa.String(length=16), nullable=True),
    sa.Column('commune', sa.String(length=16), nullable=True),
    sa.Column('practitioner_id', sa.String(length=64), nullable=True),
    sa.Column('totp_secret', sa.Text(), nullable=True),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('username')
    )


def downgrade() -> None:
    op.drop_table('auth_user')
    op.drop_table('auth_signing_key')
    op.drop_table('auth_revoked_token')
    op.drop_table('auth_rate')
    with op.batch_alter_table('auth_otp', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_otp_phone')

    op.drop_table('auth_otp')
    op.drop_table('auth_client')
    op.drop_table('auth_citizen')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_patient')

    op.drop_table('audit_event')
