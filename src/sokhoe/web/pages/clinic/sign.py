"""Signing a closed visit (``/clinic/visits/{id}/sign``), checking a signature
(``/clinic/visits/{id}/signature``) and amending a signed summary (``/clinic/visits/{id}/amend``).

The sign page shows every resource the signature will cover and sends back the SHA-256 of what
it showed; the clinician confirms with the code of their authenticator app, or with their
certificate when the server holds one for them. The services are the ones ``Encounter/$sign``
and ``Provenance/$verify-signature`` use (``clinic/signing.py``, ``clinic/verify.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic.amendments import amended, section_texts, summary_of
from sokhoe.clinic.drafts import own_visit
from sokhoe.clinic.signatures import review, signatures
from sokhoe.clinic.signing import Signer, TotpConfirmation, amend, sign_visit
from sokhoe.clinic.verify import verify_signature
from sokhoe.clinic.visit import SUMMARY_SECTIONS
from sokhoe.errors import FhirError, InvalidRequest
from sokhoe.messages import Message
from sokhoe.operations.sign import pkcs12_signer
from sokhoe.web import i18n
from sokhoe.web.pages import common
from sokhoe.web.pages.clinic.base import form_text, page

router = APIRouter()


def has_certificate(request: Request, who: Principal) -> bool:
    """Whether the server holds a signing certificate for this clinician."""
    folder = request.app.state.settings.signing_p12_dir
    return folder is not None and (Path(folder) / f"{who.subject}.p12").is_file()


def _render(
    request: Request, who: Principal, repo: GuardedRepository, encounter_id: str, **context: Any
) -> Response:
    status = context.pop("status", 200)
    return common.render(
        request,
        "clinic/sign.html",
        status,
        who=who,
        title="Sign the visit",
        review=review(repo, encounter_id, i18n.choose(request)),
        certificate=has_certificate(request, who),
        **{"problem": None, **context},
    )


@router.get("/visits/{encounter_id}/sign")
async def sign_page(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        return await run_in_threadpool(_render, request, who, repo, encounter_id)

    return await page(request, body)


@router.post("/visits/{encounter_id}/sign")
async def sign(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        method, seen = form_text(form, "method"), form_text(form, "sha256")

        def work() -> Response:
            signer: Signer
            if method == "pkcs12":
                signer = pkcs12_signer(repo, request.app.state.settings)
            else:
                signer = TotpConfirmation(repo.auditor.engine, who.subject, form_text(form, "code"))
            try:
                sign_visit(repo, encounter_id, signer, expected_sha256=seen or None)
            except FhirError as exc:
                return _render(
                    request,
                    who,
                    repo,
                    encounter_id,
                    status=exc.status,
                    problem=common.explain(request, exc),
                )
            return common.redirect(request, f"/clinic/visits/{encounter_id}")

        return await run_in_threadpool(work)

    return await page(request, body)


@router.get("/visits/{encounter_id}/signature")
async def signature_page(request: Request, encounter_id: str) -> Response:
    """Every signature of the visit, each verified against the versions it names."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        def work() -> Response:
            found = signatures(repo, [encounter_id]).get(encounter_id, [])
            checked = [(p, verify_signature(repo, str(p["id"]))) for p in found]
            return common.render(
                request,
                "clinic/signature.html",
                who=who,
                title="Signatures",
                encounter_id=encounter_id,
                checked=checked,
                code=request.query_params.get("code", ""),
            )

        return await run_in_threadpool(work)

    return await page(request, body)


def _render_amend(
    request: Request,
    who: Principal,
    repo: GuardedRepository,
    encounter_id: str,
    status: int = 200,
    **context: Any,
) -> Response:
    own_visit(repo, encounter_id)  # a facility amends its own visits only
    summary = summary_of(repo, encounter_id)
    return common.render(
        request,
        "clinic/amend.html",
        status,
        who=who,
        title="Amend the visit summary",
        encounter_id=encounter_id,
        summary=summary,
        sections=SUMMARY_SECTIONS,
        **{"texts": section_texts(summary) if summary else {}, "problem": None, **context},
    )


@router.get("/visits/{encounter_id}/amend")
async def amend_page(request: Request, encounter_id: str) -> Response:
    async def body(who: Principal, repo: GuardedRepository) -> Response:
        return await run_in_threadpool(_render_amend, request, who, repo, encounter_id)

    return await page(request, body)


@router.post("/visits/{encounter_id}/amend")
async def amend_summary(request: Request, encounter_id: str) -> Response:
    """Replace the signed summary with the corrected texts and sign the visit again."""

    async def body(who: Principal, repo: GuardedRepository) -> Response:
        form = await request.form()
        texts = {key: form_text(form, key) for key, *_ in SUMMARY_SECTIONS}
        reason = form_text(form, "reason")

        def work() -> Response:
            own_visit(repo, encounter_id)
            summary = summary_of(repo, encounter_id)
            try:
                if summary is None:
                    raise InvalidRequest(Message("This visit has no summary to amend"))
                signer = TotpConfirmation(repo.auditor.engine, who.subject, form_text(form, "code"))
                amend(repo, amended(summary, texts), reason, signer)
            except FhirError as exc:
                return _render_amend(
                    request,
                    who,
                    repo,
                    encounter_id,
                    exc.status,
                    texts=texts,
                    problem=common.explain(request, exc),
                )
            return common.redirect(request, f"/clinic/visits/{encounter_id}/signature")

        return await run_in_threadpool(work)

    return await page(request, body)
