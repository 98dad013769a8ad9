"""Sign-in to the clinic pages: password and, for those who enrolled (administrators must),
the authenticator code; the session lives in an HttpOnly cookie (``web/sessions.py``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.accounts import facilities_of
from sokhoe.access.accounts import sign_in as check_password
from sokhoe.access.audit import AuditLog
from sokhoe.access.passwords import password_hasher
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.clinic.stations import with_station
from sokhoe.errors import FhirError
from sokhoe.interop.claims.sources import FacilityRef, find_facility
from sokhoe.web import deps
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import CLINIC_ROLES, form_text, not_allowed
from sokhoe.web.sessions import end_session, start_session

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only our own clinic or pharmacy pages: never an open redirect to another site."""
    ours = target.startswith(("/clinic", "/pharmacy", "/auth/authorize?"))
    ours = ours and not target.startswith("//")
    return target if ours else "/clinic"


def _home(role: str | None, target: str) -> str | None:
    """Where this role works (the pharmacy's pages for a pharmacist), or None if nowhere."""
    if target.startswith("/auth/authorize?") and (role in CLINIC_ROLES or role == "pharmacist"):
        return target  # connecting an app: its consent screen
    if role == "pharmacist":
        return target if target.startswith("/pharmacy") else "/pharmacy"
    return (
        target
        if role in CLINIC_ROLES and target.startswith("/clinic")
        else ("/clinic" if role in CLINIC_ROLES else None)
    )


def _audit(request: Request, who: Principal, action: str, outcome: str) -> None:
    auditor: AuditLog = request.app.state.auditor
    auditor.record(who, action, outcome, source=request.client.host if request.client else None)


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "/clinic") -> Response:
    return common.render(
        request,
        "clinic/signin.html",
        who=None,
        next=_safe_next(next),
        title="Sign in",
        problem=None,
        username="",
    )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    username, password = form_text(form, "username"), form_text(form, "password")
    code = form_text(form, "totp") or None
    target = _safe_next(form_text(form, "next") or "/clinic")
    tokens: TokenService = request.app.state.tokens
    try:
        hasher = password_hasher(deps.settings(request))
        who = await run_in_threadpool(
            partial(check_password, hasher=hasher), tokens.engine, username, password, code
        )
    except FhirError:
        failed = Principal(kind="staff", subject=username, display=username)
        await run_in_threadpool(_audit, request, failed, "login-failed", "denied")
        return common.render(
            request,
            "clinic/signin.html",
            401,
            who=None,
            next=target,
            title="Sign in",
            username=username,
            problem=common.gettext(request, "Wrong username, password or code."),
        )
    home = _home(who.role, target)
    if home is None or who.facility is None:
        return common.render(
            request,
            "clinic/signin.html",
            403,
            who=None,
            next=target,
            title="Sign in",
            username=username,
            problem=common.gettext(request, "These pages are for the staff of a facility."),
        )
    await run_in_threadpool(_audit, request, who, "login", "success")
    places = await run_in_threadpool(facilities_of, tokens.engine, who.subject)
    who = await run_in_threadpool(_for_facility, request, who, who.facility, places)
    if len(places) > 1:  # works at several facilities: which one now?
        return _session(request, who, f"/clinic/facility?next={quote(home)}")
    return _session(request, who, home)


def _session(request: Request, who: Principal, target: str) -> Response:
    tokens: TokenService = request.app.state.tokens
    minutes = deps.settings(request).page_session_minutes
    token, lifetime = tokens.issue(who, timedelta(minutes=minutes))
    response = common.redirect(request, target)
    start_session(response, token, lifetime, common.secure(request))
    return response


def _for_facility(request: Request, who: Principal, code: str, places: list[str]) -> Principal:
    """``who`` acting for facility ``code``, with what every page header shows carried in the
    session (``clinic/base.py``): the facility's name (its code when the registry does not
    know it) and whether they work at several; a commune station's clinicians also carry the
    ward it serves (``clinic/stations.py``)."""
    repo = common.repository(request, who)
    try:
        name = find_facility(repo, code).name
    except FhirError:
        name = code
    acting = replace(
        who, facility=code, facility_name=name, several_facilities=len(places) > 1, session=None
    )
    return with_station(repo, acting)


def _places(request: Request, who: Principal) -> list[FacilityRef]:
    repo = common.repository(request, who)
    found = []
    for code in facilities_of(request.app.state.tokens.engine, who.subject):
        try:
            found.append(find_facility(repo, code))
        except FhirError:
            found.append(FacilityRef("", code, code))
    return found


@router.get("/facility")
async def facility_page(request: Request, next: str = "/clinic") -> Response:
    """Choose the facility to act for (staff who work at several)."""
    who = await common.caller(request)
    if who is None or who.kind != "staff":
        return common.redirect(request, "/clinic/sign-in")
    places = await run_in_threadpool(_places, request, who)
    return common.render(
        request,
        "clinic/facility.html",
        who=who,
        title="Choose the facility",
        places=places,
        next=_safe_next(next),
    )


@router.post("/facility")
async def choose_facility(request: Request) -> Response:
    """Act for another of one's facilities: a new session for it (the old one is revoked)."""
    who = await common.caller(request)  # checks the form's CSRF token
    if who is None or who.kind != "staff":
        return common.redirect(request, "/clinic/sign-in")
    form = await request.form()
    chosen = form_text(form, "facility")
    tokens: TokenService = request.app.state.tokens
    places = await run_in_threadpool(facilities_of, tokens.engine, who.subject)
    if chosen not in places:
        return not_allowed(request, who, "You do not work at this facility.")
    if who.session:
        await run_in_threadpool(tokens.revoke, who.session)
    now_for = await run_in_threadpool(_for_facility, request, who, chosen, places)
    await run_in_threadpool(_audit, request, now_for, "login", "success")
    return _session(request, now_for, _safe_next(form_text(form, "next") or "/clinic"))


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    who = await common.caller(request)  # checks the form's CSRF token
    tokens: TokenService = request.app.state.tokens
    if who is not None and who.session:
        await run_in_threadpool(tokens.revoke, who.session)
    response = common.redirect(request, "/clinic/sign-in")
    end_session(response, common.secure(request))
    return response
