"""What every page needs: the signed-in caller from the cookie, CSRF on forms, rendering in the
chosen language, and the caller's door to records.

Pages authenticate with the HttpOnly session cookie of ``web/sessions.py``. Their forms work
without scripts, so a form proves it comes from our own page with a hidden ``csrf`` field (the
same token the ``X-CSRF-Token`` header carries for scripts; htmx sends the header). A session
idles out after ``page_session_minutes``: any page used in its second half renews it.
"""

from __future__ import annotations

import hmac
import time
from datetime import timedelta
from typing import Any, Final

import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.errors import FhirError, Forbidden, Unauthorized
from sokhoe.web import deps, i18n
from sokhoe.web.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    csrf_token,
    start_session,
)

TEMPLATES: Final = i18n.environment()


def secure(request: Request) -> bool:
    return deps.settings(request).base_url.startswith("https://")


async def caller(request: Request) -> Principal | None:
    """The staff member signed in with the cookie; None when nobody is (or the session ended).
    :class:`Forbidden` when an unsafe request lacks the session's CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if not sent:
            form = await request.form()
            field = form.get("csrf")
            sent = field if isinstance(field, str) else ""
        if not sent or not hmac.compare_digest(sent, csrf_token(token)):
            raise Forbidden("This form is out of date or did not come from this site; reload")
    tokens: TokenService = request.app.state.tokens
    try:
        found = tokens.verify(token)
    except Unauthorized:
        return None
    request.state.principal = found
    request.state.csrf = csrf_token(token)
    _renew_if_old(request, tokens, token, found)
    return found


def _renew_if_old(request: Request, tokens: TokenService, token: str, who: Principal) -> None:
    """Past half its life, swap the session for a fresh one (the idle time-out slides).
    A citizen's portal session is long and listed among their devices: it is never swapped
    (a swapped token would escape "sign out everywhere")."""
    if who.kind == "citizen":
        return
    minutes = deps.settings(request).page_session_minutes
    expires = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
    if expires - time.time() > minutes * 30:
        return
    fresh, lifetime = tokens.issue(who, timedelta(minutes=minutes))
    tokens.revoke(token)
    request.state.renewed = (fresh, lifetime)
    request.state.csrf = csrf_token(fresh)


def repository(request: Request, who: Principal) -> GuardedRepository:
    """The caller's door to records (reads audited, as for the API)."""
    platform: GuardedRepository = request.app.state.repository
    return platform.for_caller(
        who, source=request.client.host if request.client else None, audit_reads=True
    )


def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    domain: str = "clinic",
    lang: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` in the caller's language (or ``lang``: printed legal forms are
    always Vietnamese); keeps a ``?lang=`` choice in its cookie and a renewed session in its
    cookies."""
    lang = lang or i18n.choose(request)
    html = TEMPLATES.get_template(template).render(
        lang=lang,
        domain=domain,
        csrf=getattr(request.state, "csrf", ""),
        facility_name=getattr(request.state, "facility_name", None),
        several_facilities=getattr(request.state, "several_facilities", False),
        path=request.url.path,
        query=request.url.query,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    finish(request, response)
    return response


def finish(request: Request, response: Response) -> None:
    i18n.remember(request, response, i18n.choose(request))
    renewed = getattr(request.state, "renewed", None)
    if renewed is not None:
        start_session(response, renewed[0], renewed[1], secure(request))


def redirect(request: Request, url: str) -> RedirectResponse:
    """303 to ``url`` (after a form post: the browser then GETs it)."""
    response = RedirectResponse(url, status_code=303)
    finish(request, response)
    return response


def gettext(request: Request, message: str, domain: str = "clinic", **variables: Any) -> str:
    """A message of the code (not a template) in the caller's language."""
    return i18n.gettext(i18n.choose(request), domain, message, **variables)


def explain(request: Request, exc: FhirError, domain: str = "clinic") -> str:
    """Why ``exc`` refused, in the caller's language: each issue's message through the
    catalogue, or its English ``diagnostics`` when it has none (the API answers those)."""
    lang = i18n.choose(request)
    return "; ".join(
        i18n.translate(lang, domain, i.message or i.diagnostics) for i in exc.issues
    ) or i18n.gettext(lang, domain, "Could not do that")


__all__ = [
    "TEMPLATES",
    "caller",
    "explain",
    "finish",
    "gettext",
    "redirect",
    "render",
    "repository",
    "secure",
]
