"""Connected systems (a hospital's HIS, a lab, a PACS, a pharmacy): OAuth 2.0 client
credentials with SMART v2 ``system/`` scopes, acting for one facility.

Secrets are shown once, at creation, and stored only as hashes. A secret is 256 random bits
(``secrets.token_urlsafe(32)``), which no one can guess, so it is kept as its SHA-256: a slow
password hash (Argon2) protects the few bits of entropy a person's password has, not these,
and spending 100 ms of CPU on every token request would only hand callers a way to tie the
server up. Hashes written by earlier releases (Argon2) are still verified.
See: https://hl7.org/fhir/smart-app-launch/backend-services.html and
https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Engine, insert, select, update

from sokhoe.access.principal import Principal
from sokhoe.access.scopes import covered, parse_scopes
from sokhoe.errors import Unauthorized
from sokhoe.mpi.identifiers import validate_facility_code
from sokhoe.store.sql.access_schema import auth_client

_HASHER = PasswordHasher()
_SHA256 = "sha256$"


def _digest(secret: str) -> str:
    return _SHA256 + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _matches(stored: str, secret: str) -> bool:
    if stored.startswith(_SHA256):
        return hmac.compare_digest(stored, _digest(secret))
    try:  # an Argon2 hash of an earlier release
        return bool(_HASHER.verify(stored, secret))
    except VerificationError:
        return False


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str


def create_client(
    engine: Engine, name: str, scopes: list[str], facility: str | None = None
) -> NewClient:
    """Register a client; ValueError on a bad scope or facility code."""
    if not name.strip():
        raise ValueError("A client needs a name")
    parsed = parse_scopes(scopes)
    if not parsed:
        raise ValueError("A client needs at least one scope, e.g. system/Patient.rs")
    if any(s.context != "system" for s in parsed):
        raise ValueError("Client credentials carry system/ scopes only")
    code = validate_facility_code(facility) if facility else None
    client_id = "c-" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(auth_client).values(
                client_id=client_id,
                secret_hash=_digest(secret),
                name=name.strip(),
                facility=code,
                scopes=" ".join(scopes),
                active=True,
                created=datetime.now(UTC),
            )
        )
    return NewClient(client_id, secret)


def authenticate_client(
    engine: Engine, client_id: str, client_secret: str, requested: str | None = None
) -> Principal:
    """The principal of a client whose secret matches; ``requested`` narrows its scopes."""
    with engine.begin() as conn:
        row = conn.execute(select(auth_client).where(auth_client.c.client_id == client_id)).first()
    if row is None or not row.active or not _matches(str(row.secret_hash), client_secret):
        raise Unauthorized("Unknown or inactive client, or wrong secret")
    return _principal(row, requested)


def principal_of_client(engine: Engine, client_id: str, requested: str | None = None) -> Principal:
    """The principal of an active client that proved who it is another way (a signed
    assertion, ``access/client_assertion.py``); ``requested`` narrows its scopes."""
    with engine.begin() as conn:
        row = conn.execute(select(auth_client).where(auth_client.c.client_id == client_id)).first()
    if row is None or not row.active:
        raise Unauthorized("Unknown or inactive client")
    return _principal(row, requested)


def _principal(row: Any, requested: str | None) -> Principal:
    granted = frozenset(str(row.scopes).split())
    scopes = granted
    if requested:
        wanted = frozenset(requested.split())
        beyond = sorted(s for s in wanted if not covered(s, granted))
        if beyond:
            raise Unauthorized(f"Scopes not granted to this client: {' '.join(beyond)}")
        scopes = wanted
    return Principal(
        kind="client",
        subject=str(row.client_id),
        display=str(row.name),
        role="system",
        facility=row.facility,
        scopes=scopes,
    )


def deactivate_client(engine: Engine, client_id: str) -> None:
    """Stop a system signing in; the tokens it holds are refused from now on, since every
    verification reads this row (:mod:`sokhoe.access.tokens`). ValueError for an unknown id."""
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_client).where(auth_client.c.client_id == client_id).values(active=False)
        )
    if done.rowcount == 0:
        raise ValueError(f"No connected system {client_id!r}")
