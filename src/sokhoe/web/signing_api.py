"""Signing visits over HTTP: ``Encounter/$sign`` and ``Provenance/$verify-signature``.

Thin: the parameters are read in ``operations/sign.py`` and the rules are in
``clinic/signing.py`` and ``clinic/verify.py``; every error is an OperationOutcome.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.operations.sign import run_sign, run_verify
from sokhoe.web.deps import json_body, repository, settings
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Signatures"])


@router.post("/Encounter/{encounter_id}/$sign", summary="A clinician signs a visit's record")
async def sign(encounter_id: str, request: Request) -> FhirResponse:
    """Parameters: ``method`` (``totp`` or ``pkcs12``) and, for ``totp``, ``code`` (the 6
    digits of the clinician's authenticator app). Answers the signature Provenance."""
    body = await json_body(request)
    provenance = await run_in_threadpool(
        run_sign, repository(request), encounter_id, body, settings(request)
    )
    return FhirResponse(provenance)


@router.get(
    "/Provenance/{provenance_id}/$verify-signature",
    summary="Check a signature against the versions it signed",
)
@router.post(
    "/Provenance/{provenance_id}/$verify-signature",
    summary="Check a signature against the versions it signed",
)
async def verify_signature(provenance_id: str, request: Request) -> FhirResponse:
    """Answers a Parameters: ``valid`` (boolean), a ``reason`` for each fault, ``note``s."""
    return FhirResponse(await run_in_threadpool(run_verify, repository(request), provenance_id))
