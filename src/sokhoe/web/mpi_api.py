"""``POST /fhir/Patient/$match``; the rules are in ``sokhoe.operations.match``.

The :class:`~sokhoe.mpi.matching.Matcher` is built once per application, on first use, and
kept on ``app.state.matcher`` (``create_app`` may also set it, e.g. with tuned thresholds). It
searches the whole population as the platform's own processing; what a caller is shown is
only the candidates it may see.
See: https://hl7.org/fhir/R4/patient-operation-match.html
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.guard import GuardedRepository
from sokhoe.mpi.matching import Matcher
from sokhoe.operations.match import run_match
from sokhoe.web.deps import json_body, platform_repository, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


def matcher(request: Request) -> Matcher:
    """The application's Matcher over the platform's door, created on first use."""
    found = getattr(request.app.state, "matcher", None)
    if isinstance(found, Matcher):
        return found
    made = Matcher(platform_repository(request))
    request.app.state.matcher = made
    return made


@router.post("/Patient/$match", summary="Find the stored Patients that may be this person")
async def patient_match(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    repo.authorise_operation("match", "Patient", ["search"])
    bundle = await run_in_threadpool(run_match, repo, matcher(request), body)
    return FhirResponse(await run_in_threadpool(_visible_only, repo, bundle))


def _visible_only(repo: GuardedRepository, bundle: dict[str, Any]) -> dict[str, Any]:
    """Candidates the caller may not see are left out: matching must not reveal records.

    The matcher scores the whole population (its blocking searches are the platform's own
    processing); the candidates are then looked up again through the caller's confinement,
    in one query, and only those it finds are answered and audited."""
    entries = bundle.get("entry", [])
    ids = [str(e.get("resource", {}).get("id", "")) for e in entries]
    access = repo.access
    if access is not None and ids:
        with repo.snapshot() as tx:
            shown = {rid for _, rid in tx.visible([("Patient", i) for i in ids], access)}
        entries = [e for e, rid in zip(entries, ids, strict=True) if rid in shown]
    shown_ids = [str(e["resource"]["id"]) for e in entries]
    repo.record_access("operation", shown_ids, ["Patient/$match"])
    return {**bundle, "entry": entries, "total": len(entries)}
