"""``$validate`` at the system, type and instance level; the rules are in
``sokhoe.operations.validate``.

Validation reads no record, so any signed-in caller may ask at the system and type level.
At the instance level the resource named must be one the caller may see: the existence check
is a read through the door (refused, and audited, like any read).
See: https://hl7.org/fhir/R4/resource-operation-validate.html
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Gone, NotFound
from sokhoe.operations.validate import parse, validate
from sokhoe.web.deps import json_body, repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Validation"])


async def _body(request: Request) -> Any:
    """The JSON body, or None when there is none (a delete's validation needs none)."""
    if not await request.body():
        return None
    return await json_body(request)


def _exists(repo: GuardedRepository) -> Any:
    def exists(resource_type: str, rid: str) -> bool:
        try:
            repo.read(resource_type, rid)
        except (NotFound, Gone):
            return False
        return True

    return exists


async def _run(request: Request, resource_type: str | None, rid: str | None) -> FhirResponse:
    repo = repository(request)
    asked = parse(await _body(request), dict(request.query_params))
    outcome = await run_in_threadpool(validate, asked, resource_type, rid, _exists(repo))
    return FhirResponse(outcome)


@router.post("/$validate", summary="Validate a resource (system level)")
async def validate_any(request: Request) -> FhirResponse:
    return await _run(request, None, None)


@router.post("/{resource_type}/$validate", summary="Validate a resource of this type")
async def validate_type(resource_type: str, request: Request) -> FhirResponse:
    return await _run(request, resource_type, None)


@router.post("/{resource_type}/{rid}/$validate", summary="Validate a change to this resource")
async def validate_instance(resource_type: str, rid: str, request: Request) -> FhirResponse:
    return await _run(request, resource_type, rid)
