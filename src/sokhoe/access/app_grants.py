"""The token endpoint's side of SMART App Launch: codes for tokens, refresh tokens, and the
apps a person has connected (listed and disconnected from the portal).

- A code is single use: the first exchange marks it used in the same statement that checks
  it, so two racing exchanges cannot both win; a code presented again (someone else holds a
  copy) revokes the grant it issued, and with it every token of that grant.
- A code is bound to its app, its redirect URI and the PKCE challenge; any mismatch burns it.
- Refresh tokens rotate: each use returns a new one and the old one stops working. One with
  ``online_access`` lasts :data:`ONLINE_TTL` from the launch, ``offline_access`` until the
  person disconnects the app or :data:`OFFLINE_IDLE` passes unused.
- Each access token names the person and the app (``Principal.app``), so the door confines it
  as it confines the person and the audit names both.
See: https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-access-token and
https://datatracker.ietf.org/doc/html/rfc9700#section-4.14 (refresh token rotation)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, select, update

from sokhoe.access.apps import App
from sokhoe.access.id_tokens import IdTokenKeys
from sokhoe.access.launch import principal_from_json
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.store.sql.access_schema import auth_app, auth_app_code, auth_app_grant

ONLINE_TTL: Final = timedelta(hours=12)
OFFLINE_IDLE: Final = timedelta(days=90)
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


class InvalidGrant(ValueError):
    """The code or refresh token is not (or no longer) good: OAuth ``invalid_grant``."""


@dataclass(frozen=True)
class Issued:
    """What the token endpoint answers (RFC 6749 section 5.1, SMART's additions)."""

    access_token: str
    expires_in: int
    scope: str
    patient: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        for name in ("patient", "refresh_token", "id_token"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class ConnectedApp:
    grant_id: str
    client_id: str
    name: str
    scope: str
    patient_id: str | None
    connected: datetime
    used: datetime | None


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pkce_matches(verifier: str, challenge: str) -> bool:
    """Whether ``verifier`` is the one ``challenge`` (S256) was made from (RFC 7636 4.6)."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    made = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(made, challenge)


def revoke_grant(engine: Engine, grant_id: str, now: datetime | None = None) -> None:
    """End a grant: its refresh token and every access token it issued are refused from now
    on (token verification reads this row)."""
    with engine.begin() as conn:
        conn.execute(
            update(auth_app_grant)
            .where(auth_app_grant.c.id == grant_id, auth_app_grant.c.revoked.is_(None))
            .values(revoked=now or _now(), refresh_hash=None)
        )


class AppTokens:
    """Issues the tokens of app grants (the token endpoint's ``authorization_code`` and
    ``refresh_token`` grant types)."""

    def __init__(self, tokens: TokenService, id_keys: IdTokenKeys, issuer: str) -> None:
        self.tokens = tokens
        self.engine = tokens.engine
        self.id_keys = id_keys
        self.issuer = issuer
        """The FHIR base: the id_token's ``iss``."""

    def exchange_code(
        self,
        app: App,
        code: str,
        redirect_uri: str,
        verifier: str,
        now: datetime | None = None,
    ) -> Issued:
        when = now or _now()
        digest = _hash(code)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(auth_app_code).where(auth_app_code.c.code_hash == digest)
            ).first()
            if row is None:
                raise InvalidGrant("Unknown authorization code")
            burned = conn.execute(
                update(auth_app_code)
                .where(auth_app_code.c.code_hash == digest, auth_app_code.c.used.is_(False))
                .values(used=True)
            )
        problem = None
        if burned.rowcount != 1:
            problem = "This authorization code was already used; its tokens are revoked"
        elif row.client_id != app.client_id:
            problem = "This authorization code was issued to another app"
        elif row.redirect_uri != redirect_uri:
            problem = "redirect_uri differs from the one of the authorization request"
        elif _aware(row.expires) <= when:
            problem = "This authorization code has expired"
        elif not pkce_matches(verifier, str(row.challenge)):
            problem = "code_verifier does not match the code_challenge"
        if problem is not None:
            revoke_grant(self.engine, str(row.grant_id), when)
            raise InvalidGrant(problem)
        return self._issue(str(row.grant_id), when, first=True)

    def refresh(
        self,
        app: App,
        refresh_token: str,
        still_holds: Callable[[Principal], bool],
        now: datetime | None = None,
    ) -> Issued:
        """A new access token and a new refresh token for a refresh token (the old one ends).
        ``still_holds`` says whether the person still holds the record the grant is for (a
        child's record ends with guardianship at 18)."""
        when = now or _now()
        digest = _hash(refresh_token)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(auth_app_grant).where(
                    auth_app_grant.c.refresh_hash == digest,
                    auth_app_grant.c.revoked.is_(None),
                )
            ).first()
        if row is None or row.client_id != app.client_id:
            raise InvalidGrant("Unknown, used or revoked refresh token")
        scopes = str(row.scope).split()
        if "offline_access" in scopes:
            last = _aware(row.used or row.created)
            expired = when - last > OFFLINE_IDLE
        else:
            expired = when - _aware(row.created) > ONLINE_TTL
        if expired:
            revoke_grant(self.engine, str(row.id), when)
            raise InvalidGrant("The refresh token has expired; launch the app again")
        if not still_holds(principal_from_json(row.principal)):
            revoke_grant(self.engine, str(row.id), when)
            raise InvalidGrant("The person no longer holds this record")
        return self._issue(str(row.id), when, first=False, previous=digest)

    def _issue(
        self, grant_id: str, when: datetime, *, first: bool, previous: str | None = None
    ) -> Issued:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(auth_app_grant).where(auth_app_grant.c.id == grant_id)
            ).first()
            if row is None or row.revoked is not None:
                raise InvalidGrant("This grant was revoked")
            scopes = str(row.scope).split()
            refresh = (
                secrets.token_urlsafe(32)
                if {"offline_access", "online_access"} & set(scopes)
                else None
            )
            condition = [auth_app_grant.c.id == grant_id, auth_app_grant.c.revoked.is_(None)]
            if previous is not None:  # rotation: only one use of a refresh token wins
                condition.append(auth_app_grant.c.refresh_hash == previous)
            done = conn.execute(
                update(auth_app_grant)
                .where(*condition)
                .values(refresh_hash=None if refresh is None else _hash(refresh), used=when)
            )
            if done.rowcount != 1:
                raise InvalidGrant("Unknown, used or revoked refresh token")
        data = dict(row.principal)
        fhir_user = data.get("fhir_user")
        principal = principal_from_json(data)
        access, expires_in = self.tokens.issue(principal)
        id_token = None
        if first and "openid" in scopes:
            id_token = self.id_keys.sign(
                self.issuer, str(row.client_id), replace(principal, app=None), fhir_user
            )
        return Issued(
            access,
            expires_in,
            " ".join(scopes),
            patient=row.patient_id,
            refresh_token=refresh,
            id_token=id_token,
        )


