"""The visit (``/clinic/visits/{id}``): one keyboard-first page with reason, vital signs,
examination, diagnoses (ICD-10 typeahead), orders with the repeated-test alert, follow-up and
the 4-part summary. What is typed is saved as a draft on the server as the clinician types;
"close the visit" writes it into the record (``clinic/visit.py``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic import drafts, orders, prescription, referrals, visits
from sokhoe.clinic import visit as closing
from sokhoe.clinic.billing import invoice_id
from sokhoe.clinic.facility_files import price_list
from sokhoe.clinic.provenance import read_signature
from sokhoe.clinic.records import find, read
from sokhoe.clinic.signatures import describe, signatures
from sokhoe.clinic.vitals import VITALS
from sokhoe.interop.claims.catalogue import Catalogue
from sokhoe.interop.claims.sources import find_facility
from sokhoe.prescribing import catalogue_codes
from sokhoe.prescribing.catalogue import VALUE_SET_BASE
from sokhoe.registry.terminology import expand
from sokhoe.web import i18n
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, now, page

router = APIRouter()
SUMMARY_KEYS = [key for key, *_ in closing.SUMMARY_SECTIONS]


def _engine(request: Request) -> Engine:
    return access_engine(request.app.state.store)


def _prices(request: Request, facility: str) -> Catalogue:
    """The facility's own price list (its services are what it can order)."""
    return price_list(request.app.state.settings.facility_dir, facility)


def _author(who: Principal) -> dict[str, Any]:
    return {"display": who.display, "identifier": {"value": who.subject}}


def draft_from(form: Any) -> dict[str, Any]:
    """The draft as the form holds it (every field optional until the visit is closed)."""
    return {
        "reason": form_text(form, "reason"),
        "vitals": {v.key: form_text(form, v.key) for v in VITALS},
        "confirmed": form_text(form, "confirmed") == "yes",
        "notes": form_text(form, "notes"),
        "diagnoses": [c for c in (form_text(form, f"dx{n}") for n in range(6)) if c],
        "follow_up": form_text(form, "follow_up"),
        "refer_to": form_text(form, "refer_to"),
        "refer_reason": form_text(form, "refer_reason"),
        "summary": {k: form_text(form, k) for k in SUMMARY_KEYS},
        "rx": [
            {f: form_text(form, f"rx{n}-{f}") for f in prescription.FIELDS}
            for n in range(prescription.LINES)
        ],
        "rx_weight": form_text(form, "rx_weight"),
        "rx_long": form_text(form, "rx_long") == "yes",
    }


def _render(
    request: Request,
    who: Principal,
    repo: GuardedRepository,
    visit: drafts.Visit,
    status: int = 200,
    **context: Any,
) -> Response:
    draft = context.pop("draft", None) or drafts.load(_engine(request), visit)
    return common.render(
        request,
        "clinic/visit.html",
        status,
        who=who,
        title="Visit",
        visit=visit,
        draft=draft,
        vitals=VITALS,
        services=orders.services(_prices(request, visit.facility)),
        placed=orders.of_visit(repo, visit),
        destinations=referrals.destinations(repo, visit.facility),
        summary_sections=closing.SUMMARY_SECTIONS,
        prescriptions=prescription.of_visit(repo, visit),
        rx_lines=prescription.LINES,
        **{"problems": [], "alert": None, "refusal": None, **context},
    )


def _closed(
    request: Request, who: Principal, repo: GuardedRepository, visit: drafts.Visit
) -> Response:
    """A closed visit: what was written, its signatures, and what comes next (sign, print,
    bill)."""
    signed = signatures(repo, [visit.id]).get(visit.id, [])
    written = [
        *find(repo, "Condition", [("encounter", f"Encounter/{visit.id}")], 20),
        *find(repo, "Observation", [("encounter", f"Encounter/{visit.id}")], 50),
    ]
    sent = find(repo, "ServiceRequest", [("encounter", f"Encounter/{visit.id}")], 50)
    follow = find(repo, "Appointment", [("supporting-info", f"Encounter/{visit.id}")], 5)
    return common.render(
        request,
        "clinic/closed.html",
        who=who,
        title="Visit",
        visit=visit,
        signed=[read_signature(p) for p in signed],
        lines=[describe(r, i18n.choose(request)) for r in written],
        orders=[describe(r, i18n.choose(request)) for r in sent if not referrals.is_referral(r)],
        referral=next((r for r in sent if referrals.is_referral(r)), None),
        follow_up=follow[0] if follow else None,
        bill=read(repo, "Invoice", invoice_id(visit.id)),
        prescriptions=prescription.of_visit(repo, visit),
    )


