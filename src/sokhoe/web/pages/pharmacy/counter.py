"""The pharmacy counter (``/pharmacy``): the code is scanned (a USB scanner types it and Enter)
or typed, the prescription opens with what remains of each line and the allergies that matter
for it, and the pharmacist hands over all or part, with lot, expiry and a substitution's reason.

Every look-up and every sale goes through the same services as ``MedicationRequest/$lookup``
and ``MedicationDispense/$dispense`` (``prescribing/lookup.py``, ``prescribing/dispense.py``):
the code opens that one prescription for the request, audited in the patient's access log, and
nothing else of the record. The sale's answer is the page of labels to print.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError, InvalidRequest
from sokhoe.prescribing.code import KIND_NAMES, normalise
from sokhoe.prescribing.dispense import Handed, Substitution, dispense
from sokhoe.prescribing.dispensing_state import STATE_NAMES
from sokhoe.prescribing.lookup import Prescription, look_up
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import VIETNAM, form_text, not_allowed

router = APIRouter()
PHARMACY_ROLES: Final = frozenset({"pharmacist"})


async def page(request: Request, handler: Any) -> Response:
    """Run ``handler`` for a signed-in pharmacist, else the sign-in page (or why not)."""
    who = await common.caller(request)
    if who is None:
        return common.redirect(request, f"/clinic/sign-in?next={request.url.path}")
    if who.kind != "staff" or who.role not in PHARMACY_ROLES or who.facility is None:
        return not_allowed(request, who, "These pages are for pharmacists.")
    request.state.facility_name = who.facility_name
    repo = common.repository(request, who)
    try:
        response: Response = await handler(who, repo)
        return response
    except FhirError as exc:
        return common.render(
            request,
            "pharmacy/counter.html",
            exc.status,
            who=who,
            title="Pharmacy",
            found=None,
            typed="",
            sold=None,
            problem=common.explain(request, exc),
        )


def _now(repo: GuardedRepository) -> datetime:
    return repo.clock().astimezone(VIETNAM)


def _render(
    request: Request,
    who: Principal,
    status: int = 200,
    **context: Any,
) -> Response:
    return common.render(
        request,
        "pharmacy/counter.html",
        status,
        who=who,
        title="Pharmacy",
        kind_names=KIND_NAMES,
        state_names=STATE_NAMES,
        shown=shown,
        holder_text=holder_text,
        **{"found": None, "typed": "", "problem": None, "sold": None, **context},
    )


@router.get("")
async def counter(request: Request, code: str = "") -> Response:
    """The scan box; with ``code``, the prescription it names."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        if not code.strip():
            return _render(request, who)
        found = await run_in_threadpool(look_up, repo, code, _now(repo))
        return _render(
            request, who, found=found, typed=found.code, invoice=_invoice_number(_now(repo))
        )

    return await page(request, body)


def _invoice_number(now: datetime) -> str:
    """A suggestion the pharmacist may replace by their sales software's number: the time and
    a random tail, so two sales in the same second never share one (the same number again
    means "the same sale", which ``$dispense`` answers without writing)."""
    return f"HD{now:%y%m%d%H%M%S}-{secrets.token_hex(2)}"


def _decimal(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise InvalidRequest(f"{where}: the quantity must be a number", where) from None
    return value


def _handed(form: Any, found: Prescription) -> list[Handed]:
    """What the form hands over, line by line (its fields are named by the line's id, so the
    order the page showed them in does not matter)."""
    handed = []
    for n, line in enumerate(found.lines):
        typed = form_text(form, f"q-{line.id}")
        if not typed or typed == "0":
            continue
        expiry = form_text(form, f"expiry-{line.id}")
        reason = form_text(form, f"sub-{line.id}")
        handed.append(
            Handed(
                index=n,
                request_id=line.id,
                quantity=_decimal(typed, f"line {n + 1}"),
                unit=line.unit or None,
                lot=form_text(form, f"lot-{line.id}") or None,
                expiry=date.fromisoformat(expiry) if expiry else None,
                substitution=Substitution(reason) if reason else None,
            )
        )
    return handed


def shown(found: Prescription) -> list[Any]:
    """The lines in the order a pharmacist reads them: by medicine name."""
    return sorted(
        found.lines,
        key=lambda line: str((line.request.get("medicationCodeableConcept") or {}).get("text")),
    )


@router.post("/dispense")
async def sell(request: Request) -> Response:
    """Hand over what the form says; the labels on success, the reasons on refusal."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        code = normalise(form_text(form, "code"))
        invoice = form_text(form, "invoice")

        def work() -> Response:
            found = look_up(repo, code, _now(repo))
            try:
                done = dispense(
                    repo, code=code, invoice=invoice, handed=_handed(form, found), now=_now(repo)
                )
            except FhirError as exc:
                return _render(
                    request,
                    who,
                    exc.status,
                    found=look_up(repo, code, _now(repo)),
                    typed=code,
                    invoice=invoice,
                    problem=common.explain(request, exc),
                )
            return _render(
                request,
                who,
                found=look_up(repo, code, _now(repo)),
                typed=code,
                invoice=_invoice_number(_now(repo)),
                sold={"invoice": invoice, "dispenses": done.dispenses, "state": done.state},
                labels=_labels(found, done.dispenses),
                when=_now(repo),
            )

        return await run_in_threadpool(work)

    return await page(request, body)


def holder_text(found: Prescription) -> str:
    """Whose medicine it is, as Vietnamese pharmacy labels say it: "Nguyễn Văn An (1985)"."""
    if found.holder is None:
        return ""
    year = f" ({found.holder.birth_year})" if found.holder.birth_year else ""
    return f"{found.holder.name}{year}"


def _labels(found: Prescription, dispenses: list[dict[str, Any]]) -> list[dict[str, str]]:
    """What each label says: whose medicine (name and year of birth), the medicine handed
    over, how much, how to take it. Only dispenses of ``found``'s own lines make a label: the
    name printed is the one the presented code opened, never another prescription's."""
    by_line = {line.reference: line for line in found.lines}
    out = []
    for d in dispenses:
        ref = str(((d.get("authorizingPrescription") or [{}])[0]).get("reference", ""))
        line = by_line.get(ref)
        if line is None:
            continue
        quantity = d.get("quantity") or {}
        out.append(
            {
                "patient": holder_text(found),
                "name": str((d.get("medicationCodeableConcept") or {}).get("text", "")),
                "quantity": f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip(),
                "how": str(((line.request.get("dosageInstruction") or [{}])[0]).get("text", "")),
            }
        )
    return out
