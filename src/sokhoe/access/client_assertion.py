"""SMART Backend Services: a connected system proves who it is with a JWT it signs with its
own private key (``private_key_jwt``), instead of a shared secret.

A shared secret has to travel and be stored at both ends; a key pair does not: the system
registers only its public keys (a JWK Set) and keeps the private key. Each token request
carries a fresh assertion: ``iss`` = ``sub`` = the client id, ``aud`` = this token endpoint,
``exp`` at most five minutes ahead, a ``jti`` never used before (kept until it expires, so a
captured assertion cannot be replayed), signed RS384 or ES384 with a registered key. Anything
else is refused: in particular the algorithm is taken from what the key allows, never from
the token alone (no ``none``, no HS384 with the public key as the secret).
See: https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html and
https://hl7.org/fhir/uv/bulkdata/authorization/index.html
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from sokhoe.access.clients import principal_of_client
from sokhoe.access.principal import Principal
from sokhoe.errors import Unauthorized
from sokhoe.store.sql.access_schema import auth_assertion, auth_client, auth_client_key

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS: Final = {"RS384": "RSA", "ES384": "EC"}
"""What the Backend Services specification requires servers to accept, and the key type each
needs."""
MAX_LIFETIME: Final = timedelta(minutes=5)
LEEWAY: Final = 30
"""Seconds of clock difference tolerated between the system and this server."""


def checked_jwks(jwks: Any) -> dict[str, Any]:
    """A JWK Set of public RSA or EC keys, each with its ``kid``; ValueError says what is
    wrong (a private key given by mistake is refused, not stored)."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError('A JWK Set is an object with a non-empty "keys" array')
    kids = set()
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ValueError(f"key {i}: only RSA and EC keys are accepted")
        if any(part in key for part in ("d", "p", "q", "dp", "dq", "qi")):
            raise ValueError(f"key {i} is a private key: register only the public key")
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid or kid in kids:
            raise ValueError(f'key {i} needs a "kid" of its own')
        kids.add(kid)
        alg = key.get("alg")
        if alg is not None and ALGORITHMS.get(alg) != key["kty"]:
            raise ValueError(f"key {i}: alg {alg!r} is not RS384 (RSA) or ES384 (EC)")
        try:
            jwt.PyJWK(key, algorithm=alg or ("RS384" if key["kty"] == "RSA" else "ES384"))
        except jwt.PyJWTError as exc:
            raise ValueError(f"key {i} is not a usable public key: {exc}") from exc
    return {"keys": keys}


def register_keys(engine: Engine, client_id: str, jwks: Any, now: datetime | None = None) -> int:
    """Set the public keys of a connected system (replacing earlier ones: key rotation is a
    new set holding both while the system moves over); the number of keys."""
    keys = checked_jwks(jwks)
    with engine.begin() as conn:
        exists = conn.execute(
            select(auth_client.c.client_id).where(auth_client.c.client_id == client_id)
        ).first()
        if exists is None:
            raise ValueError(f"No connected system {client_id!r}")
        conn.execute(delete(auth_client_key).where(auth_client_key.c.client_id == client_id))
        conn.execute(
            insert(auth_client_key).values(
                client_id=client_id, jwks=json.dumps(keys), updated=now or datetime.now(UTC)
            )
        )
    return len(keys["keys"])


def _keys_of(engine: Engine, client_id: str) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        row = conn.execute(
            select(auth_client_key.c.jwks).where(auth_client_key.c.client_id == client_id)
        ).first()
    return [] if row is None else list(json.loads(row.jwks)["keys"])


def _refused(why: str) -> Unauthorized:
    return Unauthorized(f"The client assertion is refused: {why}")


def authenticate_assertion(
    engine: Engine,
    assertion: str,
    token_url: str,
    requested: str | None = None,
    now: datetime | None = None,
) -> Principal:
    """The principal of the system that signed ``assertion`` for this ``token_url``;
    :class:`Unauthorized` with the reason otherwise (the reason names no key material)."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _refused("it is not a JWT") from exc
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _refused(f"alg must be RS384 or ES384, not {alg!r}")
    client_id = claims.get("iss")
    if not isinstance(client_id, str) or claims.get("sub") != client_id:
        raise _refused("iss and sub must both be the client_id")
    keys = [k for k in _keys_of(engine, client_id) if k["kty"] == ALGORITHMS[alg]]
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    if not keys:
        raise _refused("no registered key of this client matches (kid, alg)")
    verified: dict[str, Any] | None = None
    for key in keys:
        try:
            verified = jwt.decode(
                assertion,
                jwt.PyJWK(key, algorithm=alg).key,
                algorithms=[alg],
                audience=token_url,
                issuer=client_id,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise _refused(str(exc)) from exc
    if verified is None:
        raise _refused("the signature does not verify with the client's keys")
    expires = datetime.fromtimestamp(int(verified["exp"]), UTC)
    if expires - at > MAX_LIFETIME + timedelta(seconds=LEEWAY):
        raise _refused("exp must be at most five minutes ahead")
    _spend(engine, f"{client_id}:{verified['jti']}", expires, at)
    return principal_of_client(engine, client_id, requested)


def _spend(engine: Engine, key: str, expires: datetime, now: datetime) -> None:
    """Keep the assertion's jti until it expires; a second use is a replay."""
    try:
        with engine.begin() as conn:
            conn.execute(delete(auth_assertion).where(auth_assertion.c.expires < now))
            conn.execute(insert(auth_assertion).values(jti=key[:200], expires=expires))
    except IntegrityError as exc:
        raise _refused("this jti was already used (a replay)") from exc


__all__ = [
    "ALGORITHMS",
    "ASSERTION_TYPE",
    "authenticate_assertion",
    "checked_jwks",
    "register_keys",
]
