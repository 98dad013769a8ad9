"""The bill of a visit (``/clinic/visits/{id}/bill``): issue it, show the VietQR code for the
amount due, record the payment. The work is ``clinic/billing.py``'s; the insurance share is
the claims' own rule table, so the bill and the insurance XML agree."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic import billing
from sokhoe.clinic.bank import bank_account
from sokhoe.clinic.drafts import own_visit
from sokhoe.clinic.facility_files import price_list
from sokhoe.clinic.invoices import view
from sokhoe.clinic.records import read
from sokhoe.clinic.vietqr import vietqr_svg
from sokhoe.errors import FhirError
from sokhoe.fhir.references import reference_id
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, page

router = APIRouter()


def _render(
    request: Request,
    who: Principal,
    repo: GuardedRepository,
    encounter_id: str,
    status: int = 200,
    problem: str | None = None,
) -> Response:
    encounter = own_visit(repo, encounter_id).encounter  # the cashier's own facility only
    invoice = read(repo, "Invoice", billing.invoice_id(encounter_id))
    shown = view(invoice) if invoice else None
    qr = payload = None
    if invoice and shown and shown.status == "issued" and shown.due > 0:
        org = read(
            repo,
            "Organization",
            reference_id(encounter.get("serviceProvider"), "Organization") or "",
        )
        account = bank_account(org)
        if account is not None:
            payload = billing.payment_payload(invoice, account)
            qr = vietqr_svg(payload, title="VietQR")
    return common.render(
        request,
        "clinic/bill.html",
        status,
        who=who,
        title="Bill",
        encounter=encounter,
        bill=shown,
        qr=qr,
        payload=payload,
        methods=billing.METHODS,
        problem=problem,
    )


@router.get("/visits/{encounter_id}/bill")
async def bill_page(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        return await run_in_threadpool(_render, request, who, repo, encounter_id)

    return await page(request, body)


@router.post("/visits/{encounter_id}/bill")
async def issue(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        def work() -> None:
            visit = own_visit(repo, encounter_id)
            prices = price_list(request.app.state.settings.facility_dir, visit.facility)
            billing.issue_bill(repo, encounter_id, prices)

        await run_in_threadpool(work)
        return common.redirect(request, f"/clinic/visits/{encounter_id}/bill")

    return await page(request, body)


@router.post("/visits/{encounter_id}/payment")
async def pay(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()

        def work() -> Response:
            try:
                amount = int(form_text(form, "amount").replace(".", "").replace(",", ""))
            except ValueError:
                return _render(request, who, repo, encounter_id, 422, "Enter the amount paid")
            try:
                billing.record_payment(
                    repo, billing.invoice_id(encounter_id), amount, form_text(form, "method")
                )
            except FhirError as exc:
                return _render(
                    request, who, repo, encounter_id, exc.status, common.explain(request, exc)
                )
            return common.redirect(request, f"/clinic/visits/{encounter_id}/bill")

        return await run_in_threadpool(work)

    return await page(request, body)
