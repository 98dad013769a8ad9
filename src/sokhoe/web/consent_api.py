"""Share codes: a citizen lets a facility see their record (rules in ``access/consent.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.consent import create_share, redeem_share, restrict_category
from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Forbidden
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.web.deps import json_body, plain_repository, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Consent"])


@router.post("/Patient/{patient_id}/$share", summary="A citizen makes a share code")
async def share(patient_id: str, request: Request) -> FhirResponse:
    """Parameters (optional): ``days`` (valueInteger, how long the facility may read)."""
    repo = repository(request)
    days = 30
    if request.headers.get("content-length", "0") != "0":
        body = await json_body(request)
        for p in parameters_by_name(body).get("days", []):
            days = int(p.get("valueInteger", days))
    if isinstance(repo, GuardedRepository):
        if repo.principal.kind != "citizen":
            raise Forbidden("Only the patient (or their guardian) makes a share code")
        await run_in_threadpool(repo.require_patient, patient_id, "consent")
    made = await run_in_threadpool(create_share, plain_repository(request), patient_id, days)
    return FhirResponse(
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "code", "valueString": made.code},
                {"name": "expires", "valueInstant": made.expires.isoformat()},
                {"name": "consent", "valueReference": {"reference": f"Consent/{made.consent_id}"}},
            ],
        }
    )


@router.post(
    "/Patient/{patient_id}/$restrict",
    summary="A citizen keeps a sensitive category for the treating facility only",
)
async def restrict(patient_id: str, request: Request) -> FhirResponse:
    """Parameters: ``category`` (valueCode PSY | HIV | SEX), ``facility`` (valueString, the
    treating facility; repeatable; none = nobody but the patient)."""
    repo = repository(request)
    params = parameters_by_name(await json_body(request))
    category = string_parameter(params, "category") or ""
    facilities = [str(p.get("valueString", "")) for p in params.get("facility", [])]
    if isinstance(repo, GuardedRepository):
        if repo.principal.kind != "citizen":
            raise Forbidden("Only the patient (or their guardian) restricts their record")
        await run_in_threadpool(repo.require_patient, patient_id, "consent")
    consent = await run_in_threadpool(
        restrict_category, plain_repository(request), patient_id, category, facilities
    )
    return FhirResponse(consent)


@router.post("/Patient/$redeem-share", summary="A facility enters the code a patient shows")
async def redeem(request: Request) -> FhirResponse:
    repo = repository(request)
    params = parameters_by_name(await json_body(request))
    code = string_parameter(params, "code") or ""
    facility = string_parameter(params, "facility")
    if isinstance(repo, GuardedRepository):
        repo.authorise_operation("redeem-share", "Patient", ["read"])
        if repo.principal.facility is None:
            raise Forbidden("A share code is redeemed for a facility; sign in as its staff")
        facility = repo.principal.facility
    consent = await run_in_threadpool(redeem_share, plain_repository(request), code, facility or "")
    return FhirResponse(consent)
