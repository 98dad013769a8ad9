"""Property-based fuzzing of the whole HTTP API from its OpenAPI description (schemathesis):
whatever the parameters, signed in or not, the server never answers 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sokhoe.config import Settings
from sokhoe.store import MemoryStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, platform_token

APP = create_app(Settings(base_url=BASE, database_url="sqlite://"), MemoryStore())
TOKEN = platform_token(APP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


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
    if path.startswith("/fhir") and path != "/fhir/metadata":
        assert response.status_code in (401, 404, 405, 422), (path, response.status_code)
