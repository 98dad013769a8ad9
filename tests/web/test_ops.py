"""What operators call: health, metrics, request ids and log lines without personal data."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from sokhoe.config import Settings
from sokhoe.logs import REQUEST_ID, JsonFormatter
from sokhoe.logs import config as log_config
from sokhoe.store import MemoryStore
from sokhoe.store.ports import FhirStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_PASSWORDS, platform_token

CCCD = "079090001234"


def _client(store: FhirStore) -> TestClient:
    settings = Settings(base_url=BASE, database_url="sqlite://", **FAST_PASSWORDS)
    return TestClient(create_app(settings, store), base_url=BASE)


@pytest.fixture
def api() -> Iterator[TestClient]:
    with _client(MemoryStore()) as c:
        yield c


def test_health_is_ready_when_the_database_answers(store: FhirStore) -> None:
    """On every backend: the readiness query is the store's own database."""
    with _client(store) as api:
        _ready(api)


def _ready(api: TestClient) -> None:
    r = api.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/health+json")
    assert r.json()["status"] == "pass"
    assert api.get("/health/live").json()["status"] == "pass"


def test_health_is_not_ready_when_the_database_does_not_answer(api: TestClient) -> None:
    """503 with the reason, so a front takes the worker out; liveness still passes (the
    process is fine, restarting it would not bring the database back)."""
    app = api.app  # type: ignore[attr-defined]
    real = app.state.store
    app.state.store = SimpleNamespace(writer=create_engine("sqlite:////nonexistent/dir/x.db"))
    try:
        r = api.get("/health")
        assert r.status_code == 503
        assert r.json() == {"status": "fail", "checks": {"database": [{"status": "fail"}]}}
        assert api.get("/health/live").status_code == 200
    finally:
        app.state.store = real


def test_metrics_are_refused_outside_the_monitoring_networks(api: TestClient) -> None:
    """The test client's address is no loopback address: refused, and says why."""
    r = api.get("/metrics")
    assert r.status_code == 403
    assert "monitoring" in r.json()["detail"]


def test_each_answer_carries_a_request_id(api: TestClient) -> None:
    given = api.get("/health/live", headers={"X-Request-Id": "nginx-7f3a9c01"})
    assert given.headers["x-request-id"] == "nginx-7f3a9c01"  # the front's, joined in logs
    made = api.get("/health/live").headers["x-request-id"]
    assert len(made) == 32 and int(made, 16) >= 0
    for forged in (b"a b c d e f g h", b"x" * 200, b"short", b"id\xe9-1234567\r\nX: 1"):
        r = api.get("/health/live", headers={"X-Request-Id": forged})
        assert r.headers["x-request-id"].encode() != forged  # never copied into the logs
        assert len(r.headers["x-request-id"]) == 32


def test_the_request_log_line_has_the_route_never_the_path_or_query(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A search by citizen ID leaves a log line with the route template, method, status,
    duration and request id: not the CCCD, not the resource id asked."""
    app = api.app  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {platform_token(app)}"}
    with caplog.at_level(logging.INFO, logger="sokhoe.requests"):
        api.get(f"/fhir/Patient?identifier=https://fhir.sokhoe.vn/sid/cccd|{CCCD}", headers=auth)
        api.get("/fhir/Patient/p-secret-7", headers=auth)
    records = [r for r in caplog.records if r.name == "sokhoe.requests"]
    assert len(records) == 2
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in records]
    assert [line["route"] for line in lines] == [
        "/fhir/{resource_type}",
        "/fhir/{resource_type}/{rid}",
    ]
    assert [line["status"] for line in lines] == [200, 404]
    text = " ".join(formatter.format(r) for r in records)
    assert CCCD not in text and "p-secret-7" not in text
    assert all(isinstance(line["ms"], float) for line in lines)


def test_the_json_formatter_writes_one_object_with_the_request_id() -> None:
    token = REQUEST_ID.set("req-12345678")
    try:
        record = logging.LogRecord("sokhoe.x", logging.WARNING, "f.py", 1, "Tệp %s", ("a",), None)
        record.route = "/fhir/{type}"
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    found = json.loads(line)
    assert found["message"] == "Tệp a" and found["level"] == "warning"
    assert found["request_id"] == "req-12345678" and found["route"] == "/fhir/{type}"


def test_the_server_logging_config_is_valid_for_both_formats() -> None:
    """Both configurations apply (uvicorn applies them in each worker); the test process's
    own logging is put back after, or a handler on a stream pytest closes would be left on
    the root logger for whatever logs at exit."""
    root = logging.getLogger()
    touched = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in [root, *touched]]
    try:
        for fmt in ("json", "text"):
            logging.config.dictConfig(log_config(fmt))
            handler = root.handlers[-1]
            assert isinstance(handler.formatter, JsonFormatter) == (fmt == "json")
            assert logging.getLogger("uvicorn.access").level == logging.WARNING
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
