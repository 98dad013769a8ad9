"""No index rows of their own for union parameters (Observation's combo-*)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 03:35:00

``combo-code`` and the other combo parameters are searched through their members' rows
(``search/unions.py``); the rows written under their own names repeat those and go.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

UNIONS = {
    "sp_token": {
        ("Observation", "combo-code"): ("code", "component-code"),
        ("Observation", "combo-data-absent-reason"): (
            "component-data-absent-reason",
            "data-absent-reason",
        ),
        ("Observation", "combo-value-concept"): ("component-value-concept", "value-concept"),
    },
    "sp_quantity": {
        ("Observation", "combo-value-quantity"): (
            "component-value-quantity",
            "value-quantity",
        ),
    },
}
"""What ``search/unions.py`` found in R4 when this was written (a test keeps them equal)."""
VALUES = {"sp_token": "system, code, text", "sp_quantity": "value, system, code, unit"}


def upgrade() -> None:
    for table, params in UNIONS.items():
        for rtype, code in params:
            op.execute(
                sa.text(f"DELETE FROM {table} WHERE resource_type = :t AND param = :p").bindparams(  # noqa: S608
                    t=rtype, p=code
                )
            )


def downgrade() -> None:
    # a union's rows are its members' rows under its own name
    for table, params in UNIONS.items():
        values = VALUES[table]
        for (rtype, code), members in params.items():
            op.execute(
                sa.text(
                    f"INSERT INTO {table} (resource_type, resource_pk, patient_id, param, "  # noqa: S608
                    f"{values}) SELECT DISTINCT resource_type, resource_pk, patient_id, :p, "
                    f"{values} FROM {table} WHERE resource_type = :t AND param IN :m"
                ).bindparams(sa.bindparam("m", expanding=True), t=rtype, p=code, m=list(members))
            )
