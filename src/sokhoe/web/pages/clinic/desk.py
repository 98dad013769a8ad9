"""The front desk and today's list: ``/clinic`` (the queue by room), check-in from the one
input box, and starting a visit (payer and room)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic import emergency, intake, visits
from sokhoe.errors import FhirError
from sokhoe.interop.claims.formats import name_text
from sokhoe.web.mpi_api import matcher
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, now, page

router = APIRouter()


def _queue(repo: GuardedRepository, who: Principal) -> visits.Queue:
    return visits.queue(repo, str(who.facility), now(repo).date())


def _render_desk(
    request: Request,
    who: Principal,
    repo: GuardedRepository,
    status: int = 200,
    **context: Any,
) -> Response:
    found = _queue(repo, who)
    unidentified = emergency.waiting(repo, str(who.facility), now(repo))
    return common.render(
        request,
        "clinic/queue.html",
        status,
        who=who,
        title="Today",
        queue=found,
        today=found.day,
        unidentified=unidentified,
        **{"found": None, "problem": None, "typed": "", **context},
    )


@router.get("")
async def today(request: Request) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        return await run_in_threadpool(_render_desk, request, who, repo)

    return await page(request, body)


@router.post("/check-in")
async def check_in(request: Request) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        typed = form_text(form, "q")
        try:
            found = await run_in_threadpool(intake.take, repo, typed, matcher(request))
        except FhirError as exc:
            problem = common.explain(request, exc)
            return await run_in_threadpool(
                lambda: _render_desk(request, who, repo, 422, typed=typed, problem=problem)
            )
        return await run_in_threadpool(
            lambda: _render_desk(
                request,
                who,
                repo,
                typed=typed,
                found=found,
                found_name=name_text(found.patient or {}),
            )
        )

    return await page(request, body)


@router.post("/visits")
async def start_visit(request: Request) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        payer = form_text(form, "payer")
        room = form_text(form, "room") or None
        await run_in_threadpool(
            lambda: visits.start_visit(
                repo,
                facility_code=str(who.facility),
                patient_id=form_text(form, "patient"),
                patient_name=form_text(form, "name"),
                room_id=room,
                payer=payer,  # type: ignore[arg-type]  # checked by start_visit
                now=now(repo),
                referral=form_text(form, "referral") or None,
            )
        )
        return common.redirect(request, "/clinic")

    return await page(request, body)
