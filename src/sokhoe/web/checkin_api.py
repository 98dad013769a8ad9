"""``POST /fhir/Patient/$check-in`` (contract in DESIGN.md); the rules are in
``sokhoe.operations.check_in``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Forbidden
from sokhoe.operations.check_in import check_in
from sokhoe.web.deps import json_body, repository
from sokhoe.web.fhir_api import resource_response
from sokhoe.web.mpi_api import matcher
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


def _at_own_facility(body: Any, facility: str | None) -> Any:
    """A facility's caller checks people in at that facility only (default: it)."""
    if facility is None or not isinstance(body, dict):
        return body
    params = [p for p in body.get("parameter", []) if isinstance(p, dict)]
    given = [p.get("valueString") for p in params if p.get("name") == "facility"]
    if given and str(given[0]).strip().upper() != facility:
        raise Forbidden(f"A caller of facility {facility} cannot check in at {given[0]}")
    if not given:
        params.append({"name": "facility", "valueString": facility})
    return {**body, "parameter": params}


@router.post(
    "/Patient/$check-in",
    summary="Find or register a person from the CCCD QR or a BHYT card number",
)
async def patient_check_in(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    if isinstance(repo, GuardedRepository):
        # registering or finding a person at the caller's own desk is what creates the
        # relationship the policy checks later, so it runs on the plain repository
        repo.authorise_operation("check-in", "Patient", ["create", "update"])
        body = _at_own_facility(body, repo.principal.facility)
        repo = repo.inner
    result = await run_in_threadpool(check_in, repo, body, matcher(request))
    return resource_response(
        result.patient, 201 if result.registered else 200, request, repo.base_url
    )
