"""``/portal/claim``: a signed-in resident links their phone to their health record, or makes a
new self-declared one (the rules are ``portal/claim.py``'s).

The page shows the signed-in phone but never lets it be typed: the record is found by the
phone the SMS code proved. Whatever the outcome for someone else's record, the answer is the
same "we could not find it" page.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.ratelimit import RateLimited
from sokhoe.messages import Message
from sokhoe.portal.claim import ClaimForm, ClaimProblems, ClaimResult, claim
from sokhoe.portal.patient import ward_address
from sokhoe.web.mpi_api import matcher
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text
from sokhoe.web.pages.portal.base import Citizen, page, render

router = APIRouter()
WARD_COOKIE: Final = "sokhoe_ward"
"""The ward whose poster the resident scanned (set by the ward's landing page)."""
VIETNAM: Final = timezone(timedelta(hours=7))


def _form(data: dict[str, str]) -> ClaimForm:
    return ClaimForm(
        cccd=data.get("cccd", ""),
        day=data.get("birth-day", ""),
        month=data.get("birth-month", ""),
        year=data.get("birth-year", ""),
        name=data.get("name", ""),
        sex=data.get("sex", ""),
    )


def _ward(request: Request) -> str | None:
    code = request.cookies.get(WARD_COOKIE)
    return code if code and ward_address(code) is not None else None


def _show(
    request: Request,
    citizen: Citizen,
    data: dict[str, str],
    status: int = 200,
    problems: list[tuple[str, Message]] | None = None,
    details: bool = False,
) -> Response:
    ward = _ward(request)
    return render(
        request,
        "portal/claim_details.html" if details else "portal/claim.html",
        status,
        title="Find your health record" if not details else "Make your health book",
        phone=citizen.phone or "",
        form=data,
        problems=problems or [],
        errors=dict(reversed(problems or [])),
        ward=(ward_address(ward) or {}).get("text") if ward else None,
    )


@router.get("/claim")
async def claim_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        if citizen.own is not None:
            return common.redirect(request, "/portal")
        return _show(request, citizen, {})

    return await page(request, show)


@router.post("/claim")
async def claim_post(request: Request) -> Response:
    async def post(citizen: Citizen) -> Response:
        if citizen.own is not None:
            return common.redirect(request, "/portal")
        posted = await request.form()
        names = ("cccd", "birth-day", "birth-month", "birth-year", "name", "sex")
        data = {name: form_text(posted, name) for name in names}
        details = form_text(posted, "step") == "details"
        platform: GuardedRepository = request.app.state.repository
        address = request.client.host if request.client else "unknown"
        try:
            result: ClaimResult = await run_in_threadpool(
                claim,
                citizen.repo,
                citizen.engine,
                _form(data if details else {**data, "name": "", "sex": ""}),
                address=address,
                today=citizen.repo.clock().astimezone(VIETNAM).date(),
                index=platform,
                matcher=matcher(request),
                ward=_ward(request),
            )
        except ClaimProblems as wrong:
            return _show(request, citizen, data, 400, wrong.problems, details)
        except RateLimited:
            text = Message(
                "You have tried too many times today. Try again tomorrow, or ask the health "
                "station to help you."
            )
            return _show(request, citizen, data, 429, [("cccd", text)], details)
        if result.outcome == "details":
            data = {**data, "cccd": result.cccd, "sex": data.get("sex") or result.sex}
            return _show(request, citizen, data, 200, details=True)
        return render(
            request,
            "portal/claim_done.html",
            title="Your health book is ready",
            linked=result.outcome == "linked",
        )

    return await page(request, post)
