"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 17:09:31.438073
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.CreateSequence(sa.Sequence("resource_pk_seq")))
    op.create_table('resource',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('resource_type', 'id')
    )
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index('ix_resource_patient', ['patient_id', 'resource_type'], unique=False)
        batch_op.create_index('ix_resource_updated', ['last_updated'], unique=False)
        batch_op.create_index('ux_resource_pk', ['pk'], unique=True)

    op.create_table('resource_history',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('resource_type', 'id', 'version_id')
    )
    with op.batch_alter_table('resource_history', schema=None) as batch_op:
        batch_op.create_index('ix_history_type_updated', ['resource_type', 'last_updated'], unique=False)
        batch_op.create_index('ix_history_updated', ['last_updated'], unique=False)

    op.create_table('sp_date',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('low', sa.Float(), nullable=False),
    sa.Column('high', sa.Float(), nullable=False)
    )
    with op.batch_alter_table('sp_date', schema=None) as batch_op:
        batch_op.create_index('ix_sp_date_0', ['resource_type', 'param', 'low'], unique=False)
        batch_op.create_index('ix_sp_date_1', ['resource_type', 'param', 'high'], unique=False)
        batch_op.create_index('ix_sp_date_resource', ['resource_pk'], unique=False)

    op.create_table('sp_number',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False)
    )
    with op.batch_alter_table('sp_number', schema=None) as batch_op:
        batch_op.create_index('ix_sp_number_0', ['resource_type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_sp_number_resource', ['resource_pk'], unique=False)

    op.create_table('sp_quantity',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('unit', sa.Text(), nullable=True)
    )
    with op.batch_alter_table('sp_quantity', schema=None) as batch_op:
        batch_op.create_index('ix_sp_quantity_0', ['resource_type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_sp_quantity_resource', ['resource_pk'], unique=False)

    op.create_table('sp_reference',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('sp_reference', schema=None) as batch_op:
        batch_op.create_index('ix_sp_reference_0', ['target_id', 'target_type', 'param', 'resource_type'], unique=False)
        batch_op.create_index('ix_sp_reference_resource', ['resource_pk'], unique=False)

    op.create_table('sp_string',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('norm', sa.Text(), nullable=False),
    sa.Column('exact', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('sp_string', schema=None) as batch_op:
        batch_op.create_index('ix_sp_string_0', ['resource_type', 'param', 'norm'], unique=False)
        batch_op.create_index('ix_sp_string_resource', ['resource_pk'], unique=False)

    op.create_table('sp_token',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('system', sa.Text(), nullable=True),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True)
    )
    with op.batch_alter_table('sp_token', schema=None) as batch_op:
        batch_op.create_index('ix_sp_token_0', ['resource_type', 'param', 'code', 'system'], unique=False)
        batch_op.create_index('ix_sp_token_resource', ['resource_pk'], unique=False)

    op.create_table('sp_uri',
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('resource_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=True),
    sa.Column('param', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False)
    )
    with op.batch_alter_table('sp_uri', schema=None) as batch_op:
        batch_op.create_index('ix_sp_uri_0', ['resource_type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_sp_uri_resource', ['resource_pk'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sp_uri', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_uri_resource')
        batch_op.drop_index('ix_sp_uri_0')

    op.drop_table('sp_uri')
    with op.batch_alter_table('sp_token', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_token_resource')
        batch_op.drop_index('ix_sp_token_0')

    op.drop_table('sp_token')
    with op.batch_alter_table('sp_string', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_string_resource')
        batch_op.drop_index('ix_sp_string_0')

    op.drop_table('sp_string')
    with op.batch_alter_table('sp_reference', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_reference_resource')
        batch_op.drop_index('ix_sp_reference_0')

    op.drop_table('sp_reference')
    with op.batch_alter_table('sp_quantity', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_quantity_resource')
        batch_op.drop_index('ix_sp_quantity_0')

    op.drop_table('sp_quantity')
    with op.batch_alter_table('sp_number', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_number_resource')
        batch_op.drop_index('ix_sp_number_0')

    op.drop_table('sp_number')
    with op.batch_alter_table('sp_date', schema=None) as batch_op:
        batch_op.drop_index('ix_sp_date_resource')
        batch_op.drop_index('ix_sp_date_1')
        batch_op.drop_index('ix_sp_date_0')

    op.drop_table('sp_date')
    with op.batch_alter_table('resource_history', schema=None) as batch_op:
        batch_op.drop_index('ix_history_updated')
        batch_op.drop_index('ix_history_type_updated')

    op.drop_table('resource_history')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index('ux_resource_pk')
        batch_op.drop_index('ix_resource_updated')
        batch_op.drop_index('ix_resource_patient')

    op.drop_table('resource')
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence("resource_pk_seq")))
