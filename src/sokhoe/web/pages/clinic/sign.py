"""Signing a closed visit (``/clinic/visits/{id}/sign``) and checking a signature
(``/clinic/visits/{id}/signature``).

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
from sokhoe.clinic.signatures import review, signatures
from sokhoe.clinic.signing import Signer, TotpConfirmation, sign_visit
from sokhoe.clinic.verify import verify_signature
from sokhoe.errors import FhirError
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
                    request, who, repo, encounter_id, status=exc.status, problem=str(exc)
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
