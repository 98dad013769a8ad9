"""Care-relationship index, sensitive restrictions, resource owner and labels, presence codes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 11:00:00

The index is derived data: ``sokhoe.access.care.rebuild`` fills it from the records (run by
``sokhoe access rebuild``, and by the store itself after this migration on a database that
already holds resources).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('resource', 'resource_history'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('owner', sa.String(length=16), nullable=True))
            batch_op.add_column(sa.Column('labels', sa.String(length=64), nullable=True))
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index('ix_resource_owner', ['owner', 'resource_type'], unique=False)
    op.create_table('care_relationship',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('grantee', sa.String(length=160), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=140), nullable=False),
    sa.Column('via', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('proven', sa.Boolean(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('all_labels', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('patient_id', 'grantee', 'source', 'source_ref', 'via')
    )
    with op.batch_alter_table('care_relationship', schema=None) as batch_op:
        batch_op.create_index('ix_care_grantee', ['grantee', 'level', 'patient_id'], unique=False)
    op.create_table('care_restriction',
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=8), nullable=False),
    sa.Column('facility', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=140), nullable=False),
    sa.Column('via', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('patient_id', 'label', 'facility', 'source_ref', 'via')
    )


    op.create_table('auth_presence',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('facility', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.Text(), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('auth_presence', schema=None) as batch_op:
        batch_op.create_index(
            'ix_auth_presence_patient', ['patient_id', 'facility', 'created'], unique=False
        )


def downgrade() -> None:
    op.drop_table('auth_presence')
    op.drop_table('care_restriction')
    with op.batch_alter_table('care_relationship', schema=None) as batch_op:
        batch_op.drop_index('ix_care_grantee')
    op.drop_table('care_relationship')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_owner')
    for table in ('resource', 'resource_history'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('labels')
            batch_op.drop_column('owner')
