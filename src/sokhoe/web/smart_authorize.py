"""``/auth/authorize``: SMART App Launch, standalone, as the person sees it; ``/auth/jwks``.

The app sends the person here; they sign in with the pages they already know (a citizen with
the code sent to their phone, a clinician with their password and authenticator), then see a
consent screen naming the app and what it asks for in plain words, and allow or refuse. The
form carries the session's CSRF token, and the request is checked again when it comes back
(nothing of it is kept between the two). Refusing sends the person back to the app with
``error=access_denied``. The words live in ``portal/app_consent.py`` and the ``portal``
catalogue: one screen, for citizens and clinicians alike.
See: https://hl7.org/fhir/smart-app-launch/app-launch.html#obtain-authorization-code
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.accounts import practitioner_of
from sokhoe.access.app_grants import AppTokens, InvalidGrant
from sokhoe.access.apps import authenticate_app
from sokhoe.access.guardians import with_wards
from sokhoe.access.launch import (
    AuthRequest,
    LaunchError,
    RedirectRefused,
    approve,
    grantable,
    parse_request,
)
from sokhoe.access.otp import linked_patient, normalise_phone
from sokhoe.access.principal import Principal
from sokhoe.errors import Unauthorized
from sokhoe.portal.app_consent import describe_all
from sokhoe.web import deps
from sokhoe.web.pages import common
from sokhoe.web.pages.portal.base import Citizen, page, render
from sokhoe.web.pages.portal.home import profiles

router = APIRouter(prefix="/auth", include_in_schema=False)

PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
)


def back_to_app(redirect_uri: str, **values: str | None) -> RedirectResponse:
    """A redirect to the app's registered URI with ``values`` added to its query."""
    query = urlencode({k: v for k, v in values.items() if v is not None})
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + joiner + query, status_code=303)


def _params(source: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(source[k]) for k in PARAMS if isinstance(source.get(k), str)}


def _refused(request: Request, reason: str) -> Response:
    """A request that may not be redirected, said to the person: ``reason`` is one of
    ``unknown-app``, ``redirect``, ``not-linked``, ``signed-out``, ``not-held`` (the
    template words each)."""
    return render(
        request,
        "portal/connect_error.html",
        400,
        title="This app cannot connect",
        reason=reason,
    )


def _check(request: Request, params: Mapping[str, str]) -> AuthRequest | Response:
    engine = request.app.state.tokens.engine
    try:
        return parse_request(engine, params, deps.settings(request).fhir_base)
    except RedirectRefused as exc:
        return _refused(request, "unknown-app" if "client_id" in str(exc) else "redirect")
    except LaunchError as exc:
        return back_to_app(
            str(params.get("redirect_uri")),
            error=exc.error,
            error_description=exc.description,
            state=params.get("state"),
        )


def _consent(
    request: Request, asked: AuthRequest, who: Principal, params: dict[str, str], **more: Any
) -> Response:
    granted = grantable(who, asked.scopes)
    dropped = [s for s in asked.scopes if s not in granted and s != "fhirUser"]
    kept_query = urlencode({k: v for k, v in params.items()})
    return render(
        request,
        "portal/consent.html",
        title="Connect an app",
        app=asked.app,
        site=urlsplit(asked.redirect_uri).netloc,
        lines=describe_all(granted),
        dropped=dropped,
        params=params,
        keep_query=kept_query,
        staff=who.kind != "citizen",
        who=who,
        **more,
    )


@router.get("/authorize")
async def authorize(request: Request) -> Response:
    params = _params(request.query_params)
    checked = await run_in_threadpool(_check, request, params)
    if isinstance(checked, Response):
        return checked
    found = await common.caller(request)
    if found is None:
        here = quote(f"/auth/authorize?{urlencode(params)}", safe="")
        return render(
            request,
            "portal/connect_sign_in.html",
            title="Sign in to connect an app",
            app=checked.app,
            citizen_url=f"/portal/sign-in?next={here}",
            staff_url=f"/clinic/sign-in?next={here}",
            keep_query=urlencode(params),
        )
    if found.kind != "citizen":
        return _consent(request, checked, found, params)

    async def show(citizen: Citizen) -> Response:
        if not citizen.who.patient_ids:
            return _refused(request, "not-linked")
        people = await run_in_threadpool(profiles, citizen)
        return _consent(request, checked, citizen.who, params, people=people)

    return await page(request, show)


