"""Citizen sign-in through OpenID Connect, against a real provider started by the tests.

The provider is panva's ``oidc-provider`` (a certified OpenID Connect implementation from the
npm registry) run by ``tests/access/oidc_provider/server.mjs`` on a loopback port; the tests
drive the whole flow over HTTP as a browser would: our ``/auth/oidc/login`` → the provider's
authorization endpoint → its login form → its consent form → our callback → our token → the
FHIR API. The app runs on a real SQLite file.
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from sokhoe.access.guard import platform_repository
from sokhoe.access.guardians import confirm_guardian
from sokhoe.access.oidc import (
    FLOW_COOKIE,
    FlowState,
    Identity,
    OidcConfig,
    ProviderError,
    ProviderMetadata,
    RelyingParty,
    open_flow,
    seal_flow,
)
from sokhoe.access.oidc_citizen import citizen_for, patient_with_cccd
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.errors import Forbidden, InvalidRequest, Unauthorized
from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.identifiers import CCCD
from sokhoe.mpi.links import Agent, merge
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from sokhoe.web.app import create_app
from sokhoe.web.sessions import SESSION_COOKIE

pytestmark = pytest.mark.xdist_group("oidc-provider")  # one provider, one npm ci

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
BASE = "http://testserver"
REDIRECT = f"{BASE}/auth/oidc/callback"
SECRETS = {
    "sokhoe": "sokhoe-test-secret-0123456789-abcdef",
    "other-app": "other-app-test-secret-9876543210-fedcba",
}
"""As registered in server.mjs."""
PASSWORDS = {"an": "mat-khau-an", "binh": "mat-khau-binh", "chi": "mat-khau-chi"}
AN_CCCD = "001085012345"
AN_PHONE = "0912000111"


# -- the provider ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"'{name}' (Node.js 20.19+) is needed to run the test OpenID provider; "
            "`make system-deps` installs it"
        )
    return path


def _install_provider() -> None:
    """``npm ci`` from the lock file when the installed provider is missing (a clean checkout)
    or not the locked version (the lock was updated since), one process at a time (workers
    of ``pytest -n`` without ``--dist loadgroup`` ignore the xdist group)."""
    lock_file = PROVIDER_DIR / "package-lock.json"
    wanted = json.loads(lock_file.read_text())["packages"]["node_modules/oidc-provider"]["version"]
    installed = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    with lock_file.open() as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if installed.is_file() and json.loads(installed.read_text())["version"] == wanted:
            return
        done = subprocess.run(
            [_tool("npm"), "ci", "--no-audit", "--no-fund"],
            cwd=PROVIDER_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm ci in {PROVIDER_DIR} failed: {done.stderr[-3000:]}")


@contextmanager
def _provider(*flags: str) -> Iterator[str]:
    """Run server.mjs on a free port (installing it from the lock file on a clean checkout,
    as ``make test`` does); its issuer URL."""
    _install_provider()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [_tool("node"), "server.mjs", str(port), REDIRECT, *flags],
            cwd=PROVIDER_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx2.get(url + "/.well-known/openid-configuration").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"oidc-provider did not start: {log.read().decode()}")
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def issuer() -> Iterator[str]:
    """The provider releasing profile claims (the CCCD among them) through userinfo only."""
    with _provider() as url:
        yield url


@pytest.fixture(scope="session")
def issuer_with_id_token_claims() -> Iterator[str]:
    """A second provider that puts the profile claims in the ID token itself."""
    with _provider("--claims-in-id-token") as url:
        yield url


def _settings(issuer: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": BASE,
        "database_url": "sqlite://",
        "oidc_issuer": issuer,
        "oidc_client_id": "sokhoe",
        "oidc_client_secret": SECRETS["sokhoe"],
        "oidc_scopes": "openid profile phone",
    }
    return Settings(**(values | extra))


# -- the record -----------------------------------------------------------------------------------
def _patient(cccd: str | None, family: str, birth: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Văn"]}],
        "birthDate": birth,
    }
    if cccd:
        resource["identifier"] = [{"system": CCCD, "value": cccd, "use": "official"}]
    return resource


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'oidc.db'}"


def _seed(repo: FhirRepository) -> dict[str, str]:
    """An (whose CCCD the provider asserts), his young son (An is the father on the son's
    RelatedPerson, with An's phone) and a stranger."""
    ids = {
        "an": repo.create(_patient(AN_CCCD, "Nguyễn", "1985-04-12"), "Patient").resource.id,
        "son": repo.create(_patient(None, "Nguyễn", "2018-03-01"), "Patient").resource.id,
        "stranger": repo.create(
            _patient("001190000777", "Phạm", "1990-02-02"), "Patient"
        ).resource.id,
    }
    father = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": f"Patient/{ids['son']}"},
        "relationship": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH"}
                ]
            }
        ],
        "telecom": [{"system": "phone", "value": AN_PHONE}],
    }
    # a member of staff checked the papers: only a confirmed guardian sees the child's record
    confirm_guardian(repo, repo.create(father, "RelatedPerson").resource.id)
    return ids


