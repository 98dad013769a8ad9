"""Request-scoped access to the services built once in ``create_app``."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from sokhoe.config import Settings
from sokhoe.errors import FhirError, InvalidRequest, Issue
from sokhoe.fhir.repository import FhirRepository

JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def repository(request: Request) -> FhirRepository:
    repo: FhirRepository = request.app.state.repository
    return repo


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def json_body(request: Request) -> Any:
    """The request body as JSON, refused with a clear 400/413/415 when it is not."""
    ctype = request.headers.get("content-type", "application/fhir+json").split(";")[0].strip()
    if ctype and ctype not in JSON_TYPES:
        raise FhirError(
            415,
            [
                Issue(
                    "not-supported",
                    f"Content-Type '{ctype}' is not supported; send application/fhir+json",
                )
            ],
        )
    limit = settings(request).max_request_bytes
    body = await request.body()
    if len(body) > limit:
        raise FhirError(413, [Issue("too-costly", f"Body of {len(body)} bytes exceeds {limit}")])
    if not body:
        raise InvalidRequest("The request has no body; a FHIR resource is expected")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}", code="structure") from exc
