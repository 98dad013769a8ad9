"""``/portal/access-log``: who looked at the record shown, and reporting a concern about one
access. The words are ``portal/access_log.py``'s, the review Task ``portal/concerns.py``'s;
both read through the citizen's door, which confines them to the records the phone holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.errors import FhirError
from sokhoe.portal.access_log import access_log, access_of
from sokhoe.portal.concerns import MAX_TEXT, report_concern
from sokhoe.web.i18n import LOCAL_TIME
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text
from sokhoe.web.pages.portal.base import DOMAIN, Citizen, gettext, message, page, render

router = APIRouter()

NOT_LINKED = "Your phone is not linked to a health record yet."


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < 100_000 else 1


@router.get("/access-log")
async def log_page(request: Request) -> Response:
    async def show(citizen: Citizen) -> Response:
        if citizen.patient_id is None:
            return message(
                request, citizen, "Who looked at my record", gettext(request, NOT_LINKED)
            )
        number = _page_number(request.query_params.get("page"))
        found = await run_in_threadpool(access_log, citizen.repo, citizen.patient_id, number)
        today = datetime.now(LOCAL_TIME).date()
        return render(
            request,
            "portal/access_log.html",
            title="Who looked at my record",
            log=found,
            own=citizen.patient_id == citizen.own,
            today=today,
            yesterday=today - timedelta(days=1),
        )

    return await page(request, show)


async def _concern(
    request: Request,
    citizen: Citizen,
    seq: str,
    text: str = "",
    problem: str | None = None,
    status: int = 200,
) -> Response:
    title = "Report a concern"
    if citizen.patient_id is None or not seq.isdigit():
        return message(
            request,
            citizen,
            title,
            gettext(request, "That access is not in your record's log."),
            404,
        )
    found = await run_in_threadpool(access_of, citizen.repo, citizen.patient_id, int(seq))
    if found is None:
        text404 = gettext(request, "That access is not in your record's log.")
        return message(request, citizen, title, text404, 404)
    return render(
        request,
        "portal/concern.html",
        status,
        title=title,
        access=found,
        text=text,
        problem=problem,
        limit=MAX_TEXT,
    )


@router.get("/access-log/{seq}/concern")
async def concern_page(request: Request, seq: str) -> Response:
    async def show(citizen: Citizen) -> Response:
        return await _concern(request, citizen, seq)

    return await page(request, show)


@router.post("/access-log/{seq}/concern")
async def concern_send(request: Request, seq: str) -> Response:
    """Open the review Task for the facility; the page then shows its state."""

    async def send(citizen: Citizen) -> Response:
        form = await request.form()
        text = form_text(form, "text")
        if citizen.patient_id is None or not seq.isdigit() or len(seq) >= 19:
            return await _concern(request, citizen, seq)
        try:
            await run_in_threadpool(
                report_concern,
                citizen.repo,
                citizen.patient_id,
                int(seq),
                text,
                own=citizen.patient_id == citizen.own,
            )
        except FhirError as exc:
            if exc.status == 404:
                return await _concern(request, citizen, "x")
            problem = common.explain(request, exc, DOMAIN)
            return await _concern(request, citizen, seq, text, problem, exc.status)
        return common.redirect(request, f"/portal/access-log/{seq}/concern")

    return await page(request, send)