@pytest.fixture
def world(db_url: str) -> Iterator[dict[str, str]]:
    """The people of :func:`_seed` in a SQLite file."""
    store = SqlStore(db_url)
    try:
        yield _seed(platform_repository(store, BASE + "/fhir"))
    finally:
        store.close()


@pytest.fixture
def app(issuer: str, db_url: str, world: dict[str, str]) -> Iterator[FastAPI]:
    store = SqlStore(db_url)
    try:
        yield create_app(_settings(issuer, database_url=db_url), store)
    finally:
        store.close()


@pytest.fixture
def web(app: FastAPI) -> Iterator[TestClient]:
    """The citizen's browser on our side (TestClient keeps our cookies)."""
    with TestClient(app, base_url=BASE) as client:
        yield client


@pytest.fixture
def idp() -> Iterator[httpx2.Client]:
    """The same browser on the provider's side (its own cookie jar, real TCP)."""
    with httpx2.Client(timeout=10, follow_redirects=False) as client:
        yield client


# -- driving the browser --------------------------------------------------------------------------
def _at_provider(idp: httpx2.Client, url: str, login: str) -> str:
    """Follow the provider's pages from ``url``: fill in the login form for ``login``,
    confirm the consent; return the URL the provider finally sends the browser to."""
    method, data = "GET", None
    for _ in range(12):
        response = idp.request(method, url, data=data)
        if response.status_code in (302, 303):
            url, method, data = urljoin(url, response.headers["location"]), "GET", None
            if url.startswith(BASE):  # back to us
                return url
            continue
        assert response.status_code == 200, response.text
        action = re.search(r'<form method="post" action="([^"]+)"', response.text)
        assert action is not None, response.text
        url, method = urljoin(url, action.group(1)), "POST"
        data = {"login": login, "password": PASSWORDS[login]} if "/login" in url else {}
    raise AssertionError("the provider never sent the browser back")


def _sign_in(web: TestClient, idp: httpx2.Client, login: str) -> tuple[str, dict[str, Any]]:
    """Run the whole flow; the callback URL the provider returned and the parsed query."""
    start = web.get("/auth/oidc/login", follow_redirects=False)
    assert start.status_code == 302, start.text
    assert FLOW_COOKIE in web.cookies
    back = _at_provider(idp, start.headers["location"], login)
    assert back.startswith(REDIRECT), back
    return back, parse_qs(urlsplit(back).query)


def _callback(web: TestClient, url: str, accept: str = "application/json") -> httpx2.Response:
    parts = urlsplit(url)
    return web.get(f"{parts.path}?{parts.query}", headers={"Accept": accept})


def _logins(app: FastAPI) -> list[tuple[str, str, str]]:
    tokens: TokenService = app.state.tokens
    with tokens.engine.begin() as conn:
        rows = conn.execute(
            select(audit_event.c.agent, audit_event.c.action, audit_event.c.outcome)
            .where(audit_event.c.action.in_(["login", "login-failed"]))
            .order_by(audit_event.c.seq)
        ).all()
    return [(r.agent, r.action, r.outcome) for r in rows]


