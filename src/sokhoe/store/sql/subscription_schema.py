"""Tables of FHIR Subscriptions: who subscribed to what, the queue of notifications, and the
lease that keeps one dispatcher per deployment.

State is rows, not process memory (DESIGN.md): any server process may accept a Subscription,
and whichever process holds the lease delivers, after a restart too.
See: https://hl7.org/fhir/R4/subscription.html
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
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from sokhoe.store.sql.schema import metadata

_Json = JSON().with_variant(JSONB(), "postgresql")
_Seq = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

subscription = Table(
    "subscription",
    metadata,
    Column("id", String(64), primary_key=True),  # the Subscription resource id
    # the resource version this row describes: a Subscription changed by any other path (a
    # bundle, a raw PUT) no longer matches and is not served until registered again
    Column("version_id", Integer, nullable=False),
    # the connected system that created it: notifications are filtered by what it may see
    Column("owner", String(200), nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_display", String(200), nullable=False),
    Column("owner_role", String(64)),
    Column("facility", String(32)),
    Column("scopes", Text, nullable=False),  # space-separated SMART scopes at creation
    Column("criteria", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("payload", String(100)),  # None: empty notifications
    # channel.header values: kept here only, never in the stored resource (they usually carry
    # the receiver's credential and the resource is readable by other clients)
    Column("headers", _Json, nullable=False),
    Column("status", String(16), nullable=False),  # active, error, off
    Column("error", Text),
    Column("since", DateTime(timezone=True), nullable=False),  # changes before it are not sent
    Column("updated", DateTime(timezone=True), nullable=False),
)
"""One registered Subscription per row."""

subscription_delivery = Table(
    "subscription_delivery",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),  # delivery order
    Column("subscription_id", String(64), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("patient_id", String(64)),
    Column("status", String(16), nullable=False),  # pending, delivered, abandoned
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("delivered", DateTime(timezone=True)),
    # the same version is queued once per subscription, however often the feed is re-read
    UniqueConstraint(
        "subscription_id", "resource_type", "resource_id", "version_id", name="uq_sub_delivery"
    ),
)
"""The notification queue: one row per (subscription, resource version) to send."""

Index(
    "ix_subscription_delivery_due",
    subscription_delivery.c.subscription_id,
    subscription_delivery.c.status,
    subscription_delivery.c.seq,
)

subscription_lease = Table(
    "subscription_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
)
"""Which dispatcher process may deliver now (a lease renewed each round, taken over when it
expires): one sender per deployment keeps each subscription's notifications in order."""

subscription_endpoint = Table(
    "subscription_endpoint",
    metadata,
    Column("client_id", String(64), primary_key=True),  # auth_client.client_id
    # normalised: an origin (https://his.bvcr.vn:8443) or a network (10.20.0.0/24)
    Column("entry", String(300), primary_key=True),
    Column("added", DateTime(timezone=True), nullable=False),
)
"""Each connected system's allow-list of notification endpoints: a Subscription is accepted,
and each notification sent, only to what its owner's rows allow (set by an operator with
``sokhoe client create --endpoint`` and ``sokhoe client endpoints``)."""
