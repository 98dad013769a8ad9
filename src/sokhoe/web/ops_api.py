"""What operators and their tools call: health checks, metrics, and each request's trace.

- ``GET /health/live``: the process answers (a load balancer restarts it otherwise).
- ``GET /health``: ready to serve: the database answers a query within the request; 503 with
  the reason otherwise, so a front takes the worker out instead of sending it patients.
- ``GET /metrics``: Prometheus text (``sokhoe/metrics.py``), from the allowed networks only
  (``metrics_from``; loopback by default). Behind a TLS front the client address is the one
  the front forwards (uvicorn's proxy headers), and the front refuses ``/metrics`` itself
  (``deploy/nginx/sokhoe.conf``).

:class:`RequestObserver` wraps the whole app: it gives each request an id (the front's
``X-Request-Id`` when it sent a sane one), returns it, counts the request by route family and
writes one log line about it (``sokhoe/logs.py``: no path, no query, no personal data).
It is plain ASGI rather than a Starlette ``BaseHTTPMiddleware``, which would add a task and
a stream copy to every request the platform answers.
See: https://datatracker.ietf.org/doc/html/draft-inadarei-api-health-check
"""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from time import perf_counter
from typing import Any, Final

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sokhoe import __version__
from sokhoe.access.db import access_reader
from sokhoe.logs import REQUEST_ID
from sokhoe.metrics import LATENCY, REQUESTS, exposition
from sokhoe.web import deps

router = APIRouter(include_in_schema=False)
log = logging.getLogger("sokhoe.requests")

HEALTH: Final = "application/health+json"
SANE_ID: Final = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
"""A request id taken from the front as it is; anything else is replaced (it reaches logs)."""


@router.get("/health/live")
async def live() -> Response:
    return JSONResponse({"status": "pass", "version": __version__}, media_type=HEALTH)


@router.get("/health")
def ready(request: Request) -> Response:
    """Ready when the database answers; runs in the thread pool like any database call, and
    reads through the reader: a probe must not queue for (or take) SQLite's writer lock."""
    try:
        with access_reader(request.app.state.store).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure of the database makes the worker not ready
        log.warning("not ready: database unreachable (%s)", type(exc).__name__)
        body = {"status": "fail", "checks": {"database": [{"status": "fail"}]}}
        return JSONResponse(body, status_code=503, media_type=HEALTH)
    body = {"status": "pass", "version": __version__, "checks": {"database": [{"status": "pass"}]}}
    return JSONResponse(body, media_type=HEALTH)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    settings = deps.settings(request)
    host = request.client.host if request.client else ""
    if not _allowed(host, settings.metrics_from):
        return JSONResponse({"detail": "metrics are served to the monitoring network only"}, 403)
    body, content_type = exposition(access_reader(request.app.state.store), settings.workers)
    return Response(body, media_type=content_type)


def _allowed(host: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


class RequestObserver:
    """Request id, metrics and the log line of every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and SANE_ID.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        start = perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = perf_counter() - start
            route = _route(scope)
            method = scope["method"]
            REQUESTS.labels(method, route, f"{status // 100}xx").inc()
            LATENCY.labels(method, route).observe(elapsed)
            log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
            REQUEST_ID.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str:
    """The matched route's template; mounts by their prefix; ``unmatched`` otherwise."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    root = scope.get("root_path", "")
    return f"{root}/*" if root else "unmatched"


__all__ = ["RequestObserver", "router"]
