"""The FHIR R4 REST API under ``/fhir``: each route parses HTTP, calls the repository, and
renders the result; FHIR rules live in ``sokhoe.fhir``.
See: https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from sokhoe.errors import InvalidRequest, Issue, operation_outcome
from sokhoe.fhir.bundles import process_bundle, undisclosed_issue
from sokhoe.fhir.capability import capability_statement
from sokhoe.fhir.precheck import precheck_entries
from sokhoe.fhir.repository import FhirRepository, Outcome, check_type
from sokhoe.fhir.resources import format_instant, http_date, parse_instant, subset
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import SearchPage, StoredResource
from sokhoe.web.deps import json_body, platform_repository, repository, settings
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])
_OPERATION_PATH = re.compile(
    r"^/fhir/([A-Z][A-Za-z]+|\{resource_type\})/(?:\{[^}]+\}/)?\$([a-z][a-z-]*)$"
)
_SYSTEM_OPERATION = re.compile(r"^/fhir/\$([a-z][a-z-]*)$")


def served_operations(app: Any) -> dict[str, list[str]]:
    """Resource type -> the ``$operations`` the app really routes (read from its routes, so
    the CapabilityStatement cannot claim one that is not served); ``*`` for those of every
    type (``{resource_type}/$validate``), ``""`` for the system level (``/fhir/$validate``)."""
    ops: dict[str, list[str]] = {}
    for path in app.openapi().get("paths", {}):
        m = _OPERATION_PATH.match(path)
        system = _SYSTEM_OPERATION.match(path)
        if m:
            rtype = "*" if m.group(1) == "{resource_type}" else m.group(1)
            if m.group(2) not in ops.setdefault(rtype, []):
                ops[rtype].append(m.group(2))
        elif system and system.group(1) not in ops.setdefault("", []):
            ops[""].append(system.group(1))
    return ops


def _prefer(request: Request, key: str) -> str | None:
    for part in request.headers.get("prefer", "").split(","):
        k, _, v = part.strip().partition("=")
        if k.strip() == key:
            return v.strip().strip('"')
    return None


def resource_response(
    stored: StoredResource, status: int, request: Request | None = None, base_url: str = ""
) -> FhirResponse:
    headers = {
        "ETag": stored.etag,
        "Last-Modified": http_date(stored.last_updated),
    }
    if status == 201 or (request is not None and request.method in ("PUT", "POST")):
        headers["Location"] = (
            f"{base_url}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"
        )
    prefer = _prefer(request, "return") if request is not None else None
    if prefer == "minimal":
        return FhirResponse(None, status_code=status, headers=headers)
    if prefer == "OperationOutcome":
        text = f"{stored.resource_type}/{stored.id} version {stored.version_id} stored"
        body = operation_outcome([Issue("informational", text, severity="information")])
        return FhirResponse(body, status_code=status, headers=headers)
    return FhirResponse(stored.content, status_code=status, headers=headers)


def _outcome_response(outcome: Outcome, request: Request, repo: FhirRepository) -> FhirResponse:
    if not outcome.disclosed:  # a conditional create matched what the caller may not see
        body = operation_outcome([undisclosed_issue(outcome.resource.resource_type)])
        return FhirResponse(body, status_code=200)
    return resource_response(outcome.resource, outcome.status, request, repo.base_url)


def _params(request: Request) -> list[tuple[str, str]]:
    return list(request.query_params.multi_items())


def _links(
    repo: FhirRepository,
    path: str,
    params: list[tuple[str, str]],
    offset: int,
    count: int,
    total: int | None,
    page_len: int,
    more: bool | None = None,
) -> list[dict[str, str]]:
    """Paging links that repeat the query with ``_getpagesoffset``: stable because results are
    ordered by the sort keys and then by id."""
    keep = [(k, v) for k, v in params if k not in ("_getpagesoffset", "_offset", "_count")]

    def url(off: int) -> str:
        query = urlencode([*keep, ("_count", str(count)), ("_getpagesoffset", str(off))])
        return f"{repo.base_url}/{path}?{query}"

    links = [{"relation": "self", "url": url(offset)}, {"relation": "first", "url": url(0)}]
    if more is None:
        more = (offset + count < total) if total is not None else page_len == count
    if count and more:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    return links


def _searchset(
    repo: FhirRepository, q: SearchQuery, page: SearchPage, path: str, params: list[tuple[str, str]]
) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{repo.base_url}/{m.resource_type}/{m.id}",
            "resource": subset(m.content or {}, q.summary, q.elements),
            "search": {"mode": "match"},
        }
        for m in page.matches
    ]
    entries += [
        {
            "fullUrl": f"{repo.base_url}/{m.resource_type}/{m.id}",
            "resource": m.content,
            "search": {"mode": "include"},
        }
        for m in page.included
    ]
    if q.ignored:
        entries.append(
            {
                "resource": operation_outcome(
                    [
                        Issue("not-supported", f"Ignored search parameter {i}", severity="warning")
                        for i in q.ignored
                    ]
                ),
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if page.total is not None:
        bundle["total"] = page.total
    bundle["link"] = _links(
        repo, path, params, q.offset, q.count, page.total, len(page.matches), page.more
    )
    bundle["entry"] = entries
    return bundle


def _history_bundle(
    repo: FhirRepository,
    versions: list[StoredResource],
    total: int,
    path: str,
    params: list[tuple[str, str]],
    offset: int,
    count: int,
) -> dict[str, Any]:
    entries = []
    for v in versions:
        entry: dict[str, Any] = {
            "fullUrl": f"{repo.base_url}/{v.resource_type}/{v.id}",
            "request": {
                "method": v.method,
                "url": v.resource_type if v.method == "POST" else f"{v.resource_type}/{v.id}",
            },
            "response": {
                "status": "201 Created"
                if v.version_id == 1 and not v.deleted
                else ("204 No Content" if v.deleted else "200 OK"),
                "etag": v.etag,
                "lastModified": format_instant(v.last_updated),
            },
        }
        if v.content is not None:
            entry["resource"] = v.content
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": _links(repo, path, params, offset, count, total, len(versions)),
        "entry": entries,
    }


def _paging(
    repo: FhirRepository, params: list[tuple[str, str]]
) -> tuple[int, int, datetime | None]:
    values = dict(params)
    count = repo.default_count
    offset = 0
    since = None
    try:
        if "_count" in values:
            count = min(int(values["_count"]), repo.max_count)
        if "_getpagesoffset" in values:
            offset = int(values["_getpagesoffset"])
    except ValueError as exc:
        raise InvalidRequest("_count and _getpagesoffset must be integers", "_count") from exc
    if count < 0 or offset < 0:
        raise InvalidRequest("_count and _getpagesoffset must not be negative", "_count")
    if "_since" in values:
        try:
            since = parse_instant(values["_since"])
        except ValueError as exc:
            raise InvalidRequest(
                f"_since '{values['_since']}' is not an instant", "_since"
            ) from exc
    return count, offset, since


async def _search(
    request: Request,
    resource_type: str | None,
    params: list[tuple[str, str]],
    path: str,
    patient_ids: list[str] | None = None,
) -> FhirResponse:
    repo = repository(request)
    strict = _prefer(request, "handling") == "strict"
    if resource_type is not None:
        check_type(resource_type)
    q = repo.parse_query(resource_type, params, strict=strict)
    q.patient_ids = patient_ids
    page = await run_in_threadpool(repo.search, q)
    return FhirResponse(_searchset(repo, q, page, path, params))


# -- system level --------------------------------------------------------------------
@router.get("/metadata", summary="CapabilityStatement")
async def metadata(request: Request) -> FhirResponse:
    repo = platform_repository(request)  # public: SMART clients read it before signing in
    published = request.app.state.started
    operations = served_operations(request.app)
    cors = bool(settings(request).cors_origins)
    return FhirResponse(capability_statement(repo.base_url, operations, published, cors=cors))


@router.post("", summary="Process a batch or transaction Bundle")
async def bundle(request: Request) -> FhirResponse:
    repo = repository(request)
    body = await json_body(request)
    return FhirResponse(await run_in_threadpool(_process_bundle, repo, body))


def _process_bundle(repo: FhirRepository, body: Any) -> dict[str, Any]:
    """Validate and index a transaction's entries first, outside the transaction: with several
    server processes on SQLite, one then checks its bundle while another holds the write lock.
    (A batch runs each entry on its own, checked as it goes.)"""
    transaction = isinstance(body, dict) and body.get("type") == "transaction"
    return process_bundle(repo, body, precheck_entries(body) if transaction else None)


@router.get("", summary="Search across all types (_type)")
async def system_search(request: Request) -> FhirResponse:
    return await _search(request, None, _params(request), "")


@router.get("/_history", summary="History of the whole system")
async def system_history(request: Request) -> FhirResponse:
    repo = repository(request)
    params = _params(request)
    count, offset, since = _paging(repo, params)
    versions, total = await run_in_threadpool(repo.history, None, None, since, count, offset)
    return FhirResponse(_history_bundle(repo, versions, total, "_history", params, offset, count))


# -- type level ------------------------------------------------------------------------
@router.get("/{resource_type}", summary="Search")
async def search_type(resource_type: str, request: Request) -> FhirResponse:
    return await _search(request, resource_type, _params(request), resource_type)


@router.post("/{resource_type}/_search", summary="Search with form parameters")
async def search_post(resource_type: str, request: Request) -> FhirResponse:
    form = await request.form()
    params = _params(request) + [(k, str(v)) for k, v in form.multi_items()]
    return await _search(request, resource_type, params, resource_type)


@router.post("/{resource_type}", summary="Create (conditional with If-None-Exist)")
async def create(resource_type: str, request: Request) -> FhirResponse:
    repo = repository(request)
    check_type(resource_type)
    body = await json_body(request)
    outcome = await run_in_threadpool(
        lambda: repo.create(body, resource_type, if_none_exist=request.headers.get("if-none-exist"))
    )
    return _outcome_response(outcome, request, repo)


@router.put("/{resource_type}", summary="Conditional update")
async def conditional_update(resource_type: str, request: Request) -> FhirResponse:
    repo = repository(request)
    check_type(resource_type)
    body = await json_body(request)
    query = request.url.query
    outcome = await run_in_threadpool(lambda: repo.conditional_update(body, resource_type, query))
    return _outcome_response(outcome, request, repo)


@router.delete("/{resource_type}", summary="Conditional delete")
async def conditional_delete(resource_type: str, request: Request) -> Response:
    repo = repository(request)
    check_type(resource_type)
    query = request.url.query
    outcome = await run_in_threadpool(lambda: repo.conditional_delete(resource_type, query))
    return _deleted(outcome)


@router.get("/{resource_type}/_history", summary="History of a type")
async def type_history(resource_type: str, request: Request) -> FhirResponse:
    repo = repository(request)
    params = _params(request)
    count, offset, since = _paging(repo, params)
    versions, total = await run_in_threadpool(
        repo.history, resource_type, None, since, count, offset
    )
    path = f"{resource_type}/_history"
    return FhirResponse(_history_bundle(repo, versions, total, path, params, offset, count))


# -- instance level -------------------------------------------------------------------
@router.get("/Patient/{rid}/$everything", summary="Patient $everything")
async def everything(rid: str, request: Request) -> FhirResponse:
    repo = repository(request)
    params = _params(request)
    count, offset, since = _paging(repo, params)
    types = [t for v in dict(params).get("_type", "").split(",") if (t := v.strip())] or None
    if types:
        for t in types:
            check_type(t)
    resources, total = await run_in_threadpool(
        lambda: repo.everything(rid, since=since, types=types, count=count, offset=offset)
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": _links(
            repo, f"Patient/{rid}/$everything", params, offset, count, total, len(resources)
        ),
        "entry": [
            {
                "fullUrl": f"{repo.base_url}/{r.resource_type}/{r.id}",
                "resource": r.content,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
    return FhirResponse(bundle)


@router.get("/{resource_type}/{rid}", summary="Read")
async def read(resource_type: str, rid: str, request: Request) -> FhirResponse:
    repo = repository(request)
    stored = await run_in_threadpool(repo.read, resource_type, rid)
    return resource_response(stored, 200)


@router.put("/{resource_type}/{rid}", summary="Update (or create with this id)")
async def update(resource_type: str, rid: str, request: Request) -> FhirResponse:
    repo = repository(request)
    check_type(resource_type)
    body = await json_body(request)
    if_match = request.headers.get("if-match")
    outcome = await run_in_threadpool(
        lambda: repo.update(body, resource_type, rid, if_match=if_match)
    )
    return _outcome_response(outcome, request, repo)


def _deleted(outcome: Outcome | None) -> Response:
    if outcome is None:
        return Response(status_code=204)
    return Response(status_code=204, headers={"ETag": outcome.resource.etag})


@router.delete("/{resource_type}/{rid}", summary="Delete (logical; history kept)")
async def delete(resource_type: str, rid: str, request: Request) -> Response:
    repo = repository(request)
    outcome = await run_in_threadpool(repo.delete, resource_type, rid)
    return _deleted(outcome)


@router.get("/{resource_type}/{rid}/_history", summary="History of a resource")
async def instance_history(resource_type: str, rid: str, request: Request) -> FhirResponse:
    repo = repository(request)
    params = _params(request)
    count, offset, since = _paging(repo, params)
    versions, total = await run_in_threadpool(
        repo.history, resource_type, rid, since, count, offset
    )
    path = f"{resource_type}/{rid}/_history"
    return FhirResponse(_history_bundle(repo, versions, total, path, params, offset, count))


@router.get("/{resource_type}/{rid}/_history/{vid}", summary="Read a version (vread)")
async def vread(resource_type: str, rid: str, vid: str, request: Request) -> FhirResponse:
    repo = repository(request)
    stored = await run_in_threadpool(repo.vread, resource_type, rid, vid)
    return resource_response(stored, 200)


@router.get("/Patient/{rid}/{compartment_type}", summary="Search within a patient's compartment")
async def compartment_search(rid: str, compartment_type: str, request: Request) -> FhirResponse:
    params = _params(request)
    return await _search(
        request, compartment_type, params, f"Patient/{rid}/{compartment_type}", patient_ids=[rid]
    )


__all__ = ["parse_qsl", "router", "served_operations"]
