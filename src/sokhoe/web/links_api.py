"""Merge, unmerge and the match review queue over HTTP; rules in ``sokhoe.mpi.links``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.policy import is_platform
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.links import TASK_CODE
from sokhoe.operations.merge import run_merge, run_resolve, run_unmerge
from sokhoe.store.ports import StoredResource
from sokhoe.web.deps import json_body, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Master patient index"])


MPI_ROLES = frozenset({"system-admin", "facility-admin", "doctor"})
"""Staff who may merge, unmerge and decide reviews (connected systems need platform scope)."""


def _plain(repo: FhirRepository, name: str, patients: list[str]) -> FhirRepository:
    if isinstance(repo, GuardedRepository):
        repo.authorise_operation(name, "Patient", ["update"], patients, MPI_ROLES)
        return repo.inner
    return repo


def _references(body: Any) -> list[str]:
    out = []
    for p in body.get("parameter", []) if isinstance(body, dict) else []:
        ref = (p.get("valueReference") or {}).get("reference") or p.get("valueString") or ""
        if isinstance(ref, str) and ref.startswith("Patient/"):
            out.append(ref.split("/", 1)[1])
    return out


@router.post("/Patient/$merge", summary="Merge one Patient record into another")
async def patient_merge(request: Request) -> FhirResponse:
    body = await json_body(request)
    repo = await run_in_threadpool(_plain, repository(request), "merge", _references(body))
    return FhirResponse(await run_in_threadpool(run_merge, repo, body))


@router.post("/Patient/$unmerge", summary="Undo a merge exactly")
async def patient_unmerge(request: Request) -> FhirResponse:
    body = await json_body(request)
    repo = await run_in_threadpool(_plain, repository(request), "unmerge", _references(body))
    return FhirResponse(await run_in_threadpool(run_unmerge, repo, body))


@router.get("/Patient/$review-queue", summary="Pairs of records waiting for a person's decision")
async def review_queue(request: Request) -> FhirResponse:
    """The pairs the caller could decide: a facility's staff see only pairs of two records
    they may both open (the queue names people across the whole platform)."""
    guarded = repository(request)
    repo = await run_in_threadpool(_plain, guarded, "review-queue", [])
    query = repo.parse_query(
        "Task",
        [("code", f"{TASK_CODE}|review-match"), ("status", "requested"), ("_count", "200")],
    )
    page = await run_in_threadpool(repo.search, query)
    tasks = page.matches
    if isinstance(guarded, GuardedRepository) and not is_platform(guarded.principal):
        tasks = await run_in_threadpool(_decidable, guarded, tasks)
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": page.total if len(tasks) == len(page.matches) else len(tasks),
            "entry": [
                {"fullUrl": f"{repo.base_url}/Task/{t.id}", "resource": t.content}
                for t in tasks
            ],
        }
    )


def _decidable(guarded: GuardedRepository, tasks: list[StoredResource]) -> list[StoredResource]:
    out = []
    for task in tasks:
        content = task.content or {}
        refs = [(content.get(k) or {}).get("reference", "") for k in ("focus", "for")]
        ids = [r.split("/", 1)[1] for r in refs if r.startswith("Patient/")]
        if len(ids) == 2 and all(guarded.decide(pid).allowed for pid in ids):
            out.append(task)
    return out


@router.get(
    "/Patient/{patient_id}/$access-log",
    summary="Who accessed this record, when, from which facility and why (AuditEvents)",
)
async def access_log(patient_id: str, request: Request) -> FhirResponse:
    """A citizen (or anyone who may see the record) lists the accesses to it, newest first."""
    repo = repository(request)
    count, offset = _int(request, "_count", 50), _int(request, "_getpagesoffset", 0)
    if isinstance(repo, GuardedRepository):
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


def _people(repo: FhirRepository, patient_id: str) -> list[str]:
    with repo.store.begin() as tx:
        return linked_patient_ids(tx, patient_id)


@router.post("/Task/{task_id}/$resolve-review", summary="Accept (merge) or reject a queued pair")
async def resolve(task_id: str, request: Request) -> FhirResponse:
    body = await json_body(request)
    repo = await run_in_threadpool(_plain, repository(request), "resolve-review", [])
    return FhirResponse(await run_in_threadpool(run_resolve, repo, task_id, body))
