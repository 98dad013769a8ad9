"""Prescriptions over HTTP: ``MedicationRequest/$prescribe``.

Thin: the parameters are read in ``operations/prescribe.py`` and the rules are in
``prescribing/``; every refusal is an OperationOutcome.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.operations.prescribe import bundle, run_prescribe
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
    return FhirResponse(bundle(issued, repo.base_url), status_code=201)
