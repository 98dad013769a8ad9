"""Cookie sessions for the platform's own web pages, with CSRF protection.

API callers send ``Authorization: Bearer``; a browser showing the citizen portal or the
dashboard cannot keep a token away from page scripts unless it lives in an HttpOnly cookie. A
cookie, though, is sent by the browser on requests that another site triggers (cross-site
request forgery), so a request authenticated by the cookie must also prove it comes from our
own page: unsafe methods (POST, PUT, PATCH, DELETE) need the ``X-CSRF-Token`` header equal to
the session's CSRF token. That token is derived from the session token (a hash: nothing to
store, any server process can check it), handed to the page in a second, script-readable
cookie, and useless to another site, which can read neither cookie. ``SameSite=Strict`` is a
second line of defence, not the only one (old browsers, same-site subdomains).

See: https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from sokhoe.errors import Forbidden

SESSION_COOKIE: Final = "sokhoe_session"
CSRF_COOKIE: Final = "sokhoe_csrf"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: a hash of its token (knowing one does not give the
    other, and it changes with every sign-in)."""
    digest = hashlib.sha256(b"sokhoe-csrf:" + session_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")


def start_session(response: Response, token: str, expires_in: int, secure: bool) -> str:
    """Set the session and CSRF cookies on ``response``; return the CSRF token (also for a
    page that renders it into a form)."""
    csrf = csrf_token(token)
    common = {"max_age": expires_in, "path": "/", "secure": secure, "samesite": "strict"}
    response.set_cookie(SESSION_COOKIE, token, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]
    return csrf


def end_session(response: Response, secure: bool) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, samesite="strict")


def session_token(request: Request) -> str | None:
    """The session token from the cookie, after the CSRF check for unsafe methods; None when
    there is no session cookie. :class:`Forbidden` when the check fails."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, csrf_token(token)):
            raise Forbidden(
                "This request uses the session cookie but lacks a valid X-CSRF-Token header "
                "(cross-site request forgery protection)"
            )
    return token


__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "csrf_token",
    "end_session",
    "session_token",
    "start_session",
]
