"""``POST /auth/token``: OAuth 2.0 token endpoint (client credentials for connected systems).

See: https://www.rfc-editor.org/rfc/rfc6749#section-4.4
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sokhoe.access.accounts import sign_in
from sokhoe.access.audit import AuditLog
from sokhoe.access.client_assertion import ASSERTION_TYPE, authenticate_assertion
from sokhoe.access.clients import authenticate_client
from sokhoe.access.guardians import with_wards
from sokhoe.access.otp import request_code, verify_code
from sokhoe.access.passwords import password_hasher
from sokhoe.access.principal import Kind, Principal
from sokhoe.access.tokens import TokenService
from sokhoe.clinic.stations import with_station
from sokhoe.config import Settings
from sokhoe.errors import FhirError, InvalidRequest
from sokhoe.web import deps
from sokhoe.web.sessions import csrf_token, end_session, start_session
from sokhoe.web.smart_authorize import app_token

router = APIRouter(prefix="/auth", tags=["Sign-in"])


@router.post("/token", summary="Exchange client credentials for an access token")
async def token(
    request: Request,
    grant_type: str = Form(...),
    client_id: str = Form(""),
    client_secret: str = Form(""),
    scope: str | None = Form(None),
    client_assertion_type: str | None = Form(None),
    client_assertion: str | None = Form(None),
    code: str = Form(""),
    redirect_uri: str = Form(""),
    code_verifier: str = Form(""),
    refresh_token: str = Form(""),
) -> JSONResponse:
    """A connected system authenticates with its secret (``client_secret_post``) or, as SMART
    Backend Services ask, with a JWT signed by its own key (``private_key_jwt``). An app a
    person connected exchanges its authorization code or refresh token
    (``web/smart_authorize.py``)."""
    if grant_type in ("authorization_code", "refresh_token"):
        form = {
            "grant_type": grant_type,
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "refresh_token": refresh_token,
        }
        return await app_token(request, form)
    if grant_type != "client_credentials":
        raise InvalidRequest(
            f"grant_type '{grant_type}' is not supported here; use client_credentials, "
            "authorization_code or refresh_token",
            "grant_type",
        )
    tokens: TokenService = request.app.state.tokens
    if client_assertion is not None or client_assertion_type is not None:
        if client_assertion_type != ASSERTION_TYPE or not client_assertion:
            raise InvalidRequest(
                f"client_assertion_type must be {ASSERTION_TYPE}, with client_assertion",
                "client_assertion_type",
            )
        token_url = deps.settings(request).base_url.rstrip("/") + "/auth/token"
        principal = await run_in_threadpool(
            authenticate_assertion, tokens.engine, client_assertion, token_url, scope
        )
    else:
        principal = await run_in_threadpool(
            authenticate_client, tokens.engine, client_id, client_secret, scope
        )
    return await run_in_threadpool(_issued, request, principal)


def _issued(request: Request, principal: Principal, cookie: bool = False) -> JSONResponse:
    """The token response; with ``cookie`` (a sign-in from our own web pages) the token goes
    in an HttpOnly session cookie instead of the body, with its CSRF token beside it."""
    tokens: TokenService = request.app.state.tokens
    access, expires_in = tokens.issue(principal)
    _audit(request, principal, "login", "success")
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "expires_in": expires_in,
        "scope": " ".join(sorted(principal.scopes)),
    }
    if not cookie:
        return JSONResponse({"access_token": access, **body}, headers={"Cache-Control": "no-store"})
    body["csrf_token"] = csrf_token(access)
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    start_session(response, access, expires_in, _secure(request))
    return response


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.base_url.startswith("https://")


SessionQuery = Annotated[
    Literal["token", "cookie"],
    Query(description="'cookie' for our own web pages: an HttpOnly session cookie + CSRF token"),
]


@router.post("/sign-out", summary="End the session: revoke its token and clear the cookies")
async def sign_out(request: Request) -> JSONResponse:
    found = deps.principal(request)  # bearer token, or cookie (CSRF-checked: a POST)
    tokens: TokenService = request.app.state.tokens
    if found.session:
        await run_in_threadpool(tokens.revoke, found.session)
    response = JSONResponse({"signed_out": True})
    end_session(response, _secure(request))
    return response


def _audit(request: Request, principal: Principal | None, action: str, outcome: str) -> None:
    auditor: AuditLog = request.app.state.auditor
    auditor.record(
        principal,
        action,
        outcome,
        source=request.client.host if request.client else None,
    )


class StaffSignIn(BaseModel):
    username: str
    password: str
    totp: str | None = None


class OtpRequest(BaseModel):
    phone: str


class OtpVerify(BaseModel):
    phone: str
    code: str
    challenge: str | None = None


def _failed(request: Request, who: str, kind: Kind) -> None:
    _audit(request, Principal(kind=kind, subject=who, display=who), "login-failed", "denied")


@router.post("/staff/sign-in", summary="Staff sign-in with password (and TOTP)")
async def staff_sign_in(
    request: Request, body: StaffSignIn, session: SessionQuery = "token"
) -> JSONResponse:
    tokens: TokenService = request.app.state.tokens
    try:
        principal = await run_in_threadpool(
            partial(sign_in, hasher=password_hasher(deps.settings(request))),
            tokens.engine,
            body.username,
            body.password,
            body.totp,
        )
    except FhirError as exc:
        await run_in_threadpool(_failed, request, body.username, "staff")
        raise exc
    platform = request.app.state.repository
    principal = await run_in_threadpool(with_station, platform, principal)
    return await run_in_threadpool(_issued, request, principal, session == "cookie")


@router.post("/citizen/code", summary="Send a one-time sign-in code by SMS")
async def citizen_code(request: Request, body: OtpRequest) -> JSONResponse:
    tokens: TokenService = request.app.state.tokens
    address = request.client.host if request.client else "unknown"
    try:
        challenge = await run_in_threadpool(
            request_code, tokens.engine, request.app.state.sms, body.phone, address
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc), "phone") from exc
    return JSONResponse({"challenge": challenge, "expires_in": 300}, status_code=202)


@router.post("/citizen/verify", summary="Exchange the one-time code for an access token")
async def citizen_verify(
    request: Request, body: OtpVerify, session: SessionQuery = "token"
) -> JSONResponse:
    tokens: TokenService = request.app.state.tokens
    try:
        principal = await run_in_threadpool(
            verify_code, tokens.engine, body.phone, body.code, None, body.challenge
        )
    except FhirError as exc:
        await run_in_threadpool(_failed, request, body.phone, "citizen")
        raise exc
    principal = await run_in_threadpool(with_wards, request.app.state.repository, principal)
    return await run_in_threadpool(_issued, request, principal, session == "cookie")
