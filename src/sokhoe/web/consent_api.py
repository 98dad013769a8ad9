"""Share codes and restrictions: a citizen lets a facility see their record, or keeps a
sensitive category for the treating facility (rules in ``access/consent.py``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.consent import create_share, redeem_share, restrict_category
from sokhoe.access.guardians import confirm_guardian
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.web.deps import json_body, repository
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
    made = await run_in_threadpool(create_share, repo, patient_id, days)
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
    consent = await run_in_threadpool(restrict_category, repo, patient_id, category, facilities)
    return FhirResponse(consent)


@router.post("/Patient/$redeem-share", summary="A facility enters the code a patient shows")
async def redeem(request: Request) -> FhirResponse:
    repo = repository(request)
    params = parameters_by_name(await json_body(request))
    code = string_parameter(params, "code") or ""
    consent = await run_in_threadpool(redeem_share, repo, code)
    return FhirResponse(consent)


@router.post(
    "/RelatedPerson/{related_person_id}/$confirm-guardian",
    summary="Staff confirm a parent or guardian: the citizen then sees the child's record",
)
async def guardian(related_person_id: str, request: Request) -> FhirResponse:
    repo = repository(request)
    return FhirResponse(await run_in_threadpool(confirm_guardian, repo, related_person_id))
