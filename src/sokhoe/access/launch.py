"""SMART App Launch, standalone: the authorization request, what the person may grant, and the
authorization code they give the app by agreeing.

The request is checked in two steps, as OAuth asks: an unknown app or a redirect URI that is
not registered exactly is shown to the person as an error and never redirected to (it could
be anyone's site); every other fault goes back to the app's registered redirect URI with an
``error``. PKCE with S256 is required of every app (``plain`` would show the verifier to
whoever sees the request), and ``aud`` must be this server's FHIR base, so a code for another
server is never sent here by mistake (or sent on by a malicious server).

Scopes the person's role can never have are dropped before they are shown, not refused: a
citizen may grant ``patient/`` read scopes on a record they hold (their own, or a child's
they are confirmed guardian of: they pick which), a clinician ``user/`` scopes within their
role's (and the door then confines the app as it confines their own pages).
See: https://hl7.org/fhir/smart-app-launch/app-launch.html and
https://www.rfc-editor.org/rfc/rfc7636 (PKCE)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, delete, insert

from sokhoe.access.apps import App, find_app
from sokhoe.access.audit import agent_key
from sokhoe.access.principal import Principal
from sokhoe.access.scopes import covered, parse_scope
from sokhoe.store.sql.access_schema import auth_app_code, auth_app_grant

CODE_TTL: Final = timedelta(seconds=60)
"""An authorization code lives a minute: the app exchanges it at once."""
STALE: Final = timedelta(days=1)
"""Codes expired and launches left unfinished this long ago are deleted."""
IDENTITY: Final = frozenset({"openid", "fhirUser"})
REFRESH: Final = frozenset({"offline_access", "online_access"})
LAUNCH_PATIENT: Final = "launch/patient"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
"""A base64url SHA-256 without padding: exactly 43 characters."""


class RedirectRefused(ValueError):
    """The request names no registered app or redirect URI: say so to the person, never
    redirect (RFC 6749 section 4.1.2.1)."""


class LaunchError(ValueError):
    """A fault reported to the app at its redirect URI (``error``, ``error_description``)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthRequest:
    """A checked authorization request."""

    app: App
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]
    challenge: str


def _one(params: Mapping[str, str], name: str) -> str:
    return str(params.get(name) or "").strip()


def parse_request(engine: Engine, params: Mapping[str, str], fhir_base: str) -> AuthRequest:
    """The request's parameters checked (see the module docstring)."""
    app = find_app(engine, _one(params, "client_id"))
    if app is None:
        raise RedirectRefused("No app is registered under this client_id")
    redirect_uri = str(params.get("redirect_uri") or "")
    if redirect_uri not in app.redirect_uris:
        raise RedirectRefused("This redirect_uri is not registered for the app")
    state = params.get("state") or None
    if _one(params, "response_type") != "code":
        raise LaunchError("unsupported_response_type", "response_type must be code")
    if _one(params, "aud").rstrip("/") != fhir_base.rstrip("/"):
        raise LaunchError("invalid_request", f"aud must be this server's FHIR base {fhir_base}")
    if _one(params, "code_challenge_method") != "S256":
        raise LaunchError("invalid_request", "PKCE is required: code_challenge_method=S256")
    challenge = _one(params, "code_challenge")
    if not _CHALLENGE.fullmatch(challenge):
        raise LaunchError("invalid_request", "code_challenge must be a base64url SHA-256")
    scopes = tuple(dict.fromkeys(_one(params, "scope").split()))
    if not scopes:
        raise LaunchError("invalid_scope", "scope is required")
    return AuthRequest(app, redirect_uri, state, scopes, challenge)


