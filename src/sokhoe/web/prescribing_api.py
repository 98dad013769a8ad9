"""Prescriptions over HTTP: ``MedicationRequest/$prescribe``.

Thin: the parameters are read in ``operations/prescribe.py`` and the rules are in
``prescribing/``; every refusal is an OperationOutcome.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.operations.prescribe import bundle, run_cancel, run_prescribe
from sokhoe.web.deps import json_body, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Prescriptions"])


@router.post("/MedicationRequest/$prescribe", summary="Check and issue a prescription")
async def prescribe(request: Request) -> FhirResponse:
    """Answers 201 with the issued MedicationRequests (the code in ``groupIdentifier``) and
    their DetectedIssues, or 422 listing every problem."""
    body = await json_body(request)
    repo = repository(request)
    issued = await run_in_threadpool(run_prescribe, repo, body, repo.clock())
    resources = [*issued.requests, *issued.issues]
    return FhirResponse(bundle(resources, repo.base_url), status_code=201)


@router.post("/MedicationRequest/$cancel-prescription", summary="Cancel a prescription")
async def cancel_prescription(request: Request) -> FhirResponse:
    """``code`` and ``reason``: every line cancelled, if nothing was dispensed against it;
    answers the cancelled lines."""
    body = await json_body(request)
    repo = repository(request)
    cancelled = await run_in_threadpool(run_cancel, repo, body)
    return FhirResponse(bundle(cancelled, repo.base_url))
