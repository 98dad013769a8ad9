"""``sokhoe serve --workers N``: several processes, one database, one audit chain.

The ``client`` suite runs against a served app with ``make test-workers``
(``SOKHOE_TEST_WORKERS=2``); here the parts only several processes have: the settings reach
each worker, and a concurrent load through both workers leaves one unbroken audit chain with
one row per answered request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from sokhoe.access.audit import AuditLog
from sokhoe.access.clients import create_client
from sokhoe.access.db import access_engine
from sokhoe.cli import _worker_count
from sokhoe.config import NationalLogin, Settings
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from tests.conftest import BASE, FAST_PASSWORDS, module_store
from tests.served import Served, served, worker_pids

QR = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"


def test_settings_reach_each_worker_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every kind of field (text, number, flag, path, list, secret, nested secret) reads back
    equal; defaults are not written at all."""
    given = Settings(
        database_url="postgresql+psycopg://u:p@db/sokhoe",
        var_dir=Path("/srv/sokhoe/var"),
        security=False,
        oidc_timeout=3.5,
        cors_origins=["https://his.example.vn"],
        key_encryption_key=SecretStr("a2V5"),
        national_rx_facilities={"79001": NationalLogin(code="lt-1", password=SecretStr("pw"))},
    )
    env = given.environment()
    assert "SOKHOE_TOKEN_MINUTES" not in env  # a default
    assert env["SOKHOE_KEY_ENCRYPTION_KEY"] == "a2V5"  # in clear, for the worker only
    for name in list(os.environ):
        if name.startswith("SOKHOE_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again == given
    assert again.national_rx_facilities["79001"].password.get_secret_value() == "pw"


def test_worker_count_defaults_to_the_cores_and_refuses_an_in_memory_store() -> None:
    assert _worker_count(None, "sqlite:///var/sokhoe.db") == (os.cpu_count() or 1)
    assert _worker_count(3, "sqlite:///var/sokhoe.db") == 3
    assert _worker_count(None, "sqlite://") == 1
    with pytest.raises(Exception, match="in-memory"):
        _worker_count(2, "sqlite://")


@pytest.fixture(params=["sqlite", "postgres"])
def app_served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Served, str]]:
    store: SqlStore = module_store(request, tmp_path, "workers")
    url = str(store.url)
    store.close()
    settings = Settings(base_url=BASE, database_url=url, var_dir=tmp_path, **FAST_PASSWORDS)
    with served(settings, 2, tmp_path / "server.log") as running:
        yield running, url


def _token(base: str, engine: Any, facility: str) -> dict[str, str]:
    new = create_client(engine, f"HIS {facility}", ["system/*.cruds"], facility)
    form = {
        "grant_type": "client_credentials",
        "client_id": new.client_id,
        "client_secret": new.client_secret,
    }
    r = httpx.post(f"{base}/auth/token", data=form)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_concurrent_load_through_two_workers_leaves_one_verifiable_chain(
    app_served: tuple[Served, str],
) -> None:
    running, url = app_served
    assert len(worker_pids(running.pid)) == 2
    store = SqlStore(url, migrate_schema=False)
    engine = access_engine(store)
    try:
        auth = _token(running.url, engine, "79001")
        with httpx.Client(base_url=running.url, headers=auth, timeout=60) as http:
            body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": QR}]}
            pid = http.post("/fhir/Patient/$check-in", json=body).json()["id"]
        before = _rows(engine)

        def one(i: int) -> int:
            with httpx.Client(base_url=running.url, headers=auth, timeout=60) as http:
                if i % 3 == 0:
                    obs = _observation(pid, 60 + i)
                    return http.post("/fhir/Observation", json=obs).status_code
                if i % 3 == 1:
                    return http.get(f"/fhir/Patient/{pid}").status_code
                return http.get("/fhir/Observation", params={"subject": pid}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(120)))
        assert sorted(set(codes)) == [200, 201], codes
        assert _rows(engine) - before == len(codes)  # one audit row per answered request
        report = AuditLog(engine).verify()
        assert report.ok, report
        # both workers' counters, added up by the scrape (Prometheus' multiprocess mode)
        scraped = httpx.get(f"{running.url}/metrics").text
        answered = _samples(scraped, "sokhoe_http_requests_total")
        fhir = {k: v for k, v in answered.items() if k[1].startswith("/fhir/{")}
        assert sum(fhir.values()) == len(codes)
        assert _samples(scraped, "sokhoe_workers") == {(): 2.0}
    finally:
        store.close()


def _samples(text: str, name: str) -> dict[tuple[str, ...], float]:
    """``name``'s samples in a Prometheus scrape, by their label values."""
    return {
        tuple(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def _rows(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_event)).scalar_one())


def _observation(pid: str, value: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "unit": "/min"},
    }
