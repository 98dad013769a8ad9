"""Tables of the interop adapters: watermarks of change feeds they follow, and the HL7 v2
messages already answered.

Both are rows, not process memory (DESIGN.md: nothing may assume one process): a second
listener or a restarted poller sees what the first one did.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table, Text

from sokhoe.store.sql.schema import metadata

interop_watermark = Table(
    "interop_watermark",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
)
"""Where a feed follower stopped (an Orthanc ``/changes`` sequence number, the warehouse's
last ``_lastUpdated``, a sync peer's last version): ``name`` says which feed."""

hl7_message = Table(
    "hl7_message",
    metadata,
    Column("facility", String(32), primary_key=True),
    Column("control_id", String(200), primary_key=True),
    Column("received", DateTime(timezone=True), nullable=False),
    Column("ack", Text, nullable=False),
)
"""HL7 v2 messages processed, by sending facility (MSH-4) and control ID (MSH-10): a resent
message gets the same ACK again and changes nothing (idempotency)."""