# -- the flow -------------------------------------------------------------------------------------
def test_citizen_signs_in_and_reads_only_their_own_record(
    web: TestClient, idp: httpx2.Client, app: FastAPI, world: dict[str, str], issuer: str
) -> None:
    back, query = _sign_in(web, idp, "an")
    assert query["iss"] == [issuer]  # RFC 9207: the provider names itself, and we check it
    answer = _callback(web, back)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["patient"] == world["an"]
    assert 0 < body["expires_in"] <= 15 * 60
    assert FLOW_COOKIE not in web.cookies  # one use: the callback clears it

    principal = app.state.tokens.verify(body["access_token"])
    host = urlsplit(issuer).netloc
    assert principal.kind == "citizen"
    assert principal.subject == f"oidc:{host}:an"
    assert principal.display == "Nguyễn Văn An"

    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    own = web.get(f"/fhir/Patient/{world['an']}", headers=bearer)
    assert own.status_code == 200, own.text
    assert own.json()["identifier"][0]["value"] == AN_CCCD
    other = web.get(f"/fhir/Patient/{world['stranger']}", headers=bearer)
    assert other.status_code == 403
    assert other.json()["resourceType"] == "OperationOutcome"
    # the provider vouched for An's phone (phone_number_verified), which a facility recorded
    # as the father's on his son's RelatedPerson: the son's record is An's to see too
    assert web.get(f"/fhir/Patient/{world['son']}", headers=bearer).status_code == 200
    assert (f"citizen:oidc:{host}:an", "login", "success") in _logins(app)


def test_a_browser_gets_a_page_and_a_cookie_session(
    web: TestClient, idp: httpx2.Client, world: dict[str, str]
) -> None:
    back, _ = _sign_in(web, idp, "an")
    page = _callback(web, back, accept="text/html,application/xhtml+xml")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Nguyễn Văn An" in page.text
    assert f"Patient/{world['an']}" in page.text
    token = web.cookies[SESSION_COOKIE]
    assert token not in page.text  # the token stays in the HttpOnly cookie, away from scripts
    # the browser's next requests carry the session cookie, no Authorization header
    assert web.get(f"/fhir/Patient/{world['an']}").status_code == 200
    assert web.get(f"/fhir/Patient/{world['stranger']}").status_code == 403


def test_without_the_phone_scope_no_wards_are_added(
    issuer: str, db_url: str, world: dict[str, str], idp: httpx2.Client
) -> None:
    store = SqlStore(db_url)
    app = create_app(_settings(issuer, database_url=db_url, oidc_scopes="openid profile"), store)
    try:
        with TestClient(app, base_url=BASE) as web:
            back, _ = _sign_in(web, idp, "an")
            body = _callback(web, back).json()
        assert app.state.tokens.verify(body["access_token"]).patient_ids == (world["an"],)
    finally:
        store.close()


def test_flow_started_on_one_server_process_completes_on_another(
    web: TestClient, idp: httpx2.Client, issuer: str, db_url: str, world: dict[str, str]
) -> None:
    """No flow state in process memory (DESIGN.md): a second app over the same database,
    as a second process behind the load balancer, accepts the first one's flow cookie."""
    back, _ = _sign_in(web, idp, "an")
    store = SqlStore(db_url)
    try:
        second = create_app(_settings(issuer, database_url=db_url), store)
        with TestClient(second, base_url=BASE) as other_process:
            other_process.cookies.set(FLOW_COOKIE, web.cookies[FLOW_COOKIE])
            answer = _callback(other_process, back)
        assert answer.status_code == 200, answer.text
        assert answer.json()["patient"] == world["an"]
    finally:
        store.close()


def test_client_secret_post_and_es256_id_tokens(
    issuer: str, db_url: str, world: dict[str, str], idp: httpx2.Client
) -> None:
    """The provider's second client authenticates with client_secret_post and has its ID
    tokens signed with ES256."""
    settings = _settings(
        issuer,
        database_url=db_url,
        oidc_client_id="other-app",
        oidc_client_secret=SECRETS["other-app"],
        oidc_client_auth="client_secret_post",
    )
    store = SqlStore(db_url)
    try:
        with TestClient(create_app(settings, store), base_url=BASE) as web:
            back, _ = _sign_in(web, idp, "an")
            answer = _callback(web, back)
        assert answer.status_code == 200, answer.text
        assert answer.json()["patient"] == world["an"]
    finally:
        store.close()


def test_claims_in_the_id_token_are_used_as_they_come(
    issuer_with_id_token_claims: str, db_url: str, idp: httpx2.Client, world: dict[str, str]
) -> None:
    """A provider may put the CCCD in the ID token itself (VNeID might)."""
    party = _party(issuer_with_id_token_claims)
    flow, tokens = _tokens_from_provider(idp, party, "an")
    assert party.verify_id_token(tokens["id_token"], flow.nonce)["cccd"] == AN_CCCD
    store = SqlStore(db_url)
    try:
        app = create_app(_settings(issuer_with_id_token_claims, database_url=db_url), store)
        with TestClient(app, base_url=BASE) as web:
            back, _ = _sign_in(web, idp, "an")
            body = _callback(web, back).json()
        principal = app.state.tokens.verify(body["access_token"])
        assert set(principal.patient_ids) == {world["an"], world["son"]}
    finally:
        store.close()


