"""Short-lived signed access tokens, with key rotation and revocation kept in the database.

Tokens are JWTs (HS256) naming the key that signed them (``kid``). Several keys are valid at
once: ``rotate()`` adds a new signing key and retires the old one for signing only, so tokens it
signed stay valid until they expire and no server process needs a restart. Keys, like
revocations, are rows, so every process behind a load balancer agrees.

The rows hold each key sealed with the key-encryption key, never in plain text, so a backup
of the database cannot mint tokens (:mod:`sokhoe.access.signing_keys`). A database restored
where that key differs cannot open its signing keys: tokens they signed are refused (401) and
a new signing key is made.

A token of a staff account or connected system is accepted only while that account is active:
verification reads the account's row, so deactivating it ends its tokens at once in every
server process.
See: https://www.rfc-editor.org/rfc/rfc7519 and https://www.rfc-editor.org/rfc/rfc6749#section-4.4
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from sqlalchemy import Connection, Engine, delete, insert, select

from sokhoe.access.kek import KeyEncryptionKey
from sokhoe.access.principal import Principal
from sokhoe.access.signing_keys import SigningKeys
from sokhoe.errors import Unauthorized
from sokhoe.store.sql.access_schema import (
    auth_app,
    auth_app_grant,
    auth_client,
    auth_revoked_token,
    auth_user,
)

log = logging.getLogger(__name__)

ISSUER = "sokhoe"
DEFAULT_TTL = timedelta(minutes=15)


def _derive(secret: str, purpose: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), purpose, hashlib.sha256).digest()


def _now() -> datetime:
    return datetime.now(UTC)


@cache
def _process_kek() -> KeyEncryptionKey:
    log.warning(
        "TokenService made without a key-encryption key: its signing keys are sealed with a "
        "key that lives only in this process, so its tokens end with it"
    )
    return KeyEncryptionKey.generate()


def _account_active(conn: Connection, kind: object, subject: str) -> bool:
    """Whether the staff account or connected system a token names exists and is active.
    Citizens have no deactivation (their phone is the account)."""
    if kind == "citizen":
        return True
    if kind == "staff":
        query = select(auth_user.c.active).where(auth_user.c.username == subject)
    elif kind == "client":
        query = select(auth_client.c.active).where(auth_client.c.client_id == subject)
    else:
        return False
    active = conn.execute(query).scalar()
    return bool(active)


def _grant_active(conn: Connection, grant_id: str) -> bool:
    """Whether the app grant a token came from still stands (not disconnected, not revoked
    after a replayed code) and its app is still registered and active."""
    row = conn.execute(
        select(auth_app_grant.c.revoked, auth_app.c.active)
        .join(auth_app, auth_app.c.client_id == auth_app_grant.c.client_id)
        .where(auth_app_grant.c.id == grant_id)
    ).first()
    return row is not None and row.revoked is None and bool(row.active)


class TokenService:
    """Issue, verify and revoke access tokens over the access database.

    ``kek`` seals the signing keys in the database; the application passes the configured
    one (``create_app``). Without it a key that lives only in this process is used, so tokens
    do not outlive the process: fine for a test, wrong for a server.
    """

    def __init__(
        self,
        engine: Engine,
        ttl: timedelta = DEFAULT_TTL,
        *,
        kek: KeyEncryptionKey | None = None,
        reader: Engine | None = None,
    ) -> None:
        self.engine = engine
        self.reader = reader if reader is not None else engine
        """Every request's token check reads through it (``access_reader``)."""
        self.ttl = ttl
        self.kek = kek if kek is not None else _process_kek()
        self.keys = SigningKeys(engine, self.kek, reader=self.reader)

    # -- keys ----------------------------------------------------------------------
    def rotate(self) -> tuple[str, str]:
        """Start signing with a new key; the previous one keeps verifying its tokens."""
        return self.keys.rotate()

    def derived_signing_key(self, purpose: bytes) -> tuple[str, bytes]:
        """(kid, key) for signing something other than an access token (an OIDC flow cookie):
        an HMAC of the current signing key with ``purpose``, so the two can never be taken
        for each other and key rotation covers both."""
        kid, secret = self.keys.current()
        return kid, _derive(secret, purpose)

    def derived_verifying_key(self, kid: str, purpose: bytes) -> bytes | None:
        """The key :meth:`derived_signing_key` gave under ``kid``, while that key verifies."""
        secret = self.keys.verifying(kid)
        return None if secret is None else _derive(secret, purpose)

    # -- tokens --------------------------------------------------------------------
    def issue(self, principal: Principal, ttl: timedelta | None = None) -> tuple[str, int]:
        """A signed token for ``principal`` and its lifetime in seconds."""
        kid, secret = self.keys.current()
        lifetime = ttl or self.ttl
        now = _now()
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": principal.subject,
            "kind": principal.kind,
            "name": principal.display,
            "role": principal.role,
            "fac": principal.facility,
            "com": principal.commune,
            "scope": " ".join(sorted(principal.scopes)),
            "pat": list(principal.patient_ids),
            "jti": uuid.uuid4().hex,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
        }
        if principal.facility_name:
            claims["facn"] = principal.facility_name
        if principal.several_facilities:
            claims["facs"] = True
        if principal.app:
            claims |= {"app": principal.app, "appn": principal.app_name, "grt": principal.grant}
        token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})
        return token, int(lifetime.total_seconds())

    def verify(self, token: str) -> Principal:
        """The principal a valid, unrevoked token names; :class:`Unauthorized` otherwise."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is malformed") from exc
        secret = self.keys.verifying(kid) if isinstance(kid, str) else None
        if secret is None:
            raise Unauthorized("The access token was signed by an unknown or expired key")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired; request a new one") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"The access token is invalid ({exc})") from exc
        with self.reader.connect() as conn:
            revoked = conn.execute(
                select(auth_revoked_token.c.jti).where(auth_revoked_token.c.jti == claims["jti"])
            ).first()
            active = revoked is None and _account_active(conn, claims.get("kind"), claims["sub"])
            if active and claims.get("grt") is not None:
                active = _grant_active(conn, str(claims["grt"]))
        if revoked is not None:
            raise Unauthorized("The access token was revoked")
        if not active:
            raise Unauthorized("The account this access token was issued to is not active")
        return Principal(
            kind=claims["kind"],
            subject=claims["sub"],
            display=claims.get("name") or claims["sub"],
            role=claims.get("role"),
            facility=claims.get("fac"),
            commune=claims.get("com"),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            patient_ids=tuple(claims.get("pat") or ()),
            session=claims["jti"],
            facility_name=claims.get("facn"),
            several_facilities=bool(claims.get("facs")),
            app=claims.get("app"),
            app_name=claims.get("appn"),
            grant=claims.get("grt"),
        )

    def revoke(self, token_or_jti: str, expires: datetime | None = None) -> None:
        """Refuse a token from now on (kept until it would have expired anyway: a bare
        ``jti`` of a token that lives longer than the default, such as a citizen's portal
        session, must say when with ``expires``)."""
        jti, expires = token_or_jti, expires or _now() + self.ttl
        if "." in token_or_jti:
            claims = jwt.decode(token_or_jti, options={"verify_signature": False})
            jti = claims["jti"]
            expires = datetime.fromtimestamp(claims["exp"], UTC)
        with self.engine.begin() as conn:
            conn.execute(delete(auth_revoked_token).where(auth_revoked_token.c.expires < _now()))
            exists = conn.execute(
                select(auth_revoked_token.c.jti).where(auth_revoked_token.c.jti == jti)
            ).first()
            if exists is None:
                conn.execute(insert(auth_revoked_token).values(jti=jti, expires=expires))
