"""Apps a person connects to their record (SMART App Launch): registration and who they are.

An app acts for the citizen or clinician who signed in and agreed, never for itself, so it
has no scopes of its own and cannot use client credentials (those are the connected systems
of ``access/clients.py``). A public app (a phone app, a page in the browser) keeps no secret
and proves at the token endpoint, through PKCE, that it is the one that started the launch; a
confidential app (a server) also sends its secret (``client_secret_post`` or HTTP Basic).

Redirect URIs are registered and compared exactly, character for character: a prefix or
pattern match is how authorization codes leak to another site (an open redirect).
See: https://hl7.org/fhir/smart-app-launch/app-launch.html#register-app-with-ehr and
https://datatracker.ietf.org/doc/html/rfc9700#section-4.1
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import Engine, insert, select, update

from sokhoe.errors import Unauthorized
from sokhoe.store.sql.access_schema import auth_app

_LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")


@dataclass(frozen=True)
class App:
    client_id: str
    name: str
    public: bool
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class NewApp:
    client_id: str
    client_secret: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_redirect_uri(uri: str) -> str:
    """A redirect URI an app may register: absolute, https (http only to this computer, for
    apps on a desktop and for tests), no fragment; ValueError otherwise.
    See: https://www.rfc-editor.org/rfc/rfc6749#section-3.1.2"""
    parts = urlsplit(uri.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"'{uri}' is not an absolute https URI")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError(f"'{uri}': plain http is allowed only to this computer (127.0.0.1)")
    if parts.fragment or "#" in uri:
        raise ValueError(f"'{uri}': a redirect URI has no fragment")
    return uri.strip()


def create_app_client(
    engine: Engine, name: str, redirect_uris: list[str], public: bool = False
) -> NewApp:
    """Register an app; ValueError on a missing name or a bad redirect URI. A confidential
    app's secret is returned once and kept only as its hash (256 random bits: see
    ``access/clients.py`` for why SHA-256 and not a password hash)."""
    if not name.strip():
        raise ValueError("An app needs a name")
    uris = [check_redirect_uri(u) for u in redirect_uris]
    if not uris:
        raise ValueError("An app needs at least one --redirect-uri")
    client_id = "app-" + secrets.token_hex(8)
    secret = None if public else secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(auth_app).values(
                client_id=client_id,
                name=name.strip()[:200],
                secret_hash=None if secret is None else _digest(secret),
                redirect_uris="\n".join(dict.fromkeys(uris)),
                active=True,
                created=datetime.now(UTC),
            )
        )
    return NewApp(client_id, secret)


def find_app(engine: Engine, client_id: str) -> App | None:
    """The active app registered under ``client_id``, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(auth_app).where(auth_app.c.client_id == client_id)).first()
    if row is None or not row.active:
        return None
    return App(
        str(row.client_id),
        str(row.name),
        row.secret_hash is None,
        tuple(str(row.redirect_uris).split("\n")),
    )


def authenticate_app(engine: Engine, client_id: str, client_secret: str | None) -> App:
    """The app calling the token endpoint: a confidential app must send its secret; a public
    app must not claim one it does not have. :class:`Unauthorized` otherwise."""
    with engine.connect() as conn:
        row = conn.execute(select(auth_app).where(auth_app.c.client_id == client_id)).first()
    if row is None or not row.active:
        raise Unauthorized("Unknown or inactive app")
    if row.secret_hash is not None:
        sent = _digest(client_secret or "")
        if not client_secret or not hmac.compare_digest(sent, str(row.secret_hash)):
            raise Unauthorized("This app must authenticate with its client secret")
    app = find_app(engine, client_id)
    if app is None:  # deactivated between the two reads
        raise Unauthorized("Unknown or inactive app")
    return app


def deactivate_app(engine: Engine, client_id: str) -> None:
    """Stop an app: every token it holds is refused from now on (``access/tokens.py`` reads
    this row on each verification). ValueError for an unknown id."""
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_app).where(auth_app.c.client_id == client_id).values(active=False)
        )
    if done.rowcount == 0:
        raise ValueError(f"No app {client_id!r}")


__all__ = [
    "App",
    "NewApp",
    "authenticate_app",
    "check_redirect_uri",
    "create_app_client",
    "deactivate_app",
    "find_app",
]
