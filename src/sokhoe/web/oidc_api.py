"""``/auth/oidc``: citizen sign-in through an external OpenID Connect provider (VNeID-like).

``GET /auth/oidc/login`` sends the browser to the provider with a fresh ``state``, ``nonce``
and PKCE challenge, kept in a signed, HttpOnly, SameSite=Lax cookie scoped to the callback;
``GET /auth/oidc/callback`` verifies the provider's answer and issues our own short-lived
access token, as JSON for an API caller (``Accept: application/json``) or, for a browser, as
a small page and the HttpOnly session cookie of ``web/sessions.py``. Every outcome is audited
as a sign-in (``login``) or a failed one (``login-failed``). The routes exist only when
``oidc_issuer`` is configured (see ``create_app``).
See: https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.oidc import (
    FLOW_COOKIE,
    FLOW_LIFETIME,
    FlowState,
    Identity,
    OidcConfig,
    RelyingParty,
    open_flow,
    seal_flow,
    subject_of,
)
from sokhoe.access.oidc_citizen import citizen_for
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.errors import FhirError
from sokhoe.web.responses import FhirResponse
from sokhoe.web.sessions import start_session

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


def router_for(settings: Settings) -> APIRouter:
    """The routes for the provider ``settings`` name; ValueError at start-up when the
    configuration is incomplete or unsafe (a non-https issuer off loopback)."""
    config = OidcConfig.from_settings(settings)
    party = RelyingParty(config)
    cookie_path = urlsplit(config.redirect_uri).path or "/"
    secure = config.redirect_uri.startswith("https:")
    router = APIRouter(prefix="/auth/oidc", tags=["Sign-in"])

    @router.get("/login", summary="Sign in with the national identity provider")
    async def login(request: Request) -> Response:
        tokens: TokenService = request.app.state.tokens
        flow = FlowState.new()
        url = await run_in_threadpool(party.authorization_url, flow)
        cookie = await run_in_threadpool(seal_flow, tokens, flow)
        response = RedirectResponse(url, status_code=302, headers=_NO_STORE)
        response.set_cookie(
            FLOW_COOKIE,
            cookie,
            max_age=int(FLOW_LIFETIME.total_seconds()),
            path=cookie_path,
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get("/callback", summary="Where the identity provider sends the citizen back")
    async def callback(request: Request) -> Response:
        tokens: TokenService = request.app.state.tokens
        identity: Identity | None = None
        try:
            flow = await run_in_threadpool(open_flow, tokens, request.cookies.get(FLOW_COOKIE))
            identity = await run_in_threadpool(party.complete, flow, dict(request.query_params))
            repo: GuardedRepository = request.app.state.repository
            principal = await run_in_threadpool(citizen_for, repo, config, identity)
        except FhirError as exc:
            who = subject_of(config, identity.subject if identity else None)
            failed = Principal(kind="citizen", subject=who, display=who)
            outcome = "error" if exc.status >= 500 else "denied"
            await run_in_threadpool(_audit, request, failed, "login-failed", outcome)
            response = _error(request, exc)
        else:
            token, expires_in = await run_in_threadpool(tokens.issue, principal)
            await run_in_threadpool(_audit, request, principal, "login", "success")
            response = _signed_in(request, principal, token, expires_in, secure)
        response.delete_cookie(FLOW_COOKIE, path=cookie_path, secure=secure, httponly=True)
        return response

    return router


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _audit(request: Request, principal: Principal, action: str, outcome: str) -> None:
    auditor: AuditLog = request.app.state.auditor
    auditor.record(
        principal, action, outcome, source=request.client.host if request.client else None
    )


def _signed_in(
    request: Request, principal: Principal, token: str, expires_in: int, secure: bool
) -> Response:
    """The token as JSON for an API caller; for a browser, a page and a cookie session (the
    token in an HttpOnly cookie, out of reach of page scripts, as our own sign-in pages do)."""
    patient = principal.patient_ids[0]
    if _wants_json(request):
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "patient": patient,
            "scope": " ".join(sorted(principal.scopes)),
        }
        return JSONResponse(body, headers=_NO_STORE)
    html = _page(
        "Đã đăng nhập — signed in",
        f"<p>Xin chào <strong>{escape(principal.display)}</strong>. "
        f"Hồ sơ sức khỏe: <code>Patient/{escape(patient)}</code>.</p>"
        f"<p>Phiên đăng nhập hết hạn sau {expires_in // 60} phút.</p>",
    )
    response = HTMLResponse(html, headers=_NO_STORE)
    start_session(response, token, expires_in, secure)
    return response


def _error(request: Request, exc: FhirError) -> Response:
    if _wants_json(request) or "fhir" in request.headers.get("accept", ""):
        return FhirResponse(exc.outcome, status_code=exc.status, headers=_NO_STORE)
    message = "; ".join(issue.diagnostics for issue in exc.issues)
    html = _page(
        "Không đăng nhập được — sign-in failed",
        f'<p role="alert">{escape(message)}</p><p><a href="login">Thử lại / try again</a></p>',
    )
    return HTMLResponse(html, status_code=exc.status, headers=_NO_STORE)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
