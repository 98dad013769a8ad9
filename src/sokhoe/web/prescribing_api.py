"""Prescriptions over HTTP: ``MedicationRequest/$prescribe`` and ``$cancel-prescription``, and a
pharmacy's ``MedicationRequest/$lookup`` and ``MedicationDispense/$dispense``.

Thin: the parameters are read in ``operations/prescribe.py`` and ``operations/dispense.py``,
the rules are in ``prescribing/``; every refusal is an OperationOutcome.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.operations.dispense import bundle as dispensed_bundle
from sokhoe.operations.dispense import lookup_parameters, run_dispense, run_lookup
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


@router.post("/MedicationRequest/$lookup", summary="A pharmacy looks a prescription up by code")
async def lookup(request: Request) -> FhirResponse:
    """Answers the prescription's lines (prescribed, dispensed, remaining), validity, type,
    state and the allergies that concern it; nothing else of the record. Audited."""
    body = await json_body(request)
    repo = repository(request)
    found = await run_in_threadpool(run_lookup, repo, body, repo.clock())
    return FhirResponse(lookup_parameters(found))


@router.post("/MedicationDispense/$dispense", summary="Dispense against a prescription code")
async def dispense(request: Request) -> FhirResponse:
    """Answers 201 with the MedicationDispenses (the same again for a retry with the same
    invoice), or 409 when the prescription cannot be dispensed as asked."""
    body = await json_body(request)
    repo = repository(request)
    done = await run_in_threadpool(run_dispense, repo, body, repo.clock())
    return FhirResponse(dispensed_bundle(done, repo.base_url), status_code=201)
