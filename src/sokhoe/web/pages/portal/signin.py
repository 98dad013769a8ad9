"""Signing in to the portal: the ward's QR lands here, the phone number gets a one-time code
by SMS, and the phone stays signed in (a long session listed among the citizen's devices).

The code's rules (a few per hour per phone and per address, five tries, five minutes) are the
API's (``access/otp.py``); these pages only carry them. VNeID sign-in, when configured, is the
API's OpenID Connect flow (``/auth/oidc/login``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.audit import AuditLog
from sokhoe.access.guardians import with_wards
from sokhoe.access.otp import request_code, verify_code
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.errors import FhirError
from sokhoe.portal import devices
from sokhoe.registry.places import ward_by_code
from sokhoe.web import deps
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text
from sokhoe.web.pages.portal.apps import connected
from sokhoe.web.pages.portal.base import Citizen, gettext, page, render
from sokhoe.web.sessions import end_session, start_session

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only the portal's own pages, or the consent screen of an app being connected
    (``/auth/authorize``, which checks the app's redirect itself): never an open redirect."""
    ours = target.startswith(("/portal", "/auth/authorize?")) and not target.startswith("//")
    return target if ours and "\\" not in target else "/portal"


def _audit(request: Request, who: Principal, action: str, outcome: str) -> None:
    auditor: AuditLog = request.app.state.auditor
    auditor.record(who, action, outcome, source=request.client.host if request.client else None)


@router.get("/w/{ward}")
async def ward_landing(request: Request, ward: str) -> Response:
    """Where the ward's poster QR leads: greets the resident in the ward's name."""
    found = ward_by_code(ward)
    if found is None:
        text = gettext(request, "No ward has the code %(code)s.", code=ward[:10])
        return render(request, "portal/message.html", 404, title="Unknown ward", message=text)
    unit, province = found
    response = render(
        request,
        "portal/ward.html",
        title="Your electronic health book",
        ward=unit,
        province=province,
        next=f"/portal/w/{unit.code}/start",
    )
    # a resident who makes their own record there lives in this ward (portal/claim.py)
    response.set_cookie(
        "sokhoe_ward",
        unit.code,
        max_age=30 * 24 * 3600,
        path="/portal",
        httponly=True,
        samesite="lax",
        secure=common.secure(request),
    )
    return response


@router.get("/w/{ward}/start")
async def ward_start(request: Request, ward: str) -> Response:
    """After the ward's greeting: signed in already, straight to the health book."""
    who = await common.caller(request)
    if who is not None and who.kind == "citizen":
        return common.redirect(request, "/portal")
    return common.redirect(request, "/portal/sign-in")


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "/portal") -> Response:
    return render(
        request,
        "portal/signin.html",
        title="Sign in",
        next=_safe_next(next),
        phone="",
        problem=None,
        vneid=deps.settings(request).oidc_issuer is not None,
    )


@router.post("/sign-in")
async def send_code(request: Request) -> Response:
    """Send the one-time code and ask for it."""
    form = await request.form()
    phone, target = form_text(form, "phone"), _safe_next(form_text(form, "next") or "/portal")
    tokens: TokenService = request.app.state.tokens
    address = request.client.host if request.client else "unknown"
    try:
        challenge = await run_in_threadpool(
            request_code, tokens.engine, request.app.state.sms, phone, address
        )
    except ValueError:
        return render(
            request,
            "portal/signin.html",
            400,
            title="Sign in",
            next=target,
            phone=phone,
            problem=gettext(
                request, "Enter a Vietnamese mobile number of 10 digits, such as 0912 345 678."
            ),
            vneid=deps.settings(request).oidc_issuer is not None,
        )
    except FhirError as exc:  # too many codes asked for
        return render(
            request,
            "portal/signin.html",
            exc.status,
            title="Sign in",
            next=target,
            phone=phone,
            problem=common.explain(request, exc, "portal"),
            vneid=deps.settings(request).oidc_issuer is not None,
        )
    return render(
        request,
        "portal/code.html",
        title="Enter the code",
        phone=phone,
        challenge=challenge,
        next=target,
        problem=None,
    )


@router.post("/verify")
async def verify(request: Request) -> Response:
    """Check the code; start the long session on this phone."""
    form = await request.form()
    phone, code = form_text(form, "phone"), form_text(form, "code").replace(" ", "")
    challenge = form_text(form, "challenge") or None
    target = _safe_next(form_text(form, "next") or "/portal")
    tokens: TokenService = request.app.state.tokens
    try:
        who = await run_in_threadpool(verify_code, tokens.engine, phone, code, None, challenge)
    except FhirError:
        failed = Principal(kind="citizen", subject=phone, display=phone)
        await run_in_threadpool(_audit, request, failed, "login-failed", "denied")
        return render(
            request,
            "portal/code.html",
            401,
            title="Enter the code",
            phone=phone,
            challenge=challenge,
            next=target,
            problem=gettext(
                request, "That code is wrong or has expired. Check the SMS or ask for a new code."
            ),
        )
    who = await run_in_threadpool(with_wards, request.app.state.repository, who)
    await run_in_threadpool(_audit, request, who, "login", "success")
    days = deps.settings(request).portal_session_days
    token, lifetime = tokens.issue(who, timedelta(days=days))
    jti = tokens.verify(token).session or ""
    expires = datetime.now(UTC) + timedelta(seconds=lifetime)
    await run_in_threadpool(
        devices.remember,
        tokens.engine,
        who.subject,
        jti,
        request.headers.get("user-agent"),
        expires,
    )
    response = common.redirect(request, target)
    start_session(response, token, lifetime, common.secure(request))
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End this phone's session."""
    who = await common.caller(request)  # checks the form's CSRF token
    tokens: TokenService = request.app.state.tokens
    if who is not None and who.kind == "citizen" and who.session:
        await run_in_threadpool(devices.end, tokens.engine, tokens, who.subject, who.session)
    response = common.redirect(request, "/portal/sign-in")
    end_session(response, common.secure(request))
    return response


@router.get("/devices")
async def devices_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        found = await run_in_threadpool(devices.active, citizen.engine, citizen.who.subject)
        apps = await run_in_threadpool(connected, citizen)
        return render(
            request,
            "portal/devices.html",
            title="Where you are signed in",
            devices=found,
            current=citizen.who.session,
            apps=apps,
        )

    return await page(request, show)


@router.post("/devices/end")
async def end_devices(request: Request) -> Response:
    """End one session (``device``) or every one (``all``), this phone's included."""

    async def end(citizen: Citizen) -> Response:
        form = await request.form()
        tokens: TokenService = request.app.state.tokens
        chosen = None if form_text(form, "all") else form_text(form, "device")
        if chosen == "":
            return common.redirect(request, "/portal/devices")
        await run_in_threadpool(devices.end, citizen.engine, tokens, citizen.who.subject, chosen)
        if chosen is None or chosen == citizen.who.session:
            response = common.redirect(request, "/portal/sign-in")
            end_session(response, common.secure(request))
            return response
        return common.redirect(request, "/portal/devices")

    return await page(request, end)
