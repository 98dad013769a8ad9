"""The ``subscription`` rows: what the dispatcher serves, and for whom.

The Subscription resource is the FHIR face (readable, searchable, versioned like any
resource); the row is what the dispatcher trusts. It is written only by
:mod:`sokhoe.interop.subscriptions.registration`, which checked the criteria and the endpoint
and took the owner from the caller's token, never from the resource body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from sokhoe.access.principal import Kind, Principal
from sokhoe.store.sql.subscription_schema import subscription

OWNER_TAG = "https://fhir.sokhoe.vn/CodeSystem/subscription-owner"
"""``meta.tag`` system naming the connected system (client id) that owns a Subscription: for
people reading the resource; the dispatcher uses the row, not the tag."""


@dataclass(frozen=True, slots=True)
class Registration:
    """One registered Subscription, as the dispatcher serves it."""

    id: str
    version_id: int
    owner: Principal
    criteria: str
    endpoint: str
    payload: str | None
    headers: tuple[str, ...]
    status: str
    error: str | None
    since: datetime


def _principal(row: Any) -> Principal:
    kind: Kind = "client"
    if row.owner_kind == "staff":
        kind = "staff"
    elif row.owner_kind == "citizen":
        kind = "citizen"
    return Principal(
        kind=kind,
        subject=row.owner,
        display=row.owner_display,
        role=row.owner_role,
        facility=row.facility,
        scopes=frozenset(row.scopes.split()),
    )


def _registration(row: Any) -> Registration:
    return Registration(
        id=row.id,
        version_id=row.version_id,
        owner=_principal(row),
        criteria=row.criteria,
        endpoint=row.endpoint,
        payload=row.payload,
        headers=tuple(row.headers or ()),
        status=row.status,
        error=row.error,
        since=row.since if row.since.tzinfo else row.since.replace(tzinfo=UTC),
    )


def save(conn: Connection, reg: Registration, when: datetime) -> None:
    """Insert or replace the row of ``reg.id``."""
    conn.execute(delete(subscription).where(subscription.c.id == reg.id))
    conn.execute(
        subscription.insert().values(
            id=reg.id,
            version_id=reg.version_id,
            owner=reg.owner.subject,
            owner_kind=reg.owner.kind,
            owner_display=reg.owner.display,
            owner_role=reg.owner.role,
            facility=reg.owner.facility,
            scopes=" ".join(sorted(reg.owner.scopes)),
            criteria=reg.criteria,
            endpoint=reg.endpoint,
            payload=reg.payload,
            headers=list(reg.headers),
            status=reg.status,
            error=reg.error,
            since=reg.since,
            updated=when,
        )
    )


def find(engine: Engine, sid: str) -> Registration | None:
    with engine.connect() as conn:
        row = conn.execute(select(subscription).where(subscription.c.id == sid)).first()
    return _registration(row) if row is not None else None


def listed(engine: Engine) -> list[Registration]:
    """Every registration, whatever its status."""
    with engine.connect() as conn:
        rows = conn.execute(select(subscription).order_by(subscription.c.id)).all()
    return [_registration(r) for r in rows]


def served(engine: Engine) -> list[Registration]:
    """Registrations the dispatcher works for (active ones, and those in error, whose next
    notification is still tried: a success makes them active again)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(subscription)
            .where(subscription.c.status.in_(("active", "error")))
            .order_by(subscription.c.id)
        ).all()
    return [_registration(r) for r in rows]


def set_status(
    conn: Connection, sid: str, status: str, error: str | None, version_id: int, when: datetime
) -> None:
    conn.execute(
        update(subscription)
        .where(subscription.c.id == sid)
        .values(status=status, error=error, version_id=version_id, updated=when)
    )


def remove(conn: Connection, sid: str) -> None:
    conn.execute(delete(subscription).where(subscription.c.id == sid))


__all__ = ["OWNER_TAG", "Registration", "find", "listed", "remove", "save", "served", "set_status"]
