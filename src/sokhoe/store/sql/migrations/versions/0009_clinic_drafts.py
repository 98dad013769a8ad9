"""Visit drafts of the clinician workspace (clinic_draft)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clinic_draft',
    sa.Column('encounter_id', sa.String(length=64), nullable=False),
    sa.Column('facility', sa.String(length=16), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('encounter_id')
    )
    with op.batch_alter_table('clinic_draft', schema=None) as batch_op:
        batch_op.create_index('ix_clinic_draft_facility', ['facility', 'updated'], unique=False)


def downgrade() -> None:
    op.drop_table('clinic_draft')
