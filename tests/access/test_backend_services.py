"""SMART Backend Services: discovery, and a connected system signing its own token request
(private_key_jwt) — with the ways to forge or replay one refused.
See: https://hl7.org/fhir/smart-app-launch/backend-services.html"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from typer.testing import CliRunner

from sokhoe.access.client_assertion import ASSERTION_TYPE, register_keys
from sokhoe.access.clients import create_client, deactivate_client
from sokhoe.cli import app as cli
from sokhoe.config import Settings
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, sqlite_store

TOKEN_URL = f"{BASE}/auth/token"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid}


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Iterator[Any]:
    application = create_app(settings, sqlite_store(request, tmp_path / "smart.db"))
    engine = application.state.tokens.engine
    made = create_client(engine, "HIS Bệnh viện A", ["system/*.rs"], "79001")
    register_keys(
        engine, made.client_id, {"keys": [public_jwk(EC_KEY, "ec-1"), public_jwk(RSA_KEY, "rsa-1")]}
    )
    with TestClient(application, base_url=BASE) as client:
        yield client, made.client_id


def assertion(
    client_id: str, key: Any = EC_KEY, kid: str = "ec-1", alg: str = "ES384", **changes: Any
) -> str:
    claims: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": int(time.time()) + 240,
        "jti": uuid.uuid4().hex,
        **changes,
    }
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm=alg, headers={"kid": kid}
    )


def hs384(client_id: str, secret: bytes) -> str:
    """The algorithm-confusion forgery: HMAC keyed with the public key (libraries refuse to
    make one, so it is made by hand)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": int(time.time()) + 60,
        "jti": "x",
    }
    signing = f"{part({'alg': 'HS384', 'kid': 'rsa-1', 'typ': 'JWT'})}.{part(claims)}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha384).digest()
    return f"{signing}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def ask(client: TestClient, signed: str, scope: str | None = None) -> Any:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    if scope:
        form["scope"] = scope
    return client.post("/auth/token", data=form)


def test_discovery_says_how_to_sign_in(world: Any) -> None:
    client, _ = world
    for path in ("/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration"):
        found = client.get(path)
        assert found.status_code == 200
        body = found.json()
        assert body["token_endpoint"] == TOKEN_URL
        assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
        assert set(body["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
        assert "client-confidential-asymmetric" in body["capabilities"]
        assert body["authorization_endpoint"] == f"{BASE}/auth/authorize"  # app launch too


def test_a_system_signs_in_with_its_key_and_reads(world: Any) -> None:
    client, client_id = world
    for signed in (assertion(client_id), assertion(client_id, RSA_KEY, "rsa-1", "RS384")):
        answer = ask(client, signed, "system/Patient.rs")
        assert answer.status_code == 200, answer.text
        assert answer.json()["scope"] == "system/Patient.rs"
    token = answer.json()["access_token"]
    assert (
        client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )


def test_forged_stale_replayed_or_misdirected_assertions_are_refused(world: Any) -> None:
    client, client_id = world
    other_key = ec.generate_private_key(ec.SECP384R1())
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = {
        "another key under the registered kid": assertion(client_id, other_key),
        "meant for another server": assertion(client_id, aud="https://other.example/token"),
        "expired": assertion(client_id, exp=int(time.time()) - 120),
        "too long-lived": assertion(client_id, exp=int(time.time()) + 3600),
        "sub is not iss": assertion(client_id, sub="c-someone-else"),
        "another client's id": assertion("c-0000000000000000"),
        "no jti": assertion(client_id, jti=None),
        "HS384 with the public key as secret": hs384(client_id, public_pem),
        "alg none": jwt.encode(
            {
                "iss": client_id,
                "sub": client_id,
                "aud": TOKEN_URL,
                "exp": int(time.time()) + 60,
                "jti": "y",
            },
            None,
            algorithm="none",
        ),
        "RS384 claimed for the EC key": assertion(client_id, RSA_KEY, "ec-1", "RS384"),
        "not a JWT": "abc.def",
    }
    for why, signed in forged.items():
        answer = ask(client, signed)
        assert answer.status_code == 401, (why, answer.text)
        assert "access_token" not in answer.text
    once = assertion(client_id)
    assert ask(client, once).status_code == 200
    assert ask(client, once).status_code == 401  # a replay
    assert ask(client, assertion(client_id), "system/*.cruds").status_code == 401  # not granted
    bad_type = client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "x",
            "client_assertion": once,
        },
    )
    assert bad_type.status_code == 400
    deactivate_client(client.app.state.tokens.engine, client_id)
    assert ask(client, assertion(client_id)).status_code == 401


def test_keys_are_registered_public_only_and_through_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    store = SqlStore(url)
    made = create_client(store.writer, "LIS", ["system/Observation.cruds"], "79001")
    private = json.loads(ECAlgorithm.to_jwk(EC_KEY))
    for wrong in (
        {"keys": []},
        {"keys": [{**private, "kid": "k"}]},
        {"keys": [{"kty": "oct", "k": "x", "kid": "k"}]},
        {"keys": [public_jwk(EC_KEY, "a"), public_jwk(EC_KEY, "a")]},
    ):
        with pytest.raises(ValueError):
            register_keys(store.writer, made.client_id, wrong)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(EC_KEY, "ec-1")]}), encoding="utf-8")
    done = CliRunner().invoke(
        cli, ["client", "keys", made.client_id, "--jwks", str(path), "--db", url]
    )
    assert done.exit_code == 0 and "1 public key" in done.stdout, done.output
    path.write_text(json.dumps({"keys": [{**private, "kid": "p"}]}), encoding="utf-8")
    refused = CliRunner().invoke(
        cli, ["client", "keys", made.client_id, "--jwks", str(path), "--db", url]
    )
    assert refused.exit_code == 2 and "private key" in refused.output
