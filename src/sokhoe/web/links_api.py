"""Merge, unmerge and the match review queue over HTTP; rules in ``sokhoe.mpi.links``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.mpi.links import MPI_ROLES, TASK_CODE
from sokhoe.operations.merge import run_merge, run_resolve, run_unmerge
from sokhoe.web.deps import json_body, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


@router.post("/Patient/$merge", summary="Merge one Patient record into another")
async def patient_merge(request: Request) -> FhirResponse:
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(run_merge, repository(request), body))


@router.post("/Patient/$unmerge", summary="Undo a merge exactly")
async def patient_unmerge(request: Request) -> FhirResponse:
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(run_unmerge, repository(request), body))


@router.get("/Patient/$review-queue", summary="Pairs of records waiting for a person's decision")
async def review_queue(request: Request) -> FhirResponse:
    """The pairs the caller could decide: a facility's staff see only pairs of two records
    they may both open (the queue names people across the whole platform). Both conditions
    are part of the search, so the total is what the caller may see."""
    repo = repository(request)
    repo.authorise_operation("review-queue", "Patient", ["update"], [], MPI_ROLES)
    visible = "gt1900-01-01"  # every record the caller may see (chains are confined)
    query = repo.parse_query(
        "Task",
        [
            ("code", f"{TASK_CODE}|review-match"),
            ("status", "requested"),
            ("focus:Patient._lastUpdated", visible),
            ("subject:Patient._lastUpdated", visible),
            ("_count", "200"),
        ],
    )
    page = await run_in_threadpool(repo.search, query)
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": page.total,
            "entry": [
                {"fullUrl": f"{repo.base_url}/Task/{t.id}", "resource": t.content}
                for t in page.matches
            ],
        }
    )


@router.get(
    "/Patient/{patient_id}/$access-log",
    summary="Who accessed this record, when, from which facility and why (AuditEvents)",
)
async def access_log(patient_id: str, request: Request) -> FhirResponse:
    """A citizen (or anyone who may see the record) lists the accesses to it, newest first."""
    repo = repository(request)
    count, offset = _int(request, "_count", 50), _int(request, "_getpagesoffset", 0)
    await run_in_threadpool(repo.require_patient, patient_id, "read")
    people = await run_in_threadpool(_people, repo, patient_id)
    auditor: AuditLog = request.app.state.auditor
    events, total = await run_in_threadpool(auditor.for_patient, people, min(count, 200), offset)
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "entry": [{"resource": e} for e in events],
        }
    )


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer", name)
    return int(raw)


def _people(repo: GuardedRepository, patient_id: str) -> list[str]:
    with repo.snapshot() as tx:
        return linked_patient_ids(tx, patient_id)


@router.post("/Task/{task_id}/$resolve-review", summary="Accept (merge) or reject a queued pair")
async def resolve(task_id: str, request: Request) -> FhirResponse:
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(run_resolve, repository(request), task_id, body))
