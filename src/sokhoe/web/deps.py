"""Request-scoped access to the services built once in ``create_app``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import Request

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.errors import FhirError, InvalidRequest, Issue, Unauthorized
from sokhoe.web.sessions import session_token

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def repository(request: Request) -> GuardedRepository:
    """The repository as this request's caller may use it (the access door); with security
    off (local experiments only) the platform's own."""
    cached = getattr(request.state, "repository", None)
    if isinstance(cached, GuardedRepository):
        return cached
    platform: GuardedRepository = request.app.state.repository
    if not settings(request).security:
        request.state.repository = platform
        return platform
    guarded = platform.for_caller(
        principal(request),
        break_glass=_break_glass(request),
        source=request.client.host if request.client else None,
        audit_reads=True,
    )
    request.state.repository = guarded
    return guarded


def _break_glass(request: Request) -> str | None:
    """The emergency reason from ``X-Break-The-Glass`` (percent-encoded UTF-8, since HTTP
    header values are ASCII and reasons are written in Vietnamese)."""
    raw = request.headers.get("x-break-the-glass")
    return unquote(raw).strip() or None if raw else None


def platform_repository(request: Request) -> GuardedRepository:
    """The platform's own door: for the work of the platform itself that a request starts
    (matching candidates across the population), never to answer a caller with records."""
    repo: GuardedRepository = request.app.state.repository
    return repo


PUBLIC_PATHS = frozenset({"/fhir/metadata"})
"""SMART clients read the CapabilityStatement before they can sign in."""


def signed_in(request: Request) -> None:
    """Router dependency: every /fhir route needs a caller when security is on; it runs
    before the route reads the body, so an anonymous caller learns nothing but 401."""
    if settings(request).security and request.url.path not in PUBLIC_PATHS:
        principal(request)


def principal(request: Request) -> Principal:
    """The caller named by the ``Authorization: Bearer`` token, or by the session cookie of
    our own web pages (see ``web/sessions.py``); 401 without a valid one."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        token = session_token(request) or ""  # a web page's cookie session (CSRF-checked)
    elif scheme.lower() != "bearer":
        token = ""
    if not token.strip():
        raise Unauthorized("Sign in first: send 'Authorization: Bearer <access token>'")
    tokens: TokenService = request.app.state.tokens
    found = tokens.verify(token.strip())
    request.state.principal = found
    return found


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def json_body(request: Request) -> Any:
    """The request body as JSON, refused with a clear 400/413/415 when it is not."""
    ctype = request.headers.get("content-type", "application/fhir+json").split(";")[0].strip()
    if ctype and ctype not in JSON_TYPES:
        raise FhirError(
            415,
            [
                Issue(
                    "not-supported",
                    f"Content-Type '{ctype}' is not supported; send application/fhir+json",
                )
            ],
        )
    limit = settings(request).max_request_bytes
    body = await request.body()
    if len(body) > limit:
        raise FhirError(413, [Issue("too-costly", f"Body of {len(body)} bytes exceeds {limit}")])
    if not body:
        raise InvalidRequest("The request has no body; a FHIR resource is expected")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}", code="structure") from exc
