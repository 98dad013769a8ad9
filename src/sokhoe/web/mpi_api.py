"""``POST /fhir/Patient/$match``; the rules are in ``sokhoe.operations.match``.

The :class:`~sokhoe.mpi.matching.Matcher` is built once per application, on first use, and
kept on ``app.state.matcher`` (``create_app`` may also set it, e.g. with tuned thresholds).
See: https://hl7.org/fhir/R4/patient-operation-match.html
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.mpi.matching import Matcher
from sokhoe.operations.match import run_match
from sokhoe.web.deps import json_body, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


def matcher(request: Request) -> Matcher:
    """The application's Matcher over its repository, created on first use."""
    found = getattr(request.app.state, "matcher", None)
    if isinstance(found, Matcher):
        return found
    made = Matcher(repository(request))
    request.app.state.matcher = made
    return made


@router.post("/Patient/$match", summary="Find the stored Patients that may be this person")
async def patient_match(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    bundle = await run_in_threadpool(run_match, repo, matcher(request), body)
    return FhirResponse(bundle)