def grantable(who: Principal, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The requested scopes ``who`` may give an app (see the module docstring)."""
    context = "patient" if who.kind == "citizen" else "user"
    kept: list[str] = []
    for scope in requested:
        if scope in IDENTITY or scope in REFRESH:
            kept.append(scope)
        elif scope == LAUNCH_PATIENT:
            if who.kind == "citizen":
                kept.append(scope)
        else:
            try:
                parsed = parse_scope(scope)
            except ValueError:
                continue
            if parsed.context == context and covered(scope, who.scopes):
                kept.append(scope)
    if "fhirUser" in kept and "openid" not in kept:
        kept.remove("fhirUser")
    return tuple(kept)


def resource_scopes(scopes: tuple[str, ...]) -> frozenset[str]:
    """The scopes the door reads (``context/Type.perms``), without the launch and identity
    ones."""
    return frozenset(s for s in scopes if "/" in s and s != LAUNCH_PATIENT)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def principal_json(principal: Principal) -> dict[str, object]:
    data = asdict(principal)
    data["scopes"] = sorted(principal.scopes)
    data["patient_ids"] = list(principal.patient_ids)
    return data


def principal_from_json(data: Mapping[str, Any]) -> Principal:
    fields = {k: v for k, v in data.items() if k != "fhir_user"}
    fields["scopes"] = frozenset(fields.get("scopes") or ())
    fields["patient_ids"] = tuple(fields.get("patient_ids") or ())
    return Principal(**fields)


def approve(
    engine: Engine,
    who: Principal,
    request: AuthRequest,
    patient_id: str | None,
    fhir_user: str | None,
    now: datetime | None = None,
) -> str:
    """The person agreed: record the grant and return the authorization code (single use,
    :data:`CODE_TTL`). ``who`` is the person with the records they hold now; a citizen's
    ``patient_id`` must be one of them (their own when None). ValueError otherwise."""
    granted = grantable(who, request.scopes)
    when = now or datetime.now(UTC)
    grant_id = uuid.uuid4().hex
    acting = dict(app=request.app.client_id, app_name=request.app.name, grant=grant_id)
    if who.kind == "citizen":
        chosen = patient_id or (who.patient_ids[0] if who.patient_ids else None)
        if chosen is None or chosen not in who.patient_ids:
            raise ValueError("a citizen connects an app to a record they hold")
        principal = replace(
            who,
            scopes=resource_scopes(granted),
            patient_ids=(chosen,),
            session=None,
            **acting,  # type: ignore[arg-type]
        )
        if LAUNCH_PATIENT not in granted:
            chosen_context = None
        else:
            chosen_context = chosen
    else:
        principal = replace(who, scopes=resource_scopes(granted), session=None, **acting)  # type: ignore[arg-type]
        chosen_context = None
    if "fhirUser" in granted and fhir_user is None:
        granted = tuple(s for s in granted if s != "fhirUser")
    code = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        # what can no longer matter: codes long expired (a replay of one is refused anyway)
        # and launches nobody finished (their code expired unused)
        stale = when - STALE
        conn.execute(delete(auth_app_code).where(auth_app_code.c.expires < stale))
        conn.execute(
            delete(auth_app_grant).where(
                auth_app_grant.c.used.is_(None), auth_app_grant.c.created < stale
            )
        )
        conn.execute(
            insert(auth_app_grant).values(
                id=grant_id,
                client_id=request.app.client_id,
                agent=agent_key(replace(who, app=None)),
                principal={**principal_json(principal), "fhir_user": fhir_user},
                scope=" ".join(granted),
                patient_id=chosen_context,
                created=when,
            )
        )
        conn.execute(
            insert(auth_app_code).values(
                code_hash=_hash(code),
                client_id=request.app.client_id,
                redirect_uri=request.redirect_uri,
                challenge=request.challenge,
                grant_id=grant_id,
                expires=when + CODE_TTL,
                used=False,
            )
        )
    return code


__all__ = [
    "CODE_TTL",
    "LAUNCH_PATIENT",
    "AuthRequest",
    "LaunchError",
    "RedirectRefused",
    "approve",
    "grantable",
    "parse_request",
    "principal_from_json",
    "resource_scopes",
]
