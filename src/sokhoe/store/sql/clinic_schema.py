"""Tables of the clinician workspace that are not part of the record: visit drafts.

A draft is what a clinician has typed into a visit and not yet signed (Circular 13/2025: the
record is what is signed). It is kept on the server so that a closed browser or a power cut at
a commune station loses nothing, but it is no resource: no other facility, no export and no
warehouse ever reads it. ``clinic/drafts.py`` reads and writes it for the facility of the visit.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, String, Table
from sqlalchemy.dialects.postgresql import JSONB

from sokhoe.store.sql.schema import metadata

_Json = JSON().with_variant(JSONB(), "postgresql")

clinic_draft = Table(
    "clinic_draft",
    metadata,
    Column("encounter_id", String(64), primary_key=True),
    Column("facility", String(16), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("author", String(200), nullable=False),
    Column("content", _Json, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Index("ix_clinic_draft_facility", "facility", "updated"),
)