@pytest.mark.parametrize(
    "store", ["memory", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_sign_in_on_other_backends(store: FhirStore, issuer: str, idp: httpx2.Client) -> None:
    """The same flow over the in-memory store and PostgreSQL (SQLite is the tests above)."""
    ids = _seed(platform_repository(store, BASE + "/fhir"))
    with TestClient(create_app(_settings(issuer), store), base_url=BASE) as web:
        back, _ = _sign_in(web, idp, "an")
        body = _callback(web, back).json()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        assert body["patient"] == ids["an"]
        assert web.get(f"/fhir/Patient/{ids['an']}", headers=bearer).status_code == 200
        assert web.get(f"/fhir/Patient/{ids['son']}", headers=bearer).status_code == 200
        assert web.get(f"/fhir/Patient/{ids['stranger']}", headers=bearer).status_code == 403


# -- refusals -------------------------------------------------------------------------------------
def test_a_tampered_state_is_refused(
    web: TestClient, idp: httpx2.Client, app: FastAPI, issuer: str
) -> None:
    back, query = _sign_in(web, idp, "an")
    tampered = {k: v[0] for k, v in query.items()} | {"state": query["state"][0][:-2] + "xx"}
    answer = web.get(
        "/auth/oidc/callback?" + urlencode(tampered), headers={"Accept": "application/json"}
    )
    assert answer.status_code == 400
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "state" in outcome["issue"][0]["diagnostics"]
    assert FLOW_COOKIE not in web.cookies
    host = urlsplit(issuer).netloc
    assert _logins(app) == [(f"citizen:oidc:{host}", "login-failed", "denied")]
    # the genuine answer cannot be replayed either: the flow cookie is gone
    assert _callback(web, back).status_code == 400


def test_a_callback_without_the_flow_cookie_is_refused(web: TestClient, idp: httpx2.Client) -> None:
    back, _ = _sign_in(web, idp, "an")
    web.cookies.clear()
    answer = _callback(web, back)
    assert answer.status_code == 400
    assert "No sign-in is in progress" in answer.json()["issue"][0]["diagnostics"]


def test_an_identity_whose_cccd_has_no_record_is_refused(
    web: TestClient, idp: httpx2.Client, app: FastAPI, issuer: str
) -> None:
    back, _ = _sign_in(web, idp, "binh")
    answer = _callback(web, back)
    assert answer.status_code == 403
    message = answer.json()["issue"][0]["diagnostics"]
    assert "No health record holds personal ID 079******321" in message
    host = urlsplit(issuer).netloc
    assert _logins(app) == [(f"citizen:oidc:{host}:binh", "login-failed", "denied")]
    again = _callback(web, back)  # the same answer a second time: the flow is used up
    assert again.status_code == 400
    assert "No sign-in is in progress" in again.json()["issue"][0]["diagnostics"]


def test_an_identity_without_a_cccd_claim_is_refused(
    web: TestClient, idp: httpx2.Client, app: FastAPI
) -> None:
    back, _ = _sign_in(web, idp, "chi")
    answer = _callback(web, back, accept="text/html")
    assert answer.status_code == 403
    assert "did not give your personal ID (claim &#x27;cccd&#x27;)" in answer.text
    assert [a for _, a, _ in _logins(app)] == ["login-failed"]


def test_the_provider_refusing_sign_in_is_reported(
    web: TestClient, app: FastAPI, issuer: str
) -> None:
    start = web.get("/auth/oidc/login", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    params = {"state": state, "iss": issuer, "error": "access_denied"}
    answer = web.get(
        "/auth/oidc/callback?" + urlencode(params), headers={"Accept": "application/json"}
    )
    assert answer.status_code == 401
    assert "access_denied" in answer.json()["issue"][0]["diagnostics"]


def test_an_answer_naming_another_issuer_is_refused(web: TestClient, idp: httpx2.Client) -> None:
    _, query = _sign_in(web, idp, "an")
    params = {k: v[0] for k, v in query.items()} | {"iss": "https://evil.example"}
    answer = web.get(
        "/auth/oidc/callback?" + urlencode(params), headers={"Accept": "application/json"}
    )
    assert answer.status_code == 400
    assert "RFC 9207" in answer.json()["issue"][0]["diagnostics"]


# -- the ID token ---------------------------------------------------------------------------------
def _party(issuer: str, client_id: str = "sokhoe") -> RelyingParty:
    auth = "client_secret_basic" if client_id == "sokhoe" else "client_secret_post"
    return RelyingParty(
        OidcConfig(
            issuer=issuer,
            client_id=client_id,
            client_secret=SECRETS[client_id],
            redirect_uri=REDIRECT,
            client_auth=auth,  # type: ignore[arg-type]
        )
    )


def _tokens_from_provider(
    idp: httpx2.Client, party: RelyingParty, login: str
) -> tuple[FlowState, dict[str, Any]]:
    flow = FlowState.new()
    back = _at_provider(idp, party.authorization_url(flow), login)
    code = parse_qs(urlsplit(back).query)["code"][0]
    return flow, party.exchange_code(code, flow.verifier)


def test_an_id_token_for_another_audience_or_nonce_is_refused(
    issuer: str, idp: httpx2.Client
) -> None:
    other, ours = _party(issuer, "other-app"), _party(issuer)
    flow, tokens = _tokens_from_provider(idp, other, "an")
    id_token = tokens["id_token"]
    assert jwt.get_unverified_header(id_token)["alg"] == "ES256"
    claims = other.verify_id_token(id_token, flow.nonce)
    assert claims["sub"] == "an"
    assert "cccd" not in claims  # this provider releases it by userinfo: that path is exercised
    with pytest.raises(Unauthorized, match=r"not valid \(Audience"):
        ours.verify_id_token(id_token, flow.nonce)
    with pytest.raises(Unauthorized, match="nonce"):
        other.verify_id_token(id_token, FlowState.new().nonce)


def test_a_code_is_redeemed_once_and_only_with_its_verifier(
    issuer: str, idp: httpx2.Client
) -> None:
    party = _party(issuer)
    flow = FlowState.new()
    back = _at_provider(idp, party.authorization_url(flow), "an")
    code = parse_qs(urlsplit(back).query)["code"][0]
    with pytest.raises(Unauthorized, match="refused the sign-in code"):
        party.exchange_code(code, FlowState.new().verifier)  # PKCE: a stolen code is useless
    flow2 = FlowState.new()
    back2 = _at_provider(idp, party.authorization_url(flow2), "an")
    code2 = parse_qs(urlsplit(back2).query)["code"][0]
    assert "id_token" in party.exchange_code(code2, flow2.verifier)
    with pytest.raises(Unauthorized):
        party.exchange_code(code2, flow2.verifier)


def _forged(header: dict[str, Any], claims: dict[str, Any], key: Any, alg: str) -> str:
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def test_unsigned_symmetric_and_foreign_id_tokens_are_refused(issuer: str) -> None:
    party = _party(issuer)
    now = int(datetime.now(UTC).timestamp())
    claims = {"iss": issuer, "aud": "sokhoe", "sub": "an", "iat": now, "exp": now + 300}
    claims["nonce"] = "n-1"
    unsigned = jwt.encode(claims, "", algorithm="none")
    with pytest.raises(Unauthorized, match="'none'"):
        party.verify_id_token(unsigned, "n-1")
    hmac_token = jwt.encode(claims, SECRETS["sokhoe"], algorithm="HS256")
    with pytest.raises(Unauthorized, match="'HS256'"):
        party.verify_id_token(hmac_token, "n-1")
    # an RSA key of our own, claiming to be the provider's key
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _forged({"kid": "rs256-1"}, claims, foreign, "RS256")
    with pytest.raises(Unauthorized, match="Signature verification failed"):
        party.verify_id_token(forged, "n-1")
    unknown_kid = _forged({"kid": "nobody"}, claims, foreign, "RS256")
    with pytest.raises(Unauthorized, match="No key of the provider"):
        party.verify_id_token(unknown_kid, "n-1")


# -- the flow cookie and the configuration --------------------------------------------------------
def test_flow_cookie_is_signed_expires_and_is_no_access_token(app: FastAPI) -> None:
    tokens: TokenService = app.state.tokens
    flow = FlowState.new()
    cookie = seal_flow(tokens, flow)
    assert open_flow(tokens, cookie) == flow
    head, payload, signature = cookie.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidRequest, match="not valid"):
        open_flow(tokens, forged)
    old = seal_flow(tokens, flow, now=datetime.now(UTC) - timedelta(minutes=11))
    with pytest.raises(InvalidRequest, match="took too long"):
        open_flow(tokens, old)
    with pytest.raises(Unauthorized):
        tokens.verify(cookie)  # the cookie's key is derived, never the access-token key
    access, _ = tokens.issue(Principal(kind="citizen", subject="x", display="x"))
    with pytest.raises(InvalidRequest):
        open_flow(tokens, access)


def test_issuer_must_be_https_except_on_loopback() -> None:
    def config(issuer: str) -> OidcConfig:
        return OidcConfig(issuer, "sokhoe", "s", REDIRECT)

    assert config("https://sso.vneid.gov.vn").issuer_host == "sso.vneid.gov.vn"
    config("http://127.0.0.1:4000")
    config("http://localhost:4000")
    config("http://[::1]:4000")
    for bad in ("http://sso.example.vn", "http://10.0.0.5", "ftp://sso.example.vn"):
        with pytest.raises(ValueError, match="https"):
            config(bad)
    with pytest.raises(ValueError, match="https"):
        create_app(
            Settings(
                database_url="sqlite://",
                oidc_issuer="http://idp.example.vn",
                oidc_client_id="a",
                oidc_client_secret="b",
            )
        )
    with pytest.raises(ValueError, match="oidc_client_secret"):
        create_app(Settings(database_url="sqlite://", oidc_issuer="https://idp.example.vn"))


def test_without_an_issuer_the_routes_do_not_exist() -> None:
    with TestClient(create_app(Settings(database_url="sqlite://")), base_url=BASE) as web:
        for path in ("/auth/oidc/login", "/auth/oidc/callback"):
            answer = web.get(path, follow_redirects=False)
            assert answer.status_code == 404
            assert answer.json()["resourceType"] == "OperationOutcome"


def test_an_unreachable_provider_is_a_clear_502() -> None:
    party = RelyingParty(
        OidcConfig(f"http://127.0.0.1:{_free_port()}", "sokhoe", "s", REDIRECT, timeout=2)
    )
    with pytest.raises(ProviderError, match="unreachable") as caught:
        party.authorization_url(FlowState.new())
    assert caught.value.status == 502


def _discovery(issuer: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/auth",
        "token_endpoint": issuer + "/token",
        "jwks_uri": issuer + "/jwks",
        "userinfo_endpoint": issuer + "/me",
        "code_challenge_methods_supported": ["S256"],
    }
    return doc | changes


def test_discovery_documents_are_checked() -> None:
    issuer = "https://sso.example.vn"
    meta = ProviderMetadata.from_document(_discovery(issuer), issuer)
    assert meta.token_endpoint == issuer + "/token"
    assert not meta.authorization_response_iss
    bad = {
        "names issuer 'https://evil": _discovery("https://evil.example.vn"),
        "has no token_endpoint": _discovery(issuer, token_endpoint=None),
        "must be an https URL": _discovery(issuer, jwks_uri="http://sso.example.vn/jwks"),
        "PKCE with S256": _discovery(issuer, code_challenge_methods_supported=["plain"]),
    }
    for message, doc in bad.items():
        with pytest.raises(ProviderError, match=message):
            ProviderMetadata.from_document(doc, issuer)


def test_cccd_lookup_follows_merges_and_refuses_duplicates() -> None:
    repo = platform_repository(MemoryStore(), BASE + "/fhir")
    kept = repo.create(_patient(AN_CCCD, "Nguyễn", "1985-04-12"), "Patient").resource.id
    merged = repo.create(_patient(AN_CCCD, "Nguyen", "1985-04-12"), "Patient").resource.id
    merge(repo, merged, kept, Agent("test"), "the same CCCD")
    assert patient_with_cccd(repo, AN_CCCD) == kept  # the merged duplicate leads to the survivor
    repo.create(_patient(AN_CCCD, "Nguyễn", "1985-04-12"), "Patient")  # not merged yet
    with pytest.raises(Forbidden, match="Several health records hold personal ID 001"):
        patient_with_cccd(repo, AN_CCCD)
    config = OidcConfig("https://sso.example.vn", "sokhoe", "s", REDIRECT)
    claims = {"sub": "an", "cccd": "12345"}
    with pytest.raises(Forbidden, match="invalid personal ID"):
        citizen_for(repo, config, Identity(config.issuer, "an", claims))
