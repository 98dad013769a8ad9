"""The unidentified emergency patient on the pages: register a temporary record and start the
emergency visit from the desk (``POST /clinic/emergency``), and later identify the person
(``/clinic/patients/{id}/identify``): find the real record as at the desk, then join the
temporary one to it (see ``clinic/emergency.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic import emergency, intake
from sokhoe.clinic.records import read
from sokhoe.errors import FhirError, InvalidRequest
from sokhoe.interop.claims.formats import name_text
from sokhoe.messages import Message
from sokhoe.mpi.links import Agent
from sokhoe.web.mpi_api import matcher
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, not_allowed, now, page

router = APIRouter()


def _age(text: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidRequest(Message("The estimated age must be a whole number of years"), "age")
    return int(text)


@router.post("/emergency")
async def register(request: Request) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        arrival = emergency.Arrival(
            sex=form_text(form, "sex") or "unknown",  # type: ignore[arg-type]  # checked
            age=_age(form_text(form, "age")),
            features=form_text(form, "features"),
        )
        _, visit = await run_in_threadpool(
            lambda: emergency.register_unidentified(
                repo,
                facility_code=str(who.facility),
                arrival=arrival,
                room_id=form_text(form, "room") or None,
                now=now(repo),
            )
        )
        return common.redirect(request, f"/clinic/visits/{visit['id']}")

    return await page(request, body)


def _render(
    request: Request,
    who: Principal,
    repo: GuardedRepository,
    patient_id: str,
    status: int = 200,
    **context: Any,
) -> Response:
    temporary = read(repo, "Patient", patient_id)
    if temporary is None or not emergency.is_temporary(temporary):
        return not_allowed(
            request, who, "Only a temporary record of an unidentified patient can be identified."
        )
    return common.render(
        request,
        "clinic/identify.html",
        status,
        who=who,
        title="Identify the patient",
        temporary=temporary,
        number=emergency.temporary_number(temporary),
        **{"found": None, "problem": None, "typed": "", **context},
    )


def _may_identify(request: Request, who: Principal) -> Response | None:
    if who.role not in emergency.IDENTIFY_ROLES:
        return not_allowed(request, who, "Only a doctor can identify an emergency patient.")
    return None


@router.get("/patients/{patient_id}/identify")
async def identify_page(request: Request, patient_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        refused = _may_identify(request, who)
        if refused is not None:
            return refused
        return await run_in_threadpool(_render, request, who, repo, patient_id)

    return await page(request, body)


@router.post("/patients/{patient_id}/identify")
async def find_person(request: Request, patient_id: str) -> Response:
    """The desk's one input again: a card, an ID, or a name with birth year."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        refused = _may_identify(request, who)
        if refused is not None:
            return refused
        typed = form_text(await request.form(), "q")
        try:
            found = await run_in_threadpool(intake.take, repo, typed, matcher(request))
        except FhirError as exc:
            problem = common.explain(request, exc)
            return await run_in_threadpool(
                lambda: _render(request, who, repo, patient_id, 422, typed=typed, problem=problem)
            )
        people = found.candidates or ([found.patient] if found.patient else [])
        people = [p for p in people if p.get("id") != patient_id]
        return await run_in_threadpool(
            lambda: _render(
                request,
                who,
                repo,
                patient_id,
                typed=typed,
                found=found,
                people=[(p, name_text(p)) for p in people],
            )
        )

    return await page(request, body)


@router.post("/patients/{patient_id}/identify/join")
async def join(request: Request, patient_id: str) -> Response:
    """Join the temporary record to the chosen person; with an emergency reason, a record not
    yet open to the facility is opened by breaking the glass (audited as such)."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        refused = _may_identify(request, who)
        if refused is not None:
            return refused
        form = await request.form()
        person = form_text(form, "person")
        glass = form_text(form, "glass")
        if glass:
            if len(glass) < 10:
                problem = common.gettext(
                    request, "Write the emergency reason (at least 10 characters)."
                )
                return await run_in_threadpool(
                    lambda: _render(request, who, repo, patient_id, 422, problem=problem)
                )
        agent = Agent(f"{who.display or who.subject} ({who.role}, {who.facility})")
        try:
            await run_in_threadpool(
                lambda: emergency.identify(
                    repo, patient_id, person, agent, form_text(form, "reason"), glass=glass or None
                )
            )
        except FhirError as exc:
            status, problem = exc.status, common.explain(request, exc)
            return await run_in_threadpool(
                lambda: _render(request, who, repo, patient_id, status, problem=problem)
            )
        return common.redirect(request, f"/clinic/patients/{person}")

    return await page(request, body)
