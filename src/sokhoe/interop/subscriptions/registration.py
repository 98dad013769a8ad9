"""Creating, changing and removing a Subscription: check it, activate it, remember its owner.

A connected system POSTs a Subscription with ``status: requested``; the server checks the
criteria (a search it understands), the payload and the channel: ``rest-hook`` to an endpoint
on the owner's allow-list whose addresses notifications may reach (the rule of
:mod:`~sokhoe.interop.subscriptions.endpoints`, applied again before every notification).
Then it stores it ``active`` through the caller's guarded repository (scopes, audit) and
registers it for the dispatcher with the caller as owner: notifications then carry only what
that caller may see. Everything is checked before anything is written, so a refused
Subscription changes nothing.

Only connected systems (``Principal.kind == "client"``, the platform's too) create, change or
delete Subscriptions; staff and citizens are refused (403): an endpoint is a machine an
operator vouched for, not an address a person typed in.

``channel.header`` is write-only here: the values (typically the receiver's credential) are
kept in the registration row and left out of the stored resource, which other clients may
read. An update without ``channel.header`` keeps the headers registered before.
See: https://hl7.org/fhir/R4/subscription.html
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Engine

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.policy import is_platform
from sokhoe.access.principal import Principal
from sokhoe.errors import Forbidden, InvalidRequest
from sokhoe.fhir.repository import Outcome
from sokhoe.interop.subscriptions import allowlist, registry
from sokhoe.interop.subscriptions.criteria import parse_criteria
from sokhoe.interop.subscriptions.endpoints import EndpointPolicy
from sokhoe.interop.subscriptions.registry import OWNER_TAG, Registration

PAYLOADS = frozenset({"application/fhir+json", "application/json"})
"""Payload MIME types we send (JSON only, as the whole API); absent means empty notifications."""


def _headers(channel: dict[str, Any]) -> tuple[str, ...] | None:
    raw = channel.get("header")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(h, str) for h in raw):
        raise InvalidRequest("channel.header must be a list of strings", "Subscription.channel")
    out = []
    for i, header in enumerate(raw):
        name, sep, value = header.partition(":")
        if (
            not sep
            or not name.strip()
            or any(c in header for c in "\r\n\0")
            or any(c in name for c in " \t")
        ):
            raise InvalidRequest(
                f"channel.header[{i}] must be one HTTP header 'Name: value'",
                f"Subscription.channel.header[{i}]",
            )
        out.append(f"{name.strip()}: {value.strip()}")
    return tuple(out)


def _status(body: dict[str, Any]) -> str:
    status = body.get("status")
    if status in ("requested", "active", None):
        return "active"
    if status == "off":
        return "off"
    raise InvalidRequest(
        f"A client sets Subscription.status to 'requested' or 'off', not '{status}'",
        "Subscription.status",
    )


def _only_systems(principal: Principal) -> None:
    """Subscriptions belong to connected systems: a notification goes to a machine endpoint
    an operator allowed for that system, never to one a person typed in."""
    if principal.kind != "client":
        raise Forbidden(
            "Only connected systems (OAuth clients) may create, change or delete a "
            f"Subscription; a {principal.kind} account may not"
        )


def _owned(existing: Registration | None, principal: Principal, sid: str) -> None:
    if existing is None or is_platform(principal):
        return
    if existing.owner.subject != principal.subject:
        raise Forbidden(f"Subscription/{sid} belongs to another connected system")


OWNS = frozenset({"subscription"})
"""Subscriptions are written by this registration only (``access/writes.py``)."""


def register(
    repo: GuardedRepository,
    engine: Engine,
    principal: Principal,
    body: Any,
    endpoints: EndpointPolicy,
    *,
    rid: str | None = None,
    if_match: str | None = None,
) -> Outcome:
    """Create (``rid`` None) or update a Subscription for ``principal`` through ``repo`` (the
    caller's guarded repository) and register it; see the module docstring."""
    _only_systems(principal)
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        raise InvalidRequest("The body must be a Subscription resource", "resourceType")
    channel = body.get("channel")
    if not isinstance(channel, dict):
        raise InvalidRequest("A Subscription needs a channel", "Subscription.channel")
    if channel.get("type") != "rest-hook":
        raise InvalidRequest(
            f"channel.type '{channel.get('type')}' is not supported: use rest-hook",
            "Subscription.channel.type",
        )
    criteria = parse_criteria(repo, body.get("criteria"))
    repo.require_scope(criteria.resource_type, "read")  # notifications carry what it may read
    payload = channel.get("payload")
    if payload is not None and payload not in PAYLOADS:
        raise InvalidRequest(
            f"channel.payload '{payload}' is not supported: use application/fhir+json, or "
            "leave it out for empty notifications",
            "Subscription.channel.payload",
        )
    headers = _headers(channel)
    status = _status(body)
    existing = registry.find(engine, rid) if rid is not None else None
    if rid is not None:
        _owned(existing, principal, rid)
    if headers is None:
        headers = existing.headers if existing is not None else ()
    owner = principal if existing is None else _keep(existing, principal)
    if owner.kind != "client":  # registered before only connected systems could
        raise Forbidden(
            f"Subscription/{rid} is owned by a {owner.kind} account, which may no longer own "
            "one: delete it and register it again from the connected system"
        )
    endpoint = endpoints.check(channel.get("endpoint"), allowlist.allowed(engine, owner.subject))

    content = copy.deepcopy(body)
    content["status"] = "active" if status == "active" else "off"
    content.pop("error", None)
    content["channel"] = {k: v for k, v in channel.items() if k != "header"}
    meta = dict(content["meta"]) if isinstance(content.get("meta"), dict) else {}
    given: list[Any] = meta["tag"] if isinstance(meta.get("tag"), list) else []
    tags = [t for t in given if not isinstance(t, dict) or t.get("system") != OWNER_TAG]
    tags.append({"system": OWNER_TAG, "code": owner.subject, "display": owner.display})
    meta["tag"] = tags
    content["meta"] = meta
    interaction = "create" if rid is None else "update"
    with repo.operation(
        "subscribe", resource_type="Subscription", interactions=[interaction], owns=OWNS
    ) as tx:
        if rid is None:
            outcome = repo.create(content, "Subscription", tx=tx)
        else:
            outcome = repo.update(content, "Subscription", rid, if_match=if_match, tx=tx)
        stored = outcome.resource
        since = (
            existing.since
            if existing is not None
            and existing.criteria == criteria.text
            and existing.status in ("active", "error")
            else stored.last_updated
        )
        reg = Registration(
            id=stored.id,
            version_id=stored.version_id,
            owner=owner,
            criteria=criteria.text,
            endpoint=endpoint,
            payload=payload,
            headers=headers,
            status=status,
            error=None,
            since=since,
        )
        tx.side_tables(lambda conn: registry.save(conn, reg, stored.last_updated))
    return outcome


def _keep(existing: Registration, principal: Principal) -> Principal:
    """The owner stays the system that created it, even when the platform edits it."""
    return existing.owner if existing.owner.subject != principal.subject else principal


def unregister(
    repo: GuardedRepository, engine: Engine, principal: Principal, rid: str
) -> Outcome | None:
    """Delete the Subscription (logically, through ``repo``) and stop serving it."""
    _only_systems(principal)
    _owned(registry.find(engine, rid), principal, rid)
    with repo.operation(
        "unsubscribe", resource_type="Subscription", interactions=["delete"], owns=OWNS
    ) as tx:
        outcome = repo.delete("Subscription", rid, tx=tx)
        tx.side_tables(lambda conn: registry.remove(conn, rid))
    return outcome


__all__ = ["PAYLOADS", "register", "unregister"]
