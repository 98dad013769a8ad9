"""Merge, unmerge and the match review queue over HTTP; rules in ``sokhoe.mpi.links``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.mpi.links import TASK_CODE
from sokhoe.operations.merge import run_merge, run_resolve, run_unmerge
from sokhoe.web.deps import json_body, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


@router.post("/Patient/$merge", summary="Merge one Patient record into another")
async def patient_merge(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(run_merge, repo, body))


@router.post("/Patient/$unmerge", summary="Undo a merge exactly")
async def patient_unmerge(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(run_unmerge, repo, body))


@router.get("/Patient/$review-queue", summary="Pairs of records waiting for a person's decision")
async def review_queue(request: Request) -> FhirResponse:
    repo = repository(request)
    query = repo.parse_query(
        "Task",
        [("code", f"{TASK_CODE}|review-match"), ("status", "requested"), ("_count", "200")],
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


@router.post("/Task/{task_id}/$resolve-review", summary="Accept (merge) or reject a queued pair")
async def resolve(task_id: str, request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(run_resolve, repo, task_id, body))
