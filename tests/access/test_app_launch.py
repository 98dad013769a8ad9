"""SMART App Launch, standalone: registering an app, the authorization request, the consent
screen, codes for tokens (PKCE, single use, bound), refresh rotation, disconnecting, and the
door and audit that every app token goes through, with the ways to get more refused.
See: https://hl7.org/fhir/smart-app-launch/app-launch.html"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select
from typer.testing import CliRunner

from sokhoe.access.accounts import account
from sokhoe.access.app_grants import AppTokens, InvalidGrant, connected_apps
from sokhoe.access.apps import App, create_app_client, deactivate_app, find_app
from sokhoe.access.audit import agent_key
from sokhoe.access.launch import (
    AuthRequest,
    LaunchError,
    RedirectRefused,
    approve,
    grantable,
    parse_request,
)
from sokhoe.access.otp import citizen_principal
from sokhoe.access.principal import Principal
from sokhoe.cli import app as cli
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import auth_app_grant
from tests.clinic.clinic_world import PASSWORD, PHONE, World, make_world
from tests.conftest import BASE
from tests.pg_server import PostgresServer
from tests.portal.portal_world import csrf_of, sign_in
from tests.portal.privacy_world import GUARDIAN, cards, child_with_guardian, link, person

FHIR = f"{BASE}/fhir"
REDIRECT = "http://127.0.0.1:9999/app/callback"
OTHER_PHONE = "0987000111"


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, BASE)
    link(world)  # An's phone holds An's record
    person(world, "p-binh", ("Trần", "Văn Bình"), "1990-01-01")
    link(world, OTHER_PHONE, "p-binh")
    return world


def engine(world: World) -> Any:
    return world.app.state.tokens.engine


def issuer(world: World) -> AppTokens:
    found: AppTokens = world.app.state.app_tokens
    return found


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def register(world: World, public: bool = True) -> tuple[App, str | None]:
    made = create_app_client(engine(world), "Ứng dụng Sức khỏe Gia đình", [REDIRECT], public)
    app = find_app(engine(world), made.client_id)
    assert app is not None
    return app, made.client_secret


def params(app: App, challenge: str, **changes: str) -> dict[str, str]:
    base = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "launch/patient openid fhirUser offline_access patient/*.rs",
        "state": "st-123",
        "aud": FHIR,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return {**base, **changes}


def citizen(phone: str = PHONE, *patients: str) -> Principal:
    who = citizen_principal(phone, None)
    return replace(who, patient_ids=patients or ("p-an",))


def launch(
    world: World, who: Principal | None = None, scope: str | None = None, patient: str | None = None
) -> tuple[App, str, str]:
    """A public app launched and allowed by ``who`` (An by default): (app, code, verifier)."""
    app, _ = register(world)
    verifier, challenge = pkce()
    asked = params(app, challenge) | ({"scope": scope} if scope else {})
    request = parse_request(engine(world), asked, FHIR)
    person = who or citizen()
    fhir_user = f"{FHIR}/Patient/p-an" if person.kind == "citizen" else None  # bs.b: none
    code = approve(engine(world), person, request, patient, fhir_user)
    return app, code, verifier


def fhir(world: World, token: str) -> TestClient:
    return TestClient(world.app, base_url=BASE, headers={"Authorization": f"Bearer {token}"})


# -- registration ------------------------------------------------------------------------


def test_apps_are_registered_from_the_command_line_with_exact_redirect_uris(
    world: World,
) -> None:
    db = ["--db", world.settings.database_url]
    runner = CliRunner()
    done = runner.invoke(
        cli, ["client", "create", "--name", "Sổ tay", "--redirect-uri", REDIRECT, "--public", *db]
    )
    assert done.exit_code == 0, done.output
    made = json.loads(done.output)
    assert made["client_id"].startswith("app-") and made["client_secret"] is None
    found = find_app(engine(world), made["client_id"])
    assert found is not None and found.public and found.redirect_uris == (REDIRECT,)
    server = ["client", "create", "--name", "Máy chủ", "--redirect-uri", "https://a.vn/cb", *db]
    secret = json.loads(runner.invoke(cli, server).output)["client_secret"]
    assert isinstance(secret, str) and len(secret) > 30
    for bad in ("http://evil.example/cb", "https://a.vn/cb#frag", "/relative", "ftp://a.vn/x"):
        refused = runner.invoke(
            cli, ["client", "create", "--name", "X", "--redirect-uri", bad, *db]
        )
        assert refused.exit_code == 2, bad
    mixed = [
        "client",
        "create",
        "--name",
        "X",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "system/*.rs",
    ]
    assert runner.invoke(cli, [*mixed, *db]).exit_code == 2  # an app has no scopes of its own
    assert runner.invoke(cli, ["client", "create", "--name", "X", "--public", *db]).exit_code == 2
    # an app is not a connected system: no client credentials for it
    with TestClient(world.app, base_url=BASE) as client:
        answer = client.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": made["client_id"],
                "client_secret": "",
            },
        )
    assert answer.status_code == 401


# -- the authorization request -------------------------------------------------------------


def test_the_request_names_a_registered_app_and_exactly_its_redirect_uri(world: World) -> None:
    app, _ = register(world)
    _, challenge = pkce()
    with pytest.raises(RedirectRefused):
        parse_request(engine(world), params(app, challenge, client_id="app-unknown"), FHIR)
    for near in (
        REDIRECT + "/x",
        REDIRECT + "?next=https://evil.example",
        "http://127.0.0.1:9999/app/",
    ):
        with pytest.raises(RedirectRefused):
            parse_request(engine(world), params(app, challenge, redirect_uri=near), FHIR)
    deactivate_app(engine(world), app.client_id)
    with pytest.raises(RedirectRefused):
        parse_request(engine(world), params(app, challenge), FHIR)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ({"aud": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": ""}, "invalid_scope"),
    ],
)
def test_a_bad_request_goes_back_to_the_app_with_an_error(
    world: World, change: dict[str, str], error: str
) -> None:
    app, _ = register(world)
    _, challenge = pkce()
    with pytest.raises(LaunchError) as raised:
        parse_request(engine(world), params(app, challenge, **change), FHIR)
    assert raised.value.error == error
    assert parse_request(engine(world), params(app, challenge, aud=FHIR + "/"), FHIR).app == app


def test_scopes_a_role_can_never_have_are_dropped() -> None:
    asked = (
        "patient/*.rs",
        "patient/*.cruds",
        "patient/Observation.read",
        "user/*.cruds",
        "system/*.rs",
        "launch/patient",
        "launch",
        "openid",
        "fhirUser",
        "offline_access",
        "nonsense/x",
    )
    assert grantable(citizen(), asked) == (
        "patient/*.rs",
        "patient/Observation.read",
        "launch/patient",
        "openid",
        "fhirUser",
        "offline_access",
    )
    desk = Principal(
        kind="staff",
        subject="tieptan",
        display="Lễ tân",
        role="receptionist",
        scopes=frozenset({"user/Patient.cruds", "user/Encounter.crus"}),
    )
    assert grantable(desk, (*asked, "user/Patient.rs", "user/Observation.rs")) == (
        "openid",
        "fhirUser",
        "offline_access",
        "user/Patient.rs",
    )
    assert grantable(citizen(), ("fhirUser", "patient/*.rs")) == ("patient/*.rs",)


# -- codes for tokens ------------------------------------------------------------------------


def test_the_app_reads_the_citizens_record_and_nothing_else_with_both_names_audited(
    world: World,
) -> None:
    app, code, verifier = launch(world)
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    body = issued.body()
    assert body["patient"] == "p-an" and body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == {
        "launch/patient",
        "openid",
        "fhirUser",
        "offline_access",
        "patient/*.rs",
    }
    assert body["refresh_token"] and body["id_token"]
    with fhir(world, issued.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 200
        assert client.get("/fhir/Patient/p-binh").status_code in (403, 404)
        found = client.get("/fhir/Patient").json()
        assert [e["resource"]["id"] for e in found.get("entry", [])] == ["p-an"]
        assert client.post("/fhir/Patient", json={"resourceType": "Patient"}).status_code == 403
        # what the citizen may do on their own pages, the read-only app may not: no share
        # code, no restriction (each would change who sees the record)
        consents = len(world.platform.search(world.platform.parse_query("Consent", [])).matches)
        assert client.post("/fhir/Patient/p-an/$share").status_code == 403
        restrict = {
            "resourceType": "Parameters",
            "parameter": [{"name": "category", "valueCode": "HIV"}],
        }
        assert client.post("/fhir/Patient/p-an/$restrict", json=restrict).status_code == 403
        after = world.platform.search(world.platform.parse_query("Consent", [])).matches
        assert len(after) == consents
    rows = world.app.state.auditor.for_patient(["p-an"], 5)[0]
    agents = rows[0]["agent"]
    assert agents[0]["who"]["identifier"]["value"] == PHONE
    assert agents[1]["who"]["display"] == "Ứng dụng Sức khỏe Gia đình"
    assert agents[1]["who"]["identifier"]["value"] == app.client_id
    # the citizen's "who looked at my record" lists the app (their own views are not listed)
    page = sign_in(world, PHONE).get("/portal/access-log?lang=en")
    assert "The app Ứng dụng Sức khỏe Gia đình" in page.text
    assert "An app connected to this health book" in page.text
    shown = [c for c in cards(page.text) if "Ứng dụng Sức khỏe Gia đình" in c]
    assert shown and all("/concern" not in c for c in shown)  # their own doing: no concern


def test_the_id_token_is_signed_rs256_with_the_published_key_and_names_the_fhir_user(
    world: World,
) -> None:
    app, code, verifier = launch(world)
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    with TestClient(world.app, base_url=BASE) as client:
        keys = client.get("/auth/jwks").json()["keys"]
        config = client.get("/fhir/.well-known/openid-configuration").json()
    assert issued.id_token is not None
    kid = jwt.get_unverified_header(issued.id_token)["kid"]
    key = RSAAlgorithm.from_jwk(json.dumps(next(k for k in keys if k["kid"] == kid)))
    claims = jwt.decode(
        issued.id_token,
        key,
        algorithms=["RS256"],
        audience=app.client_id,
        issuer=FHIR,  # type: ignore[arg-type]
    )
    assert claims["fhirUser"] == f"{FHIR}/Patient/p-an"
    assert PHONE not in json.dumps(claims)  # the subject is a hash, not the phone number
    assert config["jwks_uri"] == f"{BASE}/auth/jwks" and config["issuer"] == FHIR


def test_a_wrong_verifier_burns_the_code(world: World) -> None:
    app, code, verifier = launch(world)
    with pytest.raises(InvalidGrant, match="code_verifier"):
        issuer(world).exchange_code(app, code, REDIRECT, pkce()[0])
    with pytest.raises(InvalidGrant):
        issuer(world).exchange_code(app, code, REDIRECT, verifier)


def test_a_replayed_code_revokes_what_it_issued(world: World) -> None:
    app, code, verifier = launch(world)
    first = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    with pytest.raises(InvalidGrant, match="already used"):
        issuer(world).exchange_code(app, code, REDIRECT, verifier)
    with fhir(world, first.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 401
    assert first.refresh_token is not None
    with pytest.raises(InvalidGrant):
        issuer(world).refresh(app, first.refresh_token, lambda _: True)


def test_a_code_is_bound_to_its_app_and_redirect_uri_and_lives_a_minute(world: World) -> None:
    app, code, verifier = launch(world)
    other, _ = register(world)
    with pytest.raises(InvalidGrant, match="another app"):
        issuer(world).exchange_code(other, code, REDIRECT, verifier)
    app, code, verifier = launch(world)
    with pytest.raises(InvalidGrant, match="redirect_uri"):
        issuer(world).exchange_code(app, code, REDIRECT + "x", verifier)
    app, code, verifier = launch(world)
    later = datetime.now(UTC) + timedelta(seconds=61)
    with pytest.raises(InvalidGrant, match="expired"):
        issuer(world).exchange_code(app, code, REDIRECT, verifier, now=later)
    with pytest.raises(InvalidGrant, match="Unknown"):
        issuer(world).exchange_code(app, "made-up", REDIRECT, verifier)


def test_a_citizen_connects_only_a_record_they_hold(world: World) -> None:
    app, _ = register(world)
    request = parse_request(engine(world), params(app, pkce()[1]), FHIR)
    with pytest.raises(ValueError, match="record they hold"):
        approve(engine(world), citizen(), request, "p-binh", None)
    with pytest.raises(ValueError):
        approve(engine(world), citizen(PHONE, *()), replace(request), "p-an-forged", None)
    unlinked = replace(citizen_principal("0966000111", None), patient_ids=())
    with pytest.raises(ValueError):
        approve(engine(world), unlinked, request, None, None)


def test_a_guardian_connects_an_app_to_the_childs_record_only(world: World) -> None:
    child = child_with_guardian(world)
    mother = citizen(GUARDIAN, child)
    app, code, verifier = launch(world, mother, patient=child)
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    assert issued.patient == child
    with fhir(world, issued.access_token) as client:
        assert client.get(f"/fhir/Patient/{child}").status_code == 200
        assert client.get("/fhir/Patient/p-an").status_code in (403, 404)


def test_a_clinicians_app_is_confined_by_the_door_as_their_pages_are(world: World) -> None:
    who = account(engine(world), "bs.b")
    assert who is not None
    scope = "openid fhirUser user/*.rs launch/patient patient/*.rs"
    app, code, verifier = launch(world, who, scope=scope)
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    assert set(issued.scope.split()) == {"openid", "user/*.rs"}  # no fhirUser: no Practitioner
    assert issued.patient is None
    with fhir(world, issued.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 200  # seen at hospital B
        assert client.get("/fhir/Patient/p-binh").status_code == 403
        assert client.post("/fhir/Patient", json={"resourceType": "Patient"}).status_code == 403
    other = account(engine(world), "bs.c")
    assert other is not None
    app, code, verifier = launch(world, other, scope="user/*.rs")
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    with fhir(world, issued.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 403
    event = world.app.state.auditor.for_patient(["p-an"], 1)[0][0]
    assert [a["who"]["identifier"]["value"] for a in event["agent"]] == ["bs.c", app.client_id]


# -- refresh, disconnecting ------------------------------------------------------------------


def test_refresh_tokens_rotate(world: World) -> None:
    app, code, verifier = launch(world)
    first = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    assert first.refresh_token is not None
    second = issuer(world).refresh(app, first.refresh_token, lambda _: True)
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.id_token is None and second.patient == "p-an"
    with pytest.raises(InvalidGrant):
        issuer(world).refresh(app, first.refresh_token, lambda _: True)
    other, _ = register(world)
    assert second.refresh_token is not None
    with pytest.raises(InvalidGrant):
        issuer(world).refresh(other, second.refresh_token, lambda _: True)
    with pytest.raises(InvalidGrant, match="no longer holds"):
        issuer(world).refresh(app, second.refresh_token, lambda _: False)
    app, code, verifier = launch(world, scope="patient/*.rs")
    assert issuer(world).exchange_code(app, code, REDIRECT, verifier).refresh_token is None


def test_an_online_refresh_token_ends_after_twelve_hours(world: World) -> None:
    app, code, verifier = launch(world, scope="online_access patient/*.rs")
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    assert issued.refresh_token is not None
    later = datetime.now(UTC) + timedelta(hours=13)
    with pytest.raises(InvalidGrant, match="expired"):
        issuer(world).refresh(app, issued.refresh_token, lambda _: True, now=later)


def test_the_citizen_disconnects_an_app_from_the_devices_page(world: World) -> None:
    app, code, verifier = launch(world)
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    grants = connected_apps(engine(world), agent_key(citizen()))
    assert [g.client_id for g in grants] == [app.client_id]
    stranger = sign_in(world, OTHER_PHONE)
    page = stranger.get("/portal/devices")
    assert app.name not in page.text
    path = f"/portal/devices/apps/{grants[0].grant_id}/disconnect"
    stranger.post(path, data={"csrf": csrf_of(page.text)})  # another citizen: nothing changes
    with fhir(world, issued.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 200
    mine = sign_in(world, PHONE)
    page = mine.get("/portal/devices")
    assert app.name in page.text and "Đọc hồ sơ sức khỏe của bạn" in page.text
    assert mine.post(path, data={}).status_code == 403  # no CSRF token
    done = mine.post(path, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    with fhir(world, issued.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 401
    assert issued.refresh_token is not None
    with pytest.raises(InvalidGrant):
        issuer(world).refresh(app, issued.refresh_token, lambda _: True)
    assert app.name not in mine.get("/portal/devices").text


def test_a_deactivated_app_loses_its_tokens(world: World) -> None:
    app, code, verifier = launch(world)
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    deactivate_app(engine(world), app.client_id)
    with fhir(world, issued.access_token) as client:
        assert client.get("/fhir/Patient/p-an").status_code == 401


# -- the pages and the token endpoint, over HTTP ----------------------------------------------


def test_the_consent_screen_in_vietnamese_allow_deny_and_csrf(world: World) -> None:
    app, _ = register(world)
    verifier, challenge = pkce()
    query = urlencode(params(app, challenge))
    anonymous = TestClient(world.app, base_url=BASE)
    page = anonymous.get(f"/auth/authorize?{query}")
    assert "Đăng nhập" in page.text and "/portal/sign-in?next=%2Fauth%2Fauthorize%3F" in page.text
    client = sign_in(world, PHONE)
    page = client.get(f"/auth/authorize?{query}")
    assert page.status_code == 200
    assert "Ứng dụng Sức khỏe Gia đình" in page.text and "127.0.0.1:9999" in page.text
    for words in ("Đọc hồ sơ sức khỏe của bạn", "Cho phép", "Từ chối"):
        assert words in page.text, words
    english = client.get(f"/auth/authorize?{query}&lang=en")
    assert "Read your health record" in english.text and "Allow" in english.text
    assert f'href="?{query.replace("&", "&amp;")}&amp;lang=vi"' in english.text
    form = {**params(app, challenge), "csrf": csrf_of(page.text)}
    assert client.post("/auth/authorize", data={**form, "csrf": "forged"}).status_code == 403
    denied = client.post(
        "/auth/authorize", data={**form, "decision": "deny"}, follow_redirects=False
    )
    back = urlsplit(denied.headers["location"])
    assert back.geturl().startswith(REDIRECT)
    assert parse_qs(back.query) == {"error": ["access_denied"], "state": ["st-123"]}
    forged = {**form, "decision": "allow", "patient": "p-binh"}
    refused = client.post("/auth/authorize", data=forged, follow_redirects=False)
    assert refused.status_code == 400 and "location" not in refused.headers
    with engine(world).connect() as conn:
        assert conn.execute(select(auth_app_grant)).first() is None  # nothing was granted
    allowed = client.post(
        "/auth/authorize", data={**form, "decision": "allow"}, follow_redirects=False
    )
    answer = parse_qs(urlsplit(allowed.headers["location"]).query)
    assert answer["state"] == ["st-123"]
    token = anonymous.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": app.client_id,
        },
    )
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    assert token.json()["patient"] == "p-an"
    again = anonymous.post(
        "/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": app.client_id,
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_bad_requests_are_shown_or_sent_back_never_to_an_unregistered_address(
    world: World,
) -> None:
    app, _ = register(world)
    _, challenge = pkce()
    client = sign_in(world, PHONE)
    evil = client.get(
        "/auth/authorize?"
        + urlencode(params(app, challenge, redirect_uri="https://evil.example/")),
        follow_redirects=False,
    )
    assert evil.status_code == 400 and "evil.example" not in evil.headers.get("location", "")
    plain = client.get(
        "/auth/authorize?" + urlencode(params(app, challenge, code_challenge_method="plain")),
        follow_redirects=False,
    )
    back = parse_qs(urlsplit(plain.headers["location"]).query)
    assert back["error"] == ["invalid_request"] and back["state"] == ["st-123"]


def test_a_confidential_app_authenticates_at_the_token_endpoint(world: World) -> None:
    app, secret = register(world, public=False)
    assert secret is not None
    verifier, challenge = pkce()
    request: AuthRequest = parse_request(engine(world), params(app, challenge), FHIR)
    form = {
        "grant_type": "authorization_code",
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": app.client_id,
    }
    with TestClient(world.app, base_url=BASE) as client:
        code = approve(engine(world), citizen(), request, None, None)
        without = client.post("/auth/token", data={**form, "code": code})
        assert without.status_code == 401 and without.json()["error"] == "invalid_client"
        code = approve(engine(world), citizen(), request, None, None)
        basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
        ok = client.post(
            "/auth/token", data={**form, "code": code}, headers={"Authorization": f"Basic {basic}"}
        )
        assert ok.status_code == 200, ok.text
        refresh = client.post(
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": ok.json()["refresh_token"],
                "client_id": app.client_id,
                "client_secret": secret,
            },
        )
        assert refresh.status_code == 200 and refresh.json()["access_token"]


def test_discovery_announces_the_app_launch(world: World) -> None:
    with TestClient(world.app, base_url=BASE) as client:
        config = client.get("/fhir/.well-known/smart-configuration").json()
        metadata = client.get("/fhir/metadata").json()
    assert config["authorization_endpoint"] == f"{BASE}/auth/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token"} <= set(config["grant_types_supported"])
    assert {
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "context-standalone-patient",
        "permission-patient",
        "permission-user",
        "permission-offline",
        "sso-openid-connect",
    } <= set(config["capabilities"])
    assert "launch-ehr" not in config["capabilities"]
    description = metadata["rest"][0]["security"]["description"]
    assert "SMART App Launch" in description
    assert re.search(r"/auth/authorize", description)


def test_a_clinician_signs_in_on_the_clinic_pages_and_comes_back_to_the_consent_screen(
    world: World,
) -> None:
    app, _ = register(world)
    verifier, challenge = pkce()
    asked = params(app, challenge, scope="openid fhirUser user/*.rs patient/*.rs launch/patient")
    here = f"/auth/authorize?{urlencode(asked)}"
    client = TestClient(world.app, base_url=BASE)
    form = {"username": "bs.b", "password": PASSWORD, "next": here}
    signed = client.post("/clinic/sign-in", data=form, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == here
    away = {**form, "next": "//evil.example/auth/authorize?x"}
    assert (
        "evil"
        not in TestClient(world.app, base_url=BASE)
        .post("/clinic/sign-in", data=away, follow_redirects=False)
        .headers["location"]
    )
    page = client.get(here)
    assert "Đọc các hồ sơ bạn được mở khi làm việc" in page.text
    assert "BS. Phạm Văn Dũng" in page.text and "patient/*.rs launch/patient" in page.text
    allowed = client.post(
        "/auth/authorize",
        data={**asked, "csrf": csrf_of(page.text), "decision": "allow"},
        follow_redirects=False,
    )
    code = parse_qs(urlsplit(allowed.headers["location"]).query)["code"][0]
    issued = issuer(world).exchange_code(app, code, REDIRECT, verifier)
    assert issued.scope == "openid user/*.rs" and issued.patient is None


def test_unfinished_launches_and_old_codes_are_cleared(world: World) -> None:
    app, code, verifier = launch(world)  # never exchanged
    kept, kept_code, kept_verifier = launch(world)
    issuer(world).exchange_code(kept, kept_code, REDIRECT, kept_verifier)
    request = parse_request(engine(world), params(app, pkce()[1]), FHIR)
    approve(
        engine(world), citizen(), request, None, None, now=datetime.now(UTC) + timedelta(days=2)
    )
    with engine(world).connect() as conn:
        grants = conn.execute(select(auth_app_grant.c.client_id, auth_app_grant.c.used)).all()
    assert sorted((g.client_id, g.used is None) for g in grants) == sorted(
        [(kept.client_id, False), (app.client_id, True)]  # the finished one and the new one
    )
    with pytest.raises(InvalidGrant, match="Unknown"):
        issuer(world).exchange_code(app, code, REDIRECT, verifier)


def test_codes_refresh_and_disconnect_on_postgresql(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    """Single use and rotation are decided by the database (one UPDATE each): the same on
    PostgreSQL, where a province runs."""
    name = f"sokhoe_smart_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    world = make_world(tmp_path, BASE, SqlStore(pg_server.create_database(name)))
    try:
        link(world)
        app, code, verifier = launch(world)
        first = issuer(world).exchange_code(app, code, REDIRECT, verifier)
        assert first.refresh_token is not None
        second = issuer(world).refresh(app, first.refresh_token, lambda _: True)
        with pytest.raises(InvalidGrant):
            issuer(world).refresh(app, first.refresh_token, lambda _: True)
        with fhir(world, second.access_token) as client:
            assert client.get("/fhir/Patient/p-an").status_code == 200
        with pytest.raises(InvalidGrant, match="already used"):
            issuer(world).exchange_code(app, code, REDIRECT, verifier)
        with fhir(world, second.access_token) as client:
            assert client.get("/fhir/Patient/p-an").status_code == 401
    finally:
        world.app.state.store.close()
        pg_server.drop_database(name)
