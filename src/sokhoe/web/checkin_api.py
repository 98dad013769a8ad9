"""``POST /fhir/Patient/$check-in`` (contract in DESIGN.md), and the proof of presence that
opens the history written elsewhere; the rules are in ``sokhoe.operations.check_in`` and
``sokhoe.operations.presence``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.operations.check_in import check_in
from sokhoe.operations.presence import confirm_presence, send_presence_code
from sokhoe.web.deps import json_body, repository
from sokhoe.web.fhir_api import resource_response
from sokhoe.web.mpi_api import matcher
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


@router.post(
    "/Patient/$check-in",
    summary="Find or register a person from the CCCD QR or a BHYT card number",
)
async def patient_check_in(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    result = await run_in_threadpool(check_in, repo, body, matcher(request))
    if not result.disclosed:  # someone the facility has no relationship with: see the module
        return FhirResponse(result.view, status_code=200)
    return resource_response(
        result.patient, 201 if result.registered else 200, request, repo.base_url
    )


@router.post(
    "/Patient/{patient_id}/$presence-code",
    summary="Send the patient a one-time code that proves they are at the desk",
)
async def presence_code(patient_id: str, request: Request) -> FhirResponse:
    repo = repository(request)
    sent = await run_in_threadpool(send_presence_code, repo, request.app.state.sms, patient_id)
    return FhirResponse(sent, status_code=202)


@router.post(
    "/Patient/{patient_id}/$confirm-presence",
    summary="The code the patient read out: opens their record to the facility",
)
async def presence_confirm(patient_id: str, request: Request) -> FhirResponse:
    repo = repository(request)
    params = parameters_by_name(await json_body(request))
    code = string_parameter(params, "code") or ""
    return FhirResponse(await run_in_threadpool(confirm_presence, repo, patient_id, code))
