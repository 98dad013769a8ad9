"""``POST /fhir/Patient/$match`` over HTTP: Parameters in, a graded searchset Bundle out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.config import Settings
from sokhoe.mpi.identifiers import CCCD
from sokhoe.operations.match import MATCH_GRADE
from sokhoe.store import MemoryStore
from sokhoe.web.app import create_app
from tests.conftest import platform_token

AN: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [{"family": "Nguyễn", "given": ["Văn", "Khải"]}],
    "gender": "male",
    "birthDate": "1990-03-15",
    "telecom": [{"system": "phone", "value": "0912345678"}],
    "address": [{"city": "Phường Bến Thành", "state": "Thành phố Hồ Chí Minh"}],
    "identifier": [{"system": CCCD, "value": "079090001234"}],
}
NO_ID = {k: v for k, v in AN.items() if k != "identifier"}


@pytest.fixture
def api() -> Iterator[TestClient]:
    app = create_app(
        Settings(base_url="http://testserver", database_url="sqlite://"), MemoryStore()
    )
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {platform_token(app)}"
        client.put("/fhir/Patient/an", json={**AN, "id": "an"}).raise_for_status()
        near = {**NO_ID, "id": "an2", "name": [{"text": "Nguyen Van Khai"}], "birthDate": "1990"}
        near["telecom"] = [{"system": "phone", "value": "0987654321"}]
        client.put("/fhir/Patient/an2", json=near).raise_for_status()
        yield client


def _params(patient: Any, **extra: Any) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "resource", "resource": patient}]
    for name, value in extra.items():
        key = "valueBoolean" if isinstance(value, bool) else "valueInteger"
        params.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": params}


def test_match_returns_graded_entries_ordered_by_score(api: TestClient) -> None:
    r = api.post("/fhir/Patient/$match", json=_params(AN))
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    entries = bundle["entry"]
    assert [e["resource"]["id"] for e in entries][:2] == ["an", "an2"]
    first = entries[0]
    assert first["fullUrl"] == "http://testserver/fhir/Patient/an"
    assert first["search"]["mode"] == "match"
    assert first["search"]["score"] == 1.0
    assert first["search"]["extension"] == [{"url": MATCH_GRADE, "valueCode": "certain"}]
    scores = [e["search"]["score"] for e in entries]
    assert scores == sorted(scores, reverse=True)


def test_only_certain_matches_and_count(api: TestClient) -> None:
    r = api.post("/fhir/Patient/$match", json=_params(AN))
    grades = [e["search"]["extension"][0]["valueCode"] for e in r.json()["entry"]]
    assert grades[:2] == ["certain", "probable"]
    r = api.post("/fhir/Patient/$match", json=_params(AN, onlyCertainMatches=True))
    assert [e["resource"]["id"] for e in r.json()["entry"]] == ["an"]
    r = api.post("/fhir/Patient/$match", json=_params(NO_ID, count=1))
    assert len(r.json()["entry"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Parameters", "parameter": []},
        {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {}}]},
        _params(AN, count=0),
        {
            **_params(AN),
            "parameter": [*_params(AN)["parameter"], {"name": "count", "valueString": "x"}],
        },
    ],
)
def test_bad_input_is_400_outcome(api: TestClient, body: dict[str, Any]) -> None:
    r = api.post("/fhir/Patient/$match", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_invalid_patient_is_refused(api: TestClient) -> None:
    r = api.post("/fhir/Patient/$match", json=_params({**AN, "birthDate": "15/03/1990"}))
    assert r.status_code in (400, 422)
    assert r.json()["resourceType"] == "OperationOutcome"
