"""OpenID Connect id_tokens for apps: who signed in (``fhirUser``), signed with RS256.

The platform's own signing keys are HMAC secrets (``access/tokens.py``): only the server can
check what they sign, which is right for access tokens (only the server reads them) and wrong
for an id_token, which the *app* must verify, and a public app holds no secret to verify an
HMAC with. So id_tokens are signed with a separate RSA key whose public half is published as a
JWK Set at ``/auth/jwks`` (``jwks_uri`` of the OpenID configuration), RS256 as OpenID Connect
requires every server to support. The private key is a database row sealed with the
key-encryption key, like the access-token keys, so every server process signs with the same
one and a backup of the database cannot sign.
See: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#scopes-for-requesting-identity-data
and https://openid.net/specs/openid-connect-core-1_0.html#IDToken
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from sokhoe.access.kek import KeyEncryptionKey
from sokhoe.access.principal import Principal
from sokhoe.store.sql.access_schema import auth_id_key

ID_TOKEN_TTL = timedelta(minutes=15)


class IdTokenKeys:
    """The RS256 key id_tokens are signed with, made on first use."""

    def __init__(self, engine: Engine, kek: KeyEncryptionKey) -> None:
        self.engine = engine
        self.kek = kek

    def _rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(auth_id_key).order_by(auth_id_key.c.created)).all())

    def current(self) -> tuple[str, rsa.RSAPrivateKey]:
        rows = self._rows()
        if not rows:
            self._make()
            rows = self._rows()
        row = rows[-1]
        pem = self.kek.open(str(row.private_key), str(row.kid))
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):  # pragma: no cover - only we write it
            raise TypeError("the id_token key is not an RSA key")
        return str(row.kid), key

    def _make(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        kid = "id-" + secrets.token_hex(6)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(auth_id_key).values(
                        kid=kid, private_key=self.kek.seal(pem, kid), created=datetime.now(UTC)
                    )
                )
        except IntegrityError:  # pragma: no cover - another process made one at once
            pass

    def jwks(self) -> dict[str, Any]:
        """The public keys, as a JWK Set (what ``/auth/jwks`` serves)."""
        kid, key = self.current()
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk |= {"kid": kid, "use": "sig", "alg": "RS256"}
        return {"keys": [jwk]}

    def sign(self, issuer: str, client_id: str, who: Principal, fhir_user: str | None) -> str:
        """An id_token for ``who`` as the app ``client_id`` sees them. ``sub`` is a hash of
        the account (stable for the person, without their phone number in it); a citizen's
        name is read from the Patient ``fhirUser`` names, never their phone number."""
        kid, key = self.current()
        now = datetime.now(UTC)
        account = f"{who.kind}:{who.subject}".encode()
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": hashlib.sha256(b"sokhoe-sub:" + account).hexdigest()[:32],
            "aud": client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + ID_TOKEN_TTL).timestamp()),
        }
        if who.kind == "staff":  # a citizen's display is their phone: their name is fhirUser's
            claims["name"] = who.display
        if fhir_user:
            claims["fhirUser"] = fhir_user
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


__all__ = ["ID_TOKEN_TTL", "IdTokenKeys"]
