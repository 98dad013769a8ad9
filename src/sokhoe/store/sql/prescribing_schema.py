"""Tables of the national prescription system connection: the outbox and the cached tokens.

Neither is part of the record. The outbox holds what must still reach the national system
(*hệ thống đơn thuốc quốc gia*), written in the transaction of the prescription or dispense it
reports; the token cache holds the bearer tokens its sign-in returned, so every server process
and worker shares one sign-in per facility and doctor (DESIGN.md: no per-process state).
``sokhoe.prescribing.national`` reads and writes both.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from sokhoe.store.sql.schema import metadata

_Json = JSON().with_variant(JSONB(), "postgresql")
_Id = BigInteger().with_variant(Integer(), "sqlite")

prescription_outbox = Table(
    "prescription_outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    # Idempotency key: ``<code>:prescription`` or ``<code>:dispensing:<pharmacy>:<invoice>``.
    Column("kind", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("facility", String(16), nullable=False),
    # Insurance code of the facility that issued (or dispensed) and sees refusals.
    Column("practitioner", String(64)),
    # The prescriber's practising-certificate number (signs in as the doctor).
    Column("patient_id", String(64)),
    Column("focus", String(200), nullable=False),
    # The resource reported (``MedicationRequest/<id>``), focus of a refusal Task.
    Column("payload", _Json, nullable=False),
    Column("status", String(16), nullable=False),
    # ``pending``, ``delivered`` or ``refused``.
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(100)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True)),
    Column("task_id", String(64)),
    Index("ix_prescription_outbox_due", "status", "next_attempt"),
    Index("ix_prescription_outbox_code", "code"),
)

national_rx_token = Table(
    "national_rx_token",
    metadata,
    Column("subject", String(200), primary_key=True),
    # ``facility:<code>`` or ``doctor:<facility>:<doctor code>``.
    Column("token", Text, nullable=False),
    # The bearer token, sealed with the key-encryption key (``access/kek.py``).
    Column("expires", DateTime(timezone=True), nullable=False),
)
