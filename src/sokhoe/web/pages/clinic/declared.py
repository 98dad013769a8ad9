"""What residents declared, checked at the station (``/clinic/self-declared`` and the chart's
section), and the parents waiting for the station's check (on the child's chart).

Verifying: the list of people with items waiting, then on each chart one form with a choice per
item (confirm, correct, reject, or later) and the clinician's authenticator code, which
confirms every decision of the form; each decision is its own signed transaction
(``clinic/verification.py``). Parents: ``RelatedPerson/$confirm-guardian`` opens the child's
record to the parent's phone; declining makes the request inactive (``portal/family.py``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import confirm_guardian
from sokhoe.access.principal import Principal
from sokhoe.clinic.declarations import VERIFY_ROLES, waiting
from sokhoe.clinic.identity import confirm_identity
from sokhoe.clinic.signing import TotpConfirmation
from sokhoe.clinic.verification import Choice, decide_many
from sokhoe.errors import FhirError
from sokhoe.portal import family
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, not_allowed, page
from sokhoe.web.pages.clinic.chart import render_chart

router = APIRouter()
LATER = "later"


@router.get("/self-declared")
async def waiting_page(request: Request) -> Response:
    """Everyone with declared items waiting that the caller may see (the ward's residents for
    the station)."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        if who.role not in VERIFY_ROLES:
            return not_allowed(request, who, "Doctors and nurses verify what people declare.")
        people = await run_in_threadpool(waiting, repo)
        return common.render(
            request, "clinic/declared.html", who=who, title="Declared, waiting", people=people
        )

    return await page(request, body)


def _choices(form: object, count: int) -> list[Choice]:
    out = []
    for i in range(count):
        decision = form_text(form, f"decision-{i}") or LATER
        rtype, _, rest = form_text(form, f"item-{i}").partition("/")
        rid, _, version = rest.partition("/")
        if decision == LATER or not rtype or not rid:
            continue
        correction = form_text(form, f"correction-{i}") if decision == "correct" else None
        out.append(
            Choice(rtype, rid, int(version) if version.isdigit() else None, decision, correction)
        )
    return out


@router.post("/patients/{patient_id}/self-declared")
async def decide_page(request: Request, patient_id: str) -> Response:
    """The chart's form: each item decided and signed on its own, one code for the form."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        try:
            count = min(int(form_text(form, "count") or "0"), 200)
        except ValueError:
            count = 0
        choices = _choices(form, count)
        code = form_text(form, "code")

        def work() -> Response:
            if not choices:
                said = common.gettext(request, "Choose confirm, correct or reject for an item.")
                return render_chart(request, who, repo, patient_id, 422, verify_problem=said)
            signer = TotpConfirmation(repo.auditor.engine, who.subject, code, batch=True)
            outcomes = decide_many(repo, choices, signer)
            refused = [o for o in outcomes if o.refused is not None]
            if not refused and len(outcomes) == len(choices):
                return common.redirect(request, f"/clinic/patients/{patient_id}#self-declared")
            said = "; ".join(common.explain(request, o.refused) for o in refused if o.refused)
            done = sum(1 for o in outcomes if o.decided is not None)
            return render_chart(
                request,
                who,
                repo,
                patient_id,
                refused[0].refused.status if refused and refused[0].refused else 409,
                verify_problem=said,
                verify_done=done,
            )

        return await run_in_threadpool(work)

    return await page(request, body)


@router.post("/patients/{patient_id}/guardians/{related_person_id}")
async def guardian(request: Request, patient_id: str, related_person_id: str) -> Response:
    """Confirm (the papers were checked) or decline a parent's request."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        action = form_text(await request.form(), "action")

        def work() -> Response:
            try:
                if action == "confirm":
                    confirm_guardian(repo, related_person_id)
                elif action == "decline":
                    family.decline(repo, related_person_id)
                else:
                    said = common.gettext(request, "Choose confirm or decline.")
                    return render_chart(request, who, repo, patient_id, 400, guardian_problem=said)
            except FhirError as exc:
                said = common.explain(request, exc)
                return render_chart(
                    request, who, repo, patient_id, exc.status, guardian_problem=said
                )
            return common.redirect(request, f"/clinic/patients/{patient_id}#guardians")

        return await run_in_threadpool(work)

    return await page(request, body)


@router.post("/patients/{patient_id}/identity")
async def identity(request: Request, patient_id: str) -> Response:
    """The desk saw the ID card of a person who made their record on their phone: the typed
    number becomes the record's CCCD (``clinic/identity.py``)."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        seen = form_text(form, "version")
        try:
            await run_in_threadpool(
                confirm_identity, repo, patient_id, version=int(seen) if seen.isdigit() else None
            )
        except FhirError as exc:
            said = common.explain(request, exc)
            return render_chart(request, who, repo, patient_id, exc.status, identity_problem=said)
        return common.redirect(request, f"/clinic/patients/{patient_id}")

    return await page(request, body)
