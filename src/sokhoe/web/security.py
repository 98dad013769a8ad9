"""HTTP hardening: security headers on every response, and API docs served from local files.

Hospital networks are often isolated, so nothing a page needs may come from a CDN: FastAPI's
default ``/docs`` loads Swagger UI from jsDelivr, so the app serves the copy packaged in
``swagger-ui-bundle`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
}
"""Health data must not be cached by shared proxies or framed by other sites. TLS is
terminated in front of the app (see the README), which adds Strict-Transport-Security."""


STATIC = re.compile(r"^/(?:[a-z]+/)?static/")
"""Paths of the pages' own assets (``/static/…``, ``/clinic/static/…``)."""


def harden(app: FastAPI, cors_origins: list[str]) -> None:
    """Add the security headers, the CORS allow-list and the offline ``/docs`` to ``app``."""
    if "*" in cors_origins:
        raise ValueError("SOKHOE_CORS_ORIGINS must list exact origins, not '*'")
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Prefer", "If-Match"],
        )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if STATIC.search(request.url.path):
            # scripts and styles hold no health data: keep them, revalidated by their ETag
            # (a 304 on a slow commune-station link instead of htmx again on every page)
            response.headers.setdefault("Cache-Control", "no-cache")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    app.mount("/static/swagger", StaticFiles(directory=str(swagger_ui_path)), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
