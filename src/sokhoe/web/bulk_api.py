"""FHIR Bulk Data routes: ``$export`` kick-off (system, Patient, Group), status, files, cancel,
and the streaming NDJSON ``$import``.

Included in ``create_app`` before ``fhir_api`` (whose ``/{type}/{id}`` routes would take
``/Patient/$export``). The worker pool lives on ``app.state.bulk`` from start-up to shutdown
(this router's lifespan); job state is in the database (``interop/bulk/jobs.py``).
See: https://hl7.org/fhir/uv/bulkdata/export.html
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError, InvalidRequest, Issue, operation_outcome
from sokhoe.interop.bulk.export import NDJSON, Kind
from sokhoe.interop.bulk.jobs import BulkJobs
from sokhoe.interop.bulk.ndjson_import import NdjsonImporter, import_stream
from sokhoe.interop.bulk.service import BulkExportService
from sokhoe.operations.export import authorise_export, parameters_from_body, parse_kick_off
from sokhoe.web.deps import json_body, repository, settings
from sokhoe.web.responses import FhirResponse

NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson", "application/x-ndjson")
RETRY_AFTER = "2"
"""Seconds a client should wait between two status requests."""
CHUNK = 1 << 16


def service(app: FastAPI) -> BulkExportService:
    """The app's export service, made on first use when the app runs without its lifespan
    (a TestClient used outside ``with``)."""
    found = getattr(app.state, "bulk", None)
    if isinstance(found, BulkExportService):
        return found
    made = BulkExportService(
        app.state.repository,
        BulkJobs(app.state.tokens.engine),
        app.state.settings.var_dir / "bulk",
        policy=app.state.policy,
        auditor=app.state.auditor,
    )
    app.state.bulk = made
    return made


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the export service with the app; on shutdown fail this process's unfinished
    jobs and wait for their workers to stop."""
    exports = service(app)
    try:
        yield
    finally:
        await run_in_threadpool(exports.shutdown)


router = APIRouter(prefix="/fhir", tags=["Bulk data"], lifespan=lifespan)


def _principal(request: Request) -> Principal | None:
    return repository(request).principal


# -- kick-off ----------------------------------------------------------------------------
async def _kick_off(request: Request, kind: Kind, group_id: str | None = None) -> Response:
    prefer = request.headers.get("prefer", "")
    if "respond-async" not in [p.strip().lower() for p in prefer.split(",")]:
        raise InvalidRequest("$export is asynchronous: send the header 'Prefer: respond-async'")
    accept = request.headers.get("accept", "application/fhir+json")
    if not any(t in accept for t in ("application/fhir+json", "application/json", "*/*")):
        raise InvalidRequest("$export answers in application/fhir+json; send that in Accept")
    if request.method == "POST":
        params = parameters_from_body(await json_body(request))
    else:
        params = {}
        for name, value in request.query_params.multi_items():
            params.setdefault(name, []).append(value)
    wanted = parse_kick_off(params, kind, group_id)
    repo = repository(request)
    exports = service(request.app)
    wanted = await run_in_threadpool(authorise_export, repo, wanted)
    source = request.client.host if request.client else None
    job = await run_in_threadpool(
        exports.kick_off, wanted, str(request.url), _principal(request), source=source
    )
    status_url = f"{repo.base_url}/bulk/{job.id}"
    outcome = operation_outcome([Issue("informational", "Export accepted", severity="information")])
    return FhirResponse(outcome, status_code=202, headers={"Content-Location": status_url})


@router.get("/$export", summary="Kick off a system-level bulk export (Prefer: respond-async)")
@router.post("/$export", summary="Kick off a system-level bulk export (Parameters body)")
async def export_system(request: Request) -> Response:
    return await _kick_off(request, "system")


@router.get("/Patient/$export", summary="Kick off a Patient-level bulk export")
@router.post("/Patient/$export", summary="Kick off a Patient-level bulk export")
async def export_patients(request: Request) -> Response:
    return await _kick_off(request, "patient")


@router.get("/Group/{group_id}/$export", summary="Kick off a Group-level bulk export")
@router.post("/Group/{group_id}/$export", summary="Kick off a Group-level bulk export")
async def export_group(request: Request, group_id: str) -> Response:
    return await _kick_off(request, "group", group_id)


# -- status, files, cancel -----------------------------------------------------------------
@router.get("/bulk/{job_id}", summary="Status of a bulk export (202 running, 200 manifest)")
async def export_status(request: Request, job_id: str) -> Response:
    exports = service(request.app)
    job = await run_in_threadpool(exports.job_of, job_id, _principal(request))
    if job.status in ("queued", "running"):
        return Response(
            status_code=202,
            headers={
                "X-Progress": f"{job.status}: {job.progress} resources written",
                "Retry-After": RETRY_AFTER,
            },
        )
    if job.status == "completed" and job.manifest is not None:
        return Response(
            content=orjson.dumps(job.manifest),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    raise FhirError(500, [Issue("exception", job.error or "The export failed")])


@router.delete("/bulk/{job_id}", summary="Cancel a bulk export and delete its files")
async def export_cancel(request: Request, job_id: str) -> Response:
    exports = service(request.app)
    await run_in_threadpool(exports.cancel, job_id, _principal(request))
    outcome = operation_outcome(
        [Issue("informational", "Export cancelled", severity="information")]
    )
    return FhirResponse(outcome, status_code=202)


def _stream(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


@router.get("/bulk/{job_id}/{file_name}", summary="Download one NDJSON output file")
async def export_file(request: Request, job_id: str, file_name: str) -> Response:
    exports = service(request.app)
    path = await run_in_threadpool(exports.file_of, job_id, file_name, _principal(request))
    return StreamingResponse(_stream(path), media_type=NDJSON)


# -- import ------------------------------------------------------------------------------
@router.post("/$import", summary="Import NDJSON resources (streamed; bad lines reported)")
async def import_ndjson(request: Request) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in NDJSON_TYPES:
        raise FhirError(
            415,
            [Issue("not-supported", f"$import takes application/fhir+ndjson, not '{ctype}'")],
        )
    importer = NdjsonImporter(repository(request))
    report = await import_stream(
        importer, request.stream(), max_line=settings(request).max_request_bytes
    )
    return FhirResponse(report.to_parameters())
