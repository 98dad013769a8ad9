"""Property-based fuzzing of the whole HTTP API from its OpenAPI description (schemathesis):
whatever the parameters, signed in or not, as the platform or as a facility's system (on a
SQLite store holding another facility's patient), the server never answers 5xx, and a
facility's system never gets that patient's record back."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.config import Settings
from sokhoe.store import MemoryStore
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, platform_token

APP = create_app(Settings(base_url=BASE, database_url="sqlite://"), MemoryStore())
TOKEN = platform_token(APP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)

_DIR = Path(tempfile.mkdtemp(prefix="sokhoe-fuzz-"))
FACILITY_APP = create_app(
    Settings(base_url=BASE, database_url="sqlite://", var_dir=_DIR),
    SqlStore(f"sqlite:///{_DIR / 'fuzz.db'}"),
)
SECRET = "Bí Mật Người Khác"
"""The name of facility B's patient: never in an answer to facility A's system."""


def _facility_token(facility: str) -> str:
    tokens = FACILITY_APP.state.tokens
    new = create_client(tokens.engine, f"HIS {facility}", ["system/*.cruds"], facility)
    return str(
        tokens.issue(authenticate_client(tokens.engine, new.client_id, new.client_secret))[0]
    )


with TestClient(FACILITY_APP, base_url=BASE) as _setup:
    _b = {"Authorization": f"Bearer {_facility_token('01002')}"}
    _qr = f"001301004567|{SECRET}|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022"
    _body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": _qr}]}
    assert _setup.post("/fhir/Patient/$check-in", json=_body, headers=_b).status_code == 201
FACILITY_TOKEN = _facility_token("79001")
facility_schema = schemathesis.openapi.from_asgi("/openapi.json", FACILITY_APP)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error]
    )


@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_anonymous(case: Any) -> None:
    response = case.call_and_validate(checks=[not_a_server_error])
    path = case.path
    # what a client reads before it can sign in (the CapabilityStatement, SMART and OpenID
    # discovery)
    public = {
        "/fhir/metadata",
        "/fhir/.well-known/smart-configuration",
        "/fhir/.well-known/openid-configuration",
    }
    if path.startswith("/fhir") and path not in public:
        assert response.status_code in (401, 404, 405, 422), (path, response.status_code)


@facility_schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_no_leaks_as_a_facility(case: Any) -> None:
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {FACILITY_TOKEN}"}, checks=[not_a_server_error]
    )
    assert SECRET not in response.text, (case.method, case.path)
