"""Tables of the access layer: clients, signing keys, staff and citizen accounts, one-time
codes, rate limits and the audit log.

They live in the same database as the record (one backup, one transaction when a write and
its audit row must agree) but are reached only through ``sokhoe.access``. Rate limits and
one-time codes are rows, not process memory, so any number of server processes agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from sokhoe.store.sql.content import CompressedJson
from sokhoe.store.sql.schema import metadata

_Json = JSON().with_variant(JSONB(), "postgresql")
_Seq = BigInteger().with_variant(Integer(), "sqlite")

auth_client = Table(
    "auth_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", Text, nullable=False),
    Column("name", String(200), nullable=False),
    Column("facility", String(16)),
    Column("scopes", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

auth_app = Table(
    "auth_app",
    metadata,
    # An app a person connects to their record (SMART App Launch): it acts for that person,
    # never for itself, so it has no scopes of its own and cannot use client credentials.
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", Text),  # None: a public app (PKCE only)
    Column("redirect_uris", Text, nullable=False),  # one a line, matched exactly
    Column("active", Boolean, nullable=False, default=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

auth_app_code = Table(
    "auth_app_code",
    metadata,
    # An authorization code (its SHA-256), single use, bound to its app, redirect URI and
    # PKCE challenge; ``grant_id`` says what it issued, so a replay can revoke it.
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("challenge", String(128), nullable=False),
    Column("grant_id", String(64), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)

auth_app_grant = Table(
    "auth_app_grant",
    metadata,
    # What a person allowed an app: the principal its tokens carry (JSON), the scopes granted,
    # the patient picked; the current refresh token's SHA-256 (rotated on each use); revoked
    # when the person disconnects the app or a code is replayed (every token it issued dies).
    Column("id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("agent", String(200), nullable=False),
    Column("principal", _Json, nullable=False),
    Column("scope", Text, nullable=False),
    Column("patient_id", String(64)),
    Column("refresh_hash", String(64)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("used", DateTime(timezone=True)),
    Column("revoked", DateTime(timezone=True)),
    Index("ix_auth_app_grant_agent", "agent"),
    Index("ix_auth_app_grant_refresh", "refresh_hash"),
)

auth_id_key = Table(
    "auth_id_key",
    metadata,
    # The RS256 key OpenID id_tokens are signed with (private key sealed with the
    # key-encryption key); its public half is served at /auth/jwks.
    Column("kid", String(64), primary_key=True),
    Column("private_key", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

auth_signing_key = Table(
    "auth_signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("retired", DateTime(timezone=True)),
)

auth_client_key = Table(
    "auth_client_key",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jwks", Text, nullable=False),
    # The public keys (a JWK Set) the system signs its token requests with (SMART Backend
    # Services: ``private_key_jwt``); the private keys never leave the system.
    Column("updated", DateTime(timezone=True), nullable=False),
)

auth_assertion = Table(
    "auth_assertion",
    metadata,
    Column("jti", String(200), primary_key=True),
    # ``<client_id>:<jti>`` of a client assertion already used: a replay is refused.
    Column("expires", DateTime(timezone=True), nullable=False),
)

auth_revoked_token = Table(
    "auth_revoked_token",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires", DateTime(timezone=True), nullable=False),
)

auth_user = Table(
    "auth_user",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(40), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("facility", String(16)),
    Column("commune", String(16)),
    Column("practitioner_id", String(64)),
    Column("totp_secret", Text),
    Column("totp_last_step", BigInteger),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", DateTime(timezone=True), nullable=False),
)

staff_facility = Table(
    "staff_facility",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("facility", String(16), primary_key=True),
)
"""The other facilities a staff account works at, in the same role (its ``auth_user.facility``
is the first): at sign-in the person picks the one they act for now."""

auth_citizen = Table(
    "auth_citizen",
    metadata,
    Column("phone", String(20), primary_key=True),
    Column("patient_id", String(64)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("last_sign_in", DateTime(timezone=True)),
)

auth_otp = Table(
    "auth_otp",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("phone", String(20), nullable=False),
    Column("code_hash", Text, nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("used", Boolean, nullable=False, default=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Index("ix_auth_otp_phone", "phone", "created"),
)

auth_presence = Table(
    "auth_presence",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("facility", String(16), nullable=False),
    Column("code_hash", Text, nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("used", Boolean, nullable=False, default=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Index("ix_auth_presence_patient", "patient_id", "facility", "created"),
)
"""One-time codes sent to a patient's phone so a facility can prove the patient is at its
desk (``operations/presence.py``); apart from sign-in codes, which must never open a record."""

auth_rate = Table(
    "auth_rate",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
)

audit_event = Table(
    "audit_event",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=False),
    Column("recorded", DateTime(timezone=True), nullable=False),
    Column("patient_id", String(64)),
    Column("agent", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("content", CompressedJson, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_patient", "patient_id", "seq"),
    # the break-the-glass alerts alone, by time: the citizen's SMS notifier reads them
    Index(
        "ix_audit_glass",
        "recorded",
        sqlite_where=text("action = 'break-the-glass'"),
        postgresql_where=text("action = 'break-the-glass'"),
    ),
)
"""Append-only: each row's ``hash`` covers its content and the previous row's hash, so an
edited or deleted row breaks the chain (``sokhoe audit verify``)."""
