"""Generated bundles never read or change a patient the caller may not see.

Hypothesis builds transaction and batch bundles mixing entries about two patients facility A
registered and two facility B registered (creates, updates that re-point a result, deletes,
conditional updates, reads and searches), and sends them as A's connected system. Whatever
the mix: B's patients' records stay exactly as they were, nothing of them appears in any
answer, and a transaction that touches them in any entry is refused whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, module_store

pytestmark = pytest.mark.xdist_group("bundle-property")

SECRET = 666.6
"""The value of every result about B's patients: it must never appear in A's answers."""
QRS = {
    "v1": "079090001111|Nguyễn Văn Một|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021",
    "v2": "079091002222|Nguyễn Văn Hai|15031991|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021",
    "i1": "001301003333|Bí Mật Ba|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022",
    "i2": "001302004444|Bí Mật Bốn|05112002|Nữ|Xã Đông Anh, Hà Nội|20082022",
}
VISIBLE, INVISIBLE = ("v1", "v2"), ("i1", "i2")


@dataclass
class World:
    api: TestClient
    store: SqlStore
    a: dict[str, str]
    patients: dict[str, str]
    results: dict[str, str]

    def state(self, who: tuple[str, ...] | None = None) -> list[tuple[str, str, int, Any]]:
        """Every version (with content) of the given people's records, or of everything."""
        with self.store.begin() as tx:
            found, _ = tx.history(None, None, None, 100_000, 0)
        ids = None if who is None else {self.patients[p] for p in who}
        return sorted(
            (r.resource_type, r.id, r.version_id, r.content)
            for r in found
            if ids is None or r.patient_id in ids
        )


def _obs(pid: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "unit": "/min"},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("bundles")
    store = module_store(request, tmp, "bundles")
    app = create_app(Settings(base_url=BASE, database_url="sqlite://", var_dir=tmp), store)
    with TestClient(app, base_url=BASE) as api:
        tokens: TokenService = app.state.tokens

        def client(facility: str) -> dict[str, str]:
            new = create_client(tokens.engine, f"HIS {facility}", ["system/*.cruds"], facility)
            principal = authenticate_client(tokens.engine, new.client_id, new.client_secret)
            return {"Authorization": f"Bearer {tokens.issue(principal)[0]}"}

        a, b = client("79001"), client("01002")
        patients, results = {}, {}
        for key, qr in QRS.items():
            who = a if key in VISIBLE else b
            body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": qr}]}
            patients[key] = api.post("/fhir/Patient/$check-in", json=body, headers=who).json()["id"]
            value = 70.0 if key in VISIBLE else SECRET
            made = api.post("/fhir/Observation", json=_obs(patients[key], value), headers=who)
            results[key] = made.json()["id"]
        yield World(api, store, a, patients, results)
    store.close()


PEOPLE = st.sampled_from(VISIBLE + INVISIBLE)


@st.composite
def entries(draw: st.DrawFn, w: World) -> tuple[dict[str, Any], bool]:
    """One bundle entry, and whether it touches one of B's patients."""
    kind = draw(st.sampled_from(["create", "repoint", "delete", "conditional", "read", "search"]))
    target, other = draw(PEOPLE), draw(PEOPLE)
    pid, oid = w.patients[target], w.results[target]
    touches = target in INVISIBLE
    if kind == "create":
        entry = {"resource": _obs(pid, 71), "request": {"method": "POST", "url": "Observation"}}
    elif kind == "repoint":
        body = {**_obs(w.patients[other], 72), "id": oid}
        entry = {"resource": body, "request": {"method": "PUT", "url": f"Observation/{oid}"}}
        touches = touches or other in INVISIBLE
    elif kind == "delete":
        slash = draw(st.booleans())
        entry = {"request": {"method": "DELETE", "url": f"{'/' if slash else ''}Observation/{oid}"}}
    elif kind == "conditional":
        body = _obs(w.patients[other], 73)
        entry = {"resource": body, "request": {"method": "PUT", "url": f"Observation?_id={oid}"}}
        touches = touches or other in INVISIBLE
    elif kind == "read":
        entry = {"request": {"method": "GET", "url": f"Observation/{oid}"}}
    else:
        entry = {"request": {"method": "GET", "url": f"Observation?patient={pid}"}}
        touches = False  # a search finds nothing it may not see: it is not refused
    return entry, touches


def _check(w: World, data: st.DataObject) -> None:
    batch = data.draw(st.booleans(), label="batch")
    drawn = data.draw(
        st.lists(entries(w), min_size=1, max_size=5, unique_by=lambda e: str(e[0]["request"])),
        label="entries",
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "batch" if batch else "transaction",
        "entry": [e for e, _ in drawn],
    }
    hidden_before = w.state(INVISIBLE)
    everything_before = w.state()
    r = w.api.post("/fhir", json=bundle, headers=w.a)
    assert str(SECRET) not in r.text and "Bí Mật" not in r.text
    assert w.state(INVISIBLE) == hidden_before
    touched = any(t for _, t in drawn)
    if batch:
        assert r.status_code == 200, r.text
        for (_, t), answer in zip(drawn, r.json()["entry"], strict=True):
            if t:
                assert answer["response"]["status"].startswith("403"), answer
    elif touched:  # refused whole (403, or a fault of the bundle found first): all or nothing
        assert r.status_code in (400, 403), r.text
        assert w.state() == everything_before
    else:
        assert r.status_code in (200, 400, 404, 409, 412), r.text


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_bundles_neither_read_nor_change_another_facility_s_patients(
    world: World, data: st.DataObject
) -> None:
    _check(world, data)
