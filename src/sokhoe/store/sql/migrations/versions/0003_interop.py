"""interop tables (watermarks, HL7 v2 messages answered); TOTP replay guard

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('interop_watermark',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('hl7_message',
    sa.Column('facility', sa.String(length=32), nullable=False),
    sa.Column('control_id', sa.String(length=200), nullable=False),
    sa.Column('received', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ack', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('facility', 'control_id')
    )
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
    op.drop_table('hl7_message')
    op.drop_table('interop_watermark')