def connected_apps(engine: Engine, agent: str) -> list[ConnectedApp]:
    """The apps ``agent`` (``access.audit.agent_key`` of the person) connected and has not
    disconnected, newest first; one line per app and record."""
    query = (
        select(auth_app_grant, auth_app.c.name)
        .join(auth_app, auth_app.c.client_id == auth_app_grant.c.client_id)
        .where(
            auth_app_grant.c.agent == agent,
            auth_app_grant.c.revoked.is_(None),
            auth_app.c.active.is_(True),
            auth_app_grant.c.used.is_not(None),
        )
        .order_by(auth_app_grant.c.created.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        ConnectedApp(
            str(r.id),
            str(r.client_id),
            str(r.name),
            str(r.scope),
            (list((r.principal or {}).get("patient_ids") or []) or [None])[0],
            _aware(r.created),
            _aware(r.used) if r.used else None,
        )
        for r in rows
    ]


def disconnect(engine: Engine, agent: str, grant_id: str) -> bool:
    """End ``agent``'s grant ``grant_id`` (a grant of another person is left alone: False)."""
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_app_grant)
            .where(
                auth_app_grant.c.id == grant_id,
                auth_app_grant.c.agent == agent,
                auth_app_grant.c.revoked.is_(None),
            )
            .values(revoked=_now(), refresh_hash=None)
        )
    return done.rowcount == 1


__all__ = [
    "OFFLINE_IDLE",
    "ONLINE_TTL",
    "AppTokens",
    "ConnectedApp",
    "InvalidGrant",
    "Issued",
    "connected_apps",
    "disconnect",
    "pkce_matches",
    "revoke_grant",
]
