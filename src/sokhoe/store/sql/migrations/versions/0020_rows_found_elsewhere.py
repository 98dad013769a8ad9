"""No index rows for ``_lastUpdated`` or for parameters that alias another

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 06:00:00

``_lastUpdated`` is searched in ``resource.last_updated`` (``store/sql/search.py``), and a
parameter with the very expression and type of another of its type (Patient's ``phonetic`` and
``name``) is searched through that one's rows (``search/unions.py``); the rows written under
their own names repeat what is already stored and go.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from sokhoe.fhir.resources import format_instant
from sokhoe.search.index import date_range

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ALIASES = [
    ("sp_reference", "Bundle", "message", "composition"),
    ("sp_reference", "Coverage", "patient", "beneficiary"),
    ("sp_reference", "DeviceUseStatement", "subject", "patient"),
    ("sp_reference", "EnrollmentRequest", "subject", "patient"),
    ("sp_reference", "Linkage", "source", "item"),
    ("sp_reference", "ResearchSubject", "patient", "individual"),
    ("sp_string", "Patient", "phonetic", "name"),
    ("sp_string", "Person", "phonetic", "name"),
    ("sp_string", "Practitioner", "phonetic", "name"),
    ("sp_string", "RelatedPerson", "phonetic", "name"),
    ("sp_token", "CapabilityStatement", "version", "fhirversion"),
    ("sp_uri", "CodeSystem", "url", "system"),
]
"""(table, resource type, alias, the parameter whose rows it has), as ``search/unions.py``
found them in R4 when this was written (a test keeps them equal)."""
VALUES = {
    "sp_reference": "target_type, target_id, url",
    "sp_string": "norm, exact",
    "sp_token": "system, code, text",
    "sp_uri": "value",
}


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM sp_date WHERE param = '_lastUpdated'"))
    for table, rtype, code, _ in ALIASES:
        op.execute(
            sa.text(f"DELETE FROM {table} WHERE resource_type = :t AND param = :p").bindparams(  # noqa: S608
                t=rtype, p=code
            )
        )


def downgrade() -> None:
    for table, rtype, code, original in ALIASES:
        values = VALUES[table]
        op.execute(
            sa.text(
                f"INSERT INTO {table} (resource_type, resource_pk, patient_id, param, {values}) "  # noqa: S608
                f"SELECT resource_type, resource_pk, patient_id, :p, {values} FROM {table} "
                "WHERE resource_type = :t AND param = :o"
            ).bindparams(t=rtype, p=code, o=original)
        )
    # the millisecond ``meta.lastUpdated`` shows, as the index extractor wrote it
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    rows = conn.execute(
        sa.text("SELECT resource_type, pk, patient_id, last_updated FROM resource WHERE NOT deleted")
    )
    out = []
    for rtype, pk, patient, when in rows:
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        low, high = date_range(format_instant(when))
        kept = patient if postgres else None
        out.append({"t": rtype, "pk": pk, "patient": kept, "low": low, "high": high})
    if out:
        conn.execute(
            sa.text(
                "INSERT INTO sp_date (resource_type, resource_pk, patient_id, param, low, high) "
                "VALUES (:t, :pk, :patient, '_lastUpdated', :low, :high)"
            ),
            out,
        )