@router.get("/visits/{encounter_id}")
async def visit_page(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        def work() -> Response:
            visit = drafts.own_visit(repo, encounter_id)
            if visit.encounter.get("status") == "finished":
                return _closed(request, who, repo, visit)
            if visit.encounter.get("status") in ("arrived", "planned"):
                started = visits.set_status(repo, encounter_id, "in-progress", now(repo))
                visit = replace(visit, encounter=started)
            return _render(request, who, repo, visit)

        return await run_in_threadpool(work)

    return await page(request, body)


@router.post("/visits/{encounter_id}/draft")
async def save_draft(request: Request, encounter_id: str) -> Response:
    """Autosave (htmx, as the clinician types) and the form's own "save" button."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        draft = draft_from(await request.form())
        moment = now(repo)

        def work() -> None:
            visit = drafts.own_visit(repo, encounter_id)
            drafts.save(_engine(request), visit, who.subject, draft, moment)

        await run_in_threadpool(work)
        if request.headers.get("hx-request"):
            return common.render(request, "clinic/saved.html", who=who, when=moment)
        return common.redirect(request, f"/clinic/visits/{encounter_id}")

    return await page(request, body)


@router.get("/icd10")
async def icd10(request: Request, q: str = "", slot: int = 0) -> Response:
    """The diagnosis typeahead's choices (a fragment)."""
    q = q or request.query_params.get(f"dx{slot}", "")

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        choices = closing.diagnosis_choices(q)
        return common.render(request, "clinic/icd10.html", who=who, choices=choices, slot=slot, q=q)

    return await page(request, body)


@router.get("/drugs")
async def drugs(request: Request, slot: int = 0) -> Response:
    """The medicine typeahead's choices (a fragment): the drug catalogue, accent-insensitive."""
    q = request.query_params.get(f"rx{slot}-drug", "")

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        def work() -> Response:
            rows = catalogue_codes(repo, VALUE_SET_BASE) or ()
            found = expand(VALUE_SET_BASE, q, 0, 12, codes=rows).contains if len(q) > 1 else ()
            return common.render(
                request, "clinic/drugs.html", who=who, choices=found, slot=slot, q=q
            )

        return await run_in_threadpool(work)

    return await page(request, body)


@router.post("/visits/{encounter_id}/prescribe")
async def prescribe(request: Request, encounter_id: str) -> Response:
    """Issue the prescription typed in the visit; a refusal shows why, line by line."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        draft = draft_from(await request.form())

        def work() -> Response:
            visit = drafts.own_visit(repo, encounter_id)
            engine = _engine(request)
            drafts.save(engine, visit, who.subject, draft, now(repo))
            done = prescription.issue(
                repo,
                visit,
                draft["rx"],
                now(repo),
                weight=draft["rx_weight"],
                long_term=draft["rx_long"],
            )
            if isinstance(done, prescription.Refusal):
                return _render(request, who, repo, visit, 422, draft=draft, refusal=done)
            draft["rx"], draft["rx_weight"], draft["rx_long"] = [], "", False
            drafts.save(engine, visit, who.subject, draft, now(repo))
            return common.redirect(request, f"/clinic/visits/{encounter_id}#prescription")

        return await run_in_threadpool(work)

    return await page(request, body)


@router.post("/visits/{encounter_id}/orders")
async def order(request: Request, encounter_id: str) -> Response:
    """Place an order; the first post of a test done in the last 30 days answers the alert
    instead, and the order is placed when the doctor confirms it with a reason."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        draft = draft_from(form)

        def work() -> Response:
            visit = drafts.own_visit(repo, encounter_id)
            drafts.save(_engine(request), visit, who.subject, draft, now(repo))
            chosen = orders.service(_prices(request, visit.facility), form_text(form, "service"))
            reason = form_text(form, "repeat_reason")
            found = orders.earlier(repo, visit.patient_id, chosen, now(repo))
            if found and not reason:
                return _render(
                    request,
                    who,
                    repo,
                    visit,
                    draft=draft,
                    alert={"service": chosen, "earlier": found},
                )
            orders.place(repo, visit, chosen, now(repo), _author(who), reason or None)
            return common.redirect(request, f"/clinic/visits/{encounter_id}#orders")

        return await run_in_threadpool(work)

    return await page(request, body)


@router.post("/visits/{encounter_id}/close")
async def close(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        draft = draft_from(await request.form())

        def work() -> Response:
            visit = drafts.own_visit(repo, encounter_id)
            engine = _engine(request)
            drafts.save(engine, visit, who.subject, draft, now(repo))
            checked = closing.check(draft)
            if checked.problems:
                return _render(
                    request, who, repo, visit, 422, draft=draft, problems=checked.problems
                )
            referral = None
            if draft["refer_to"]:
                here = find_facility(repo, visit.facility)
                referral = (here, find_facility(repo, draft["refer_to"]))
            closing.close(repo, visit, draft, checked, now(repo), _author(who), referral)
            drafts.discard(engine, visit.facility, encounter_id)
            return common.redirect(request, f"/clinic/visits/{encounter_id}/sign")

        return await run_in_threadpool(work)

    return await page(request, body)
