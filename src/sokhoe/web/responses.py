"""FHIR JSON responses and the one place errors become OperationOutcomes over HTTP."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sokhoe.errors import FhirError, Issue, operation_outcome

FHIR_JSON = "application/fhir+json; charset=utf-8"
log = logging.getLogger("sokhoe.web")


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        return orjson.dumps(content)


def outcome_response(status: int, issues: list[Issue]) -> FhirResponse:
    return FhirResponse(operation_outcome(issues), status_code=status)


async def fhir_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)  # noqa: S101 - registered for FhirError only
    headers = {"WWW-Authenticate": 'Bearer realm="sokhoe"'} if exc.status == 401 else {}
    retry = getattr(exc, "retry_after", None)
    if exc.status == 429 and retry is not None:
        headers["Retry-After"] = str(retry)
    return FhirResponse(exc.outcome, status_code=exc.status, headers=headers)


async def validation_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    issues = [
        Issue("invalid", str(err.get("msg")), ".".join(str(p) for p in err.get("loc", ())))
        for err in exc.errors()
    ]
    return outcome_response(400, issues)


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code = {404: "not-found", 405: "not-supported", 401: "login", 403: "forbidden"}.get(
        exc.status_code, "processing"
    )
    return outcome_response(exc.status_code, [Issue(code, str(exc.detail))])


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    """Log the trace on the server; the client gets an OperationOutcome without internals."""
    log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return outcome_response(500, [Issue("exception", "Internal server error; see the server log")])
