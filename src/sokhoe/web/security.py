"""HTTP hardening: security headers on every response, and API docs served from local files.

Hospital networks are often isolated, so nothing a page needs may come from a CDN: FastAPI's
default ``/docs`` loads Swagger UI from jsDelivr, so the app serves the copy packaged in
``swagger-ui-bundle`` instead.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
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


class SecurityHeaders:
    """:data:`SECURITY_HEADERS` on every response that does not set its own, and for the
    pages' static assets ``Cache-Control: no-cache`` (revalidated by their ETag: scripts and
    styles hold no health data, and a 304 on a slow commune-station link beats htmx again on
    every page). Plain ASGI: a Starlette ``@app.middleware("http")`` runs each request in a
    task of its own and copies the response stream, on every request the platform answers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = bool(STATIC.search(scope.get("path", "")))

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-cache"))
                    present.add(b"cache-control")
                headers += [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


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

    app.add_middleware(SecurityHeaders)

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
