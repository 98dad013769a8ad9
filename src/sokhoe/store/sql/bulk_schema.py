"""The table of FHIR Bulk Data jobs (``$export``): their state is a row, not process memory.

DESIGN.md: several server processes answer the same API, so the process that accepted a
kick-off need not be the one asked for its status, its files or its cancellation. The worker
writes progress and a heartbeat here; any process reads them.
See: https://hl7.org/fhir/uv/bulkdata/export.html
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

from sokhoe.store.sql.schema import metadata

_Json = JSON().with_variant(JSONB(), "postgresql")

bulk_job = Table(
    "bulk_job",
    metadata,
    Column("id", String(64), primary_key=True),
    # the subject (client id, username) who started the job: only it may poll, download, cancel
    Column("owner", String(200), nullable=False),
    Column("request", Text, nullable=False),  # the kick-off URL, echoed in the manifest
    Column("kind", String(16), nullable=False),  # system, patient or group
    Column("params", _Json, nullable=False),
    Column("status", String(16), nullable=False),  # queued, running, completed, failed, cancelled
    Column("progress", BigInteger, nullable=False, default=0),  # resources written so far
    Column("created", DateTime(timezone=True), nullable=False),
    # the worker's last sign of life: a running job with a stale heartbeat lost its process
    Column("heartbeat", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True)),
    Column("manifest", _Json),
    Column("error", Text),
)
"""One ``$export`` job per row."""

Index("ix_bulk_job_owner", bulk_job.c.owner, bulk_job.c.created)
