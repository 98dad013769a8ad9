"""The patient chart (``/clinic/patients/{id}``) and the ways a facility opens a record it may
not read yet: the one-time code sent to the patient's phone, or break-the-glass with a reason
(an emergency; audited as such and shown in the patient's access log)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic import chart as charts
from sokhoe.clinic.declarations import waiting_for
from sokhoe.clinic.emergency import is_temporary, merged_into
from sokhoe.clinic.identity import declared_number
from sokhoe.errors import FhirError
from sokhoe.interop.claims.sources import find_facility
from sokhoe.operations.presence import confirm_presence, send_presence_code
from sokhoe.portal import family
from sokhoe.web import i18n
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, now, page

router = APIRouter()


def render_chart(
    request: Request,
    who: Principal,
    repo: GuardedRepository,
    patient_id: str,
    status: int = 200,
    **context: Any,
) -> Response:
    """The chart, with the items the person declared that wait for a clinician's check and the
    parents waiting for the station's (``declared.py`` handles both forms)."""
    org = find_facility(repo, str(who.facility)).id
    found = charts.build(repo, patient_id, org, i18n.choose(request))
    patient = found.patient or {}
    declared = waiting_for(repo, patient_id) if found.patient is not None else []
    parents = family.pending_for(repo, patient_id) if found.patient is not None else []
    return common.render(
        request,
        "clinic/chart.html",
        status,
        who=who,
        title=found.name or "Patient",
        chart=found,
        today=now(repo).date(),
        temporary=is_temporary(patient),
        merged_into=merged_into(patient),
        declared=declared,
        parents=parents,
        declared_number=declared_number(patient),
        version=(patient.get("meta") or {}).get("versionId", ""),
        **{
            "sent": None,
            "problem": None,
            "verify_problem": None,
            "verify_done": 0,
            "guardian_problem": None,
            "identity_problem": None,
            **context,
        },
    )


@router.get("/patients/{patient_id}")
async def chart_page(request: Request, patient_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        return await run_in_threadpool(render_chart, request, who, repo, patient_id)

    return await page(request, body)


@router.post("/patients/{patient_id}/presence-code")
async def presence_code(request: Request, patient_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        try:
            sent = await run_in_threadpool(
                send_presence_code, repo, request.app.state.sms, patient_id
            )
        except FhirError as exc:
            status, problem = exc.status, common.explain(request, exc)
            return await run_in_threadpool(
                lambda: render_chart(request, who, repo, patient_id, status, problem=problem)
            )
        return await run_in_threadpool(
            lambda: render_chart(request, who, repo, patient_id, sent=sent)
        )

    return await page(request, body)


@router.post("/patients/{patient_id}/confirm-presence")
async def presence_confirm(request: Request, patient_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        code = form_text(await request.form(), "code")
        try:
            await run_in_threadpool(confirm_presence, repo, patient_id, code)
        except FhirError as exc:
            status, problem = exc.status, common.explain(request, exc)
            return await run_in_threadpool(
                lambda: render_chart(request, who, repo, patient_id, status, problem=problem)
            )
        return common.redirect(request, f"/clinic/patients/{patient_id}")

    return await page(request, body)


@router.post("/patients/{patient_id}/break-the-glass")
async def break_glass(request: Request, patient_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        reason = form_text(await request.form(), "reason")
        if len(reason) < 10:
            problem = common.gettext(
                request, "Write the emergency reason (at least 10 characters)."
            )
            return await run_in_threadpool(
                lambda: render_chart(request, who, repo, patient_id, 422, problem=problem)
            )
        glass = repo.for_caller(who, break_glass=reason, audit_reads=True)
        if glass.break_glass is None:
            return await run_in_threadpool(
                lambda: render_chart(
                    request,
                    who,
                    repo,
                    patient_id,
                    403,
                    problem=common.gettext(request, "Your role may not break the glass."),
                )
            )
        await run_in_threadpool(glass.break_glass_for, patient_id)
        return common.redirect(request, f"/clinic/patients/{patient_id}")

    return await page(request, body)
