"""Connected systems (a hospital's HIS, a lab, a PACS, a pharmacy): OAuth 2.0 client
credentials with SMART v2 ``system/`` scopes, acting for one facility.

Secrets are shown once, at creation, and stored only as Argon2 hashes.
See: https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import Engine, insert, select, update

from sokhoe.access.principal import Principal
from sokhoe.access.scopes import parse_scopes
from sokhoe.errors import Unauthorized
from sokhoe.mpi.identifiers import validate_facility_code
from sokhoe.store.sql.access_schema import auth_client

_HASHER = PasswordHasher()


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
                secret_hash=_HASHER.hash(secret),
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
    if row is None or not row.active:
        _HASHER.hash(client_secret)  # same cost whether or not the client exists
        raise Unauthorized("Unknown or inactive client, or wrong secret")
    try:
        _HASHER.verify(row.secret_hash, client_secret)
    except VerificationError as exc:
        raise Unauthorized("Unknown or inactive client, or wrong secret") from exc
    granted = frozenset(str(row.scopes).split())
    scopes = granted
    if requested:
        wanted = frozenset(requested.split())
        if not wanted <= granted:
            raise Unauthorized(
                f"Scopes not granted to this client: {' '.join(sorted(wanted - granted))}"
            )
        scopes = wanted
    return Principal(
        kind="client",
        subject=client_id,
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