@router.post("/authorize")
async def decide(request: Request) -> Response:
    """The person's answer (the form of the consent screen, CSRF-checked)."""
    form = await request.form()
    params = _params(form)
    checked = await run_in_threadpool(_check, request, params)
    if isinstance(checked, Response):
        return checked
    found = await common.caller(request)  # the CSRF check: Forbidden without the form's token
    if found is None:
        return _refused(request, "signed-out")
    if form.get("decision") != "allow":
        return back_to_app(checked.redirect_uri, error="access_denied", state=checked.state)
    chosen = form.get("patient")
    patient = chosen if isinstance(chosen, str) and chosen else None
    engine = request.app.state.tokens.engine
    if found.kind != "citizen":
        practitioner = await run_in_threadpool(practitioner_of, engine, found.subject)
        base = deps.settings(request).fhir_base
        fhir_user = practitioner and f"{base}/Practitioner/{practitioner}"
        code = await run_in_threadpool(approve, engine, found, checked, None, fhir_user)
        return back_to_app(checked.redirect_uri, code=code, state=checked.state)

    async def agree(citizen: Citizen) -> Response:
        own = citizen.own
        fhir_user = own and f"{deps.settings(request).fhir_base}/Patient/{own}"
        who = replace(citizen.who, subject=found.subject)
        try:
            code = await run_in_threadpool(approve, engine, who, checked, patient, fhir_user)
        except ValueError:
            return _refused(request, "not-held")
        return back_to_app(checked.redirect_uri, code=code, state=checked.state)

    return await page(request, agree)


@router.get("/jwks")
async def jwks(request: Request) -> JSONResponse:
    """The public key id_tokens are signed with (``access/id_tokens.py``)."""
    keys = await run_in_threadpool(request.app.state.id_keys.jwks)
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=3600"})


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """An OAuth error answer (RFC 6749 section 5.2), what SMART client libraries read."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _basic(request: Request) -> tuple[str, str] | None:
    """``client_secret_basic``: the client id and secret from HTTP Basic, if sent."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, secret = raw.partition(":")
    return unquote_plus(user), unquote_plus(secret)


async def app_token(request: Request, form: Mapping[str, str]) -> JSONResponse:
    """``POST /auth/token`` for apps: ``authorization_code`` and ``refresh_token``."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret") or None
    basic = _basic(request)
    if basic is not None:
        client_id, secret = basic
    engine = request.app.state.tokens.engine
    try:
        app = await run_in_threadpool(authenticate_app, engine, client_id, secret)
    except Unauthorized as exc:
        return _oauth_error("invalid_client", exc.issues[0].diagnostics or "", 401)
    issuer: AppTokens = request.app.state.app_tokens
    try:
        if form.get("grant_type") == "authorization_code":
            issued = await run_in_threadpool(
                issuer.exchange_code,
                app,
                form.get("code", ""),
                form.get("redirect_uri", ""),
                form.get("code_verifier", ""),
            )
        else:
            holds = partial(_still_holds, request)
            issued = await run_in_threadpool(
                issuer.refresh, app, form.get("refresh_token", ""), holds
            )
    except InvalidGrant as exc:
        return _oauth_error("invalid_grant", str(exc))
    return JSONResponse(issued.body(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _still_holds(request: Request, who: Principal) -> bool:
    """Whether the person of a grant still holds its record (their own, or a child's while
    they are the child's confirmed guardian and the child is a minor)."""
    if who.kind != "citizen":
        return True
    engine = request.app.state.tokens.engine
    try:
        phone = normalise_phone(who.subject)
    except ValueError:
        return False
    own = linked_patient(engine, phone)
    now_held = with_wards(
        request.app.state.repository,
        replace(who, app=None, patient_ids=(own,) if own else (), subject=phone),
    )
    return bool(set(who.patient_ids) & set(now_held.patient_ids))
