"""The terminology operations over HTTP: ``$lookup``, ``$expand`` and ``$validate-code``.

GET reads the parameters from the query string, POST from a ``Parameters`` body; both answer
``application/fhir+json``, and errors are ``sokhoe.errors`` raised by the operations. The router
must be included before ``fhir_api.router``, whose ``GET /fhir/{type}/{id}`` would otherwise
read ``$lookup`` as a resource id.
See: https://hl7.org/fhir/R4/terminology-service.html
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from sokhoe.operations.terminology import (
    Params,
    expand_operation,
    lookup_operation,
    parse_parameters,
    parse_query,
    validate_code_operation,
)
from sokhoe.prescribing import catalogue_codes
from sokhoe.web.deps import json_body, platform_repository
from sokhoe.web.responses import FhirResponse

router = APIRouter(prefix="/fhir", tags=["Terminology"])


async def _params(request: Request) -> Params:
    if request.method == "POST":
        return parse_parameters(await json_body(request))
    return parse_query(request.query_params.multi_items())


async def _run(request: Request, operation: Callable[[Params], dict[str, Any]]) -> FhirResponse:
    return FhirResponse(operation(await _params(request)))


@router.get("/CodeSystem/$lookup", summary="CodeSystem $lookup")
@router.post("/CodeSystem/$lookup", summary="CodeSystem $lookup (Parameters)")
async def code_system_lookup(request: Request) -> FhirResponse:
    return await _run(request, lookup_operation)


@router.get("/ValueSet/$expand", summary="ValueSet $expand")
@router.post("/ValueSet/$expand", summary="ValueSet $expand (Parameters)")
async def value_set_expand(request: Request) -> FhirResponse:
    """The drug catalogue's value sets are read from the store through the platform's door:
    the catalogue is shared reference data, the same for every caller."""
    repo = platform_repository(request)
    return await _run(request, lambda p: expand_operation(p, lambda u: catalogue_codes(repo, u)))


@router.get("/CodeSystem/$validate-code", summary="CodeSystem $validate-code")
@router.post("/CodeSystem/$validate-code", summary="CodeSystem $validate-code (Parameters)")
async def code_system_validate(request: Request) -> FhirResponse:
    return await _run(request, lambda p: validate_code_operation(p, "CodeSystem"))


@router.get("/ValueSet/$validate-code", summary="ValueSet $validate-code")
@router.post("/ValueSet/$validate-code", summary="ValueSet $validate-code (Parameters)")
async def value_set_validate(request: Request) -> FhirResponse:
    return await _run(request, lambda p: validate_code_operation(p, "ValueSet"))
