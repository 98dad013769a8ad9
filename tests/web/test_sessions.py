"""Cookie sessions for our own pages: HttpOnly token cookie, CSRF header on unsafe methods,
sign-out revokes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.accounts import create_user
from sokhoe.config import Settings
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from sokhoe.web.sessions import CSRF_COOKIE, SESSION_COOKIE
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS, platform_token

PASSWORD = "mật-khẩu-dài-2026"
PATIENT = {"resourceType": "Patient", "name": [{"family": "Phạm", "given": ["Thu"]}]}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[TestClient]:
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    app = create_app(Settings(**FAST_PASSWORDS, base_url=BASE, var_dir=tmp_path), store)
    with TestClient(app, base_url=BASE) as c:
        create_user(
            app.state.tokens.engine,
            "admin.so",
            PASSWORD,
            "doctor",
            "BS",
            "79001",
            hasher=FAST_HASHER,
        )
        yield c
    store.close()


def _sign_in(c: TestClient) -> str:
    r = c.post(
        "/auth/staff/sign-in",
        params={"session": "cookie"},
        json={"username": "admin.so", "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert "access_token" not in r.json()  # the token never reaches page scripts
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    csrf = next(c for c in cookies if c.startswith(CSRF_COOKIE + "="))
    assert "HttpOnly" not in csrf
    assert c.cookies[CSRF_COOKIE] == r.json()["csrf_token"]
    return str(r.json()["csrf_token"])


def _count(c: TestClient) -> int:
    platform = {"Authorization": f"Bearer {platform_token(c.app)}"}  # type: ignore[arg-type]
    r = c.get("/fhir/Patient", params={"_summary": "count"}, headers=platform)
    return int(r.json()["total"])


def test_a_cookie_session_reads_and_writes_only_with_its_csrf_token(browser: TestClient) -> None:
    csrf = _sign_in(browser)
    assert browser.get("/fhir/Patient").status_code == 200
    before = _count(browser)
    forged = browser.post("/fhir/Patient", json=PATIENT)
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.text
    wrong = browser.post("/fhir/Patient", json=PATIENT, headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert _count(browser) == before  # refused writes changed nothing
    ok = browser.post("/fhir/Patient", json=PATIENT, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    assert _count(browser) == before + 1


CSRF_REFUSAL = (
    "This request uses the session cookie but lacks a valid X-CSRF-Token header "
    "(cross-site request forgery protection)"
)


def test_bearer_callers_need_no_csrf_token(browser: TestClient) -> None:
    """The CSRF check guards the cookie, not the bearer token. The client holds a signed-in
    session cookie, so the check is live: the cookie alone is refused by it, the same request
    with the session's X-CSRF-Token passes, and a bearer token is not asked for one (another
    site cannot set the Authorization header) even with the cookie beside it."""
    csrf = _sign_in(browser)
    assert browser.cookies.get(SESSION_COOKIE)  # every request below carries the session
    before = _count(browser)
    refused = browser.post("/fhir/Patient", json=PATIENT)
    assert refused.status_code == 403
    issues = refused.json()["issue"]
    assert [(i["code"], i["diagnostics"]) for i in issues] == [("forbidden", CSRF_REFUSAL)]
    assert _count(browser) == before
    with_csrf = browser.post("/fhir/Patient", json=PATIENT, headers={"X-CSRF-Token": csrf})
    assert with_csrf.status_code == 201, with_csrf.text
    platform = {"Authorization": f"Bearer {platform_token(browser.app)}"}  # type: ignore[arg-type]
    bearer = browser.post("/fhir/Patient", json=PATIENT, headers=platform)
    assert bearer.status_code == 201, bearer.text
    assert _count(browser) == before + 2


def test_sign_out_revokes_the_session(browser: TestClient) -> None:
    csrf = _sign_in(browser)
    token = browser.cookies[SESSION_COOKIE]
    assert browser.post("/auth/sign-out").status_code == 403  # sign-out is CSRF-checked too
    out = browser.post("/auth/sign-out", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get("/fhir/Patient").status_code == 401
    replay = browser.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert replay.status_code == 401
