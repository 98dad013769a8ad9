"""What the citizen portal's routes share: the signed-in citizen with their records as they
are now, the profile shown (their own or a child's), errors as pages.

A portal session lasts months (``portal_session_days``), so the records a token names may be
out of date: a record claimed or a child's link confirmed by the station since sign-in. Each
page therefore asks the access tables which records the phone holds now (the claimed record,
and the children a facility confirmed) rather than trusting the token's list; the door then
confines every read to those records, whatever id a link or a cookie names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import with_wards
from sokhoe.access.otp import linked_patient, normalise_phone
from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError
from sokhoe.portal import devices
from sokhoe.web.pages import common

PROFILE_COOKIE: Final = "sokhoe_profile"
DOMAIN: Final = "portal"


@dataclass(frozen=True)
class Citizen:
    """The signed-in citizen of one request."""

    who: Principal
    repo: GuardedRepository
    """Their door to records: reads confined to :attr:`Principal.patient_ids`, audited."""
    engine: Engine
    own: str | None
    """Their own record, once claimed (``portal/claim``); None before."""
    patient_id: str | None
    """The record the pages show: their own, or a child's they switched to."""

    @property
    def phone(self) -> str | None:
        try:
            return normalise_phone(self.who.subject)
        except ValueError:
            return None  # signed in with VNeID without a phone the provider vouched for

    @property
    def children(self) -> tuple[str, ...]:
        return tuple(p for p in self.who.patient_ids if p != self.own)


def _refreshed(request: Request, who: Principal) -> tuple[Principal, str | None]:
    """``who`` with the records the phone holds now (see the module's docstring)."""
    engine: Engine = request.app.state.tokens.engine
    platform: GuardedRepository = request.app.state.repository
    try:
        phone = normalise_phone(who.subject)
    except ValueError:  # VNeID: the provider's identity, its records fixed at sign-in
        return who, who.patient_ids[0] if who.patient_ids else None
    own = linked_patient(engine, phone)
    current = replace(who, patient_ids=(own,) if own else ())
    current = with_wards(platform, replace(current, subject=phone))
    if who.session:
        devices.seen(engine, who.session, reader=request.app.state.tokens.reader)
    return replace(current, subject=who.subject), own


Handler = Callable[[Citizen], Awaitable[Response]]


async def page(request: Request, handler: Handler) -> Response:
    """Run ``handler`` for a signed-in citizen, else the sign-in page."""
    found = await common.caller(request)
    if found is None:
        return common.redirect(request, f"/portal/sign-in?next={request.url.path}")
    if found.kind != "citizen":
        text = gettext(request, "These pages are for citizens.")
        return message(request, None, "Not allowed", text, 403)
    who, own = await run_in_threadpool(_refreshed, request, found)
    chosen = request.cookies.get(PROFILE_COOKIE)
    # a parent without a record of their own is shown their (first) child's book
    shown = chosen if chosen in who.patient_ids else (own or next(iter(who.patient_ids), None))
    repo = common.repository(request, who)
    citizen = Citizen(who, repo, request.app.state.tokens.engine, own, shown)
    request.state.citizen = citizen
    try:
        return await handler(citizen)
    except FhirError as exc:
        why = common.explain(request, exc, DOMAIN)
        return message(request, citizen, "Could not do that", why, exc.status)


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """A portal page in the citizen's language (the ``portal`` catalogue)."""
    context.setdefault("citizen", getattr(request.state, "citizen", None))
    return common.render(request, template, status, domain=DOMAIN, **context)


def gettext(request: Request, text: str, **variables: object) -> str:
    return common.gettext(request, text, DOMAIN, **variables)


def message(
    request: Request, citizen: Citizen | None, title: str, text: str, status: int = 200
) -> Response:
    """A page that says one thing (``text`` already in the citizen's language)."""
    return render(
        request, "portal/message.html", status, citizen=citizen, title=title, message=text
    )


__all__ = ["DOMAIN", "PROFILE_COOKIE", "Citizen", "gettext", "message", "page", "render"]
