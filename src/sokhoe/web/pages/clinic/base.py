"""What the clinic's routes share: who may use the pages, the clock, errors as pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from sokhoe.access.accounts import FACILITY_ROLES
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError
from sokhoe.web.pages import common

VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")
CLINIC_ROLES: Final = FACILITY_ROLES - {"pharmacist"}
"""Staff who work in the clinic pages: a facility's doctors, nurses, desk and head (the
pharmacy has its own pages)."""


def now(repo: GuardedRepository) -> datetime:
    return repo.clock().astimezone(VIETNAM)


Handler = Callable[[Principal, GuardedRepository], Awaitable[Response]]


async def page(request: Request, handler: Handler) -> Response:
    """Run ``handler`` for a signed-in clinic user, else the sign-in page (or why not)."""
    who = await common.caller(request)
    if who is None:
        return common.redirect(request, f"/clinic/sign-in?next={request.url.path}")
    if who.kind != "staff" or who.role not in CLINIC_ROLES or who.facility is None:
        return not_allowed(request, who, "These pages are for the staff of a facility.")
    repo = common.repository(request, who)
    # staff must always see which facility they act for: the session carries its name and
    # whether they may change it (``signin.py``), so the header costs no query
    request.state.facility_name = who.facility_name
    request.state.several_facilities = who.several_facilities
    try:
        return await handler(who, repo)
    except FhirError as exc:
        return error(request, who, exc)


def not_allowed(request: Request, who: Principal | None, message: str) -> Response:
    """A 403 page saying why (``message`` is translated)."""
    return common.render(
        request,
        "clinic/message.html",
        403,
        who=who,
        title="Not allowed",
        message=common.gettext(request, message),
    )


def error(request: Request, who: Principal | None, exc: FhirError) -> Response:
    return common.render(
        request,
        "clinic/message.html",
        exc.status,
        who=who,
        title="Could not do that",
        message=common.explain(request, exc),
    )


def form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
