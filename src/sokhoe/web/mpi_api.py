"""``POST /fhir/Patient/$match``; the rules are in ``sokhoe.operations.match``.

The :class:`~sokhoe.mpi.matching.Matcher` is built once per application, on first use, and
kept on ``app.state.matcher`` (``create_app`` may also set it, e.g. with tuned thresholds).
See: https://hl7.org/fhir/R4/patient-operation-match.html
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.guard import GuardedRepository
from sokhoe.mpi.matching import Matcher
from sokhoe.operations.match import run_match
from sokhoe.web.deps import json_body, plain_repository, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


def matcher(request: Request) -> Matcher:
    """The application's Matcher over its repository, created on first use."""
    found = getattr(request.app.state, "matcher", None)
    if isinstance(found, Matcher):
        return found
    made = Matcher(plain_repository(request))  # shared by all callers: never a guarded one
    request.app.state.matcher = made
    return made


@router.post("/Patient/$match", summary="Find the stored Patients that may be this person")
async def patient_match(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    if isinstance(repo, GuardedRepository):
        repo.authorise_operation("match", "Patient", ["search"])
    bundle = await run_in_threadpool(run_match, plain_repository(request), matcher(request), body)
    if isinstance(repo, GuardedRepository):
        bundle = await run_in_threadpool(_visible_only, repo, bundle)
    return FhirResponse(bundle)


def _visible_only(repo: GuardedRepository, bundle: dict[str, Any]) -> dict[str, Any]:
    """Candidates the caller may not see are left out: matching must not reveal records."""
    entries = [
        e
        for e in bundle.get("entry", [])
        if repo.decide(str(e.get("resource", {}).get("id", ""))).allowed
    ]
    return {**bundle, "entry": entries, "total": len(entries)}
