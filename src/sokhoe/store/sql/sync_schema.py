"""The table of a station's synchronisation with an upstream server (offline commune stations).

One row per (peer, resource): which local version and which upstream version were last known
to be the same content. It is what makes a re-sent push or a re-read pull a no-op, and what
tells a local edit (local version moved) from an upstream edit (upstream version moved) — both
moving is a conflict, recorded here with the review Task that holds it.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table

from sokhoe.store.sql.schema import metadata

sync_state = Table(
    "sync_state",
    metadata,
    Column("peer", String(200), primary_key=True),  # the upstream FHIR base URL
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("local_version", Integer, nullable=False),
    Column("upstream_version", Integer, nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    # the review Task (local id) while a conflicting edit waits for a person; None otherwise
    Column("conflict_task", String(64)),
)
"""Versions last synchronised per peer and resource (``sokhoe sync``)."""
