"""``POST /fhir/Patient/$check-in`` (contract in DESIGN.md); the rules are in
``sokhoe.operations.check_in``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.operations.check_in import check_in
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
    return resource_response(
        result.patient, 201 if result.registered else 200, request, repo.base_url
    )
