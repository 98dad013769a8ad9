"""The core profiles over HTTP: a write claiming VNCorePatient is refused when it does not
conform (and the store is left as it was), ``$validate`` answers the same with
``profile=URL``, the profiles are published as StructureDefinitions and listed in the
CapabilityStatement.
See: https://hl7.org/fhir/R4/resource-operation-validate.html"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.bootstrap import publish_registry
from sokhoe.config import Settings
from sokhoe.ig.urls import ORGANIZATION, PATIENT
from sokhoe.web.app import create_app
from tests.api_helpers import client_auth
from tests.conftest import BASE, platform_token, sqlite_store
from tests.ig.test_check import GOOD, with_identifier

FHIR = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def api(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, sqlite_store(request, tmp_path / "ig.db"))
    with TestClient(app, base_url=BASE) as c:
        c.headers["Authorization"] = f"Bearer {platform_token(app)}"
        yield c


def issues(outcome: dict[str, Any], *severities: str) -> list[tuple[str, ...]]:
    assert outcome["resourceType"] == "OperationOutcome"
    return [tuple(i.get("expression", [])) for i in outcome["issue"] if i["severity"] in severities]


def count(api: TestClient) -> int:
    return int(api.get("/fhir/Patient", params={"_summary": "count"}).json()["total"])


def test_a_write_claiming_the_profile_is_checked_and_a_refusal_changes_nothing(
    api: TestClient,
) -> None:
    created = api.post("/fhir/Patient", json=GOOD, headers=FHIR)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    # conforms to R4 and the platform's rules, not to the profile: two CMND, one allowed
    extra = copy.deepcopy(GOOD)
    extra["identifier"].append({"system": GOOD["identifier"][1]["system"], "value": "987654321"})
    refused = api.put(f"/fhir/Patient/{rid}", json={**extra, "id": rid}, headers=FHIR)
    assert refused.status_code == 422
    assert issues(refused.json(), "error") == [("Patient.identifier[4]",)]
    assert api.get(f"/fhir/Patient/{rid}").json()["meta"]["versionId"] == "1"
    assert api.post("/fhir/Patient", json=extra, headers=FHIR).status_code == 422
    assert count(api) == 1
    # the same resource claiming no profile is not held to it
    unclaimed = {k: v for k, v in extra.items() if k != "meta"}
    assert api.post("/fhir/Patient", json=unclaimed, headers=FHIR).status_code == 201
    # nor can a transaction slip one in: the whole bundle is refused
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": GOOD, "request": {"method": "POST", "url": "Patient"}},
            {"resource": extra, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    assert api.post("/fhir", json=bundle, headers=FHIR).status_code in (400, 422)
    assert count(api) == 2


@pytest.mark.parametrize(("index", "value"), [(0, "991085012345"), (1, "0123"), (2, "DN6")])
def test_validate_reports_a_malformed_identifier_where_it_is(
    api: TestClient, index: int, value: str
) -> None:
    bad = with_identifier(index, value)
    where = (f"Patient.identifier[{index}].value",)
    answer = api.post("/fhir/Patient/$validate", json=bad, headers=FHIR)
    assert answer.status_code == 200
    assert set(issues(answer.json(), "error")) == {where}
    assert any(
        i["diagnostics"].startswith("Constraint failed: vn-") for i in answer.json()["issue"]
    )
    assert api.post("/fhir/Patient", json=bad, headers=FHIR).status_code == 422
    assert count(api) == 0


def test_validate_against_a_profile_named_in_the_request(api: TestClient) -> None:
    unclaimed = {k: v for k, v in GOOD.items() if k != "meta"}
    unclaimed["extension"] = [
        {
            "url": "https://fhir.sokhoe.vn/StructureDefinition/ethnicity",
            "valueCodeableConcept": {
                "coding": [{"system": "https://fhir.sokhoe.vn/CodeSystem/ethnicity", "code": "99"}]
            },
        }
    ]
    plain = api.post("/fhir/Patient/$validate", json=unclaimed, headers=FHIR).json()
    assert issues(plain, "error") == []
    asked = api.post(f"/fhir/Patient/$validate?profile={PATIENT}", json=unclaimed, headers=FHIR)
    assert issues(asked.json(), "error") == [
        ("Patient.extension[0].value.ofType(CodeableConcept)",)
    ]
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": unclaimed},
            {"name": "profile", "valueCanonical": ORGANIZATION},
        ],
    }
    other = api.post("/fhir/$validate", json=wrapped, headers=FHIR).json()
    assert [i["code"] for i in other["issue"] if i["severity"] == "error"] == ["invalid"]
    unknown = {**GOOD, "meta": {"profile": ["https://example.org/StructureDefinition/p"]}}
    warned = api.post("/fhir/Patient/$validate", json=unknown, headers=FHIR).json()
    assert issues(warned, "error") == []
    assert issues(warned, "warning") == [("Patient.meta.profile[0]",)]


def test_the_profiles_are_published_and_listed_in_the_capability_statement(
    api: TestClient,
) -> None:
    publish_registry(api.app.state.repository)  # type: ignore[attr-defined]
    sd = api.get("/fhir/StructureDefinition/vn-core-patient")
    assert sd.status_code == 200 and sd.json()["url"] == PATIENT
    assert len(sd.json()["snapshot"]["element"]) > 90
    found = api.get("/fhir/StructureDefinition", params={"url": PATIENT}).json()
    assert found["total"] == 1
    resources = {r["type"]: r for r in api.get("/fhir/metadata").json()["rest"][0]["resource"]}
    assert resources["Patient"]["supportedProfile"] == [PATIENT]
    assert resources["Organization"]["supportedProfile"] == [ORGANIZATION]
    assert "supportedProfile" not in resources["Observation"]
    # a facility cannot rewrite the profile the server checks its writes against
    facility = client_auth(api, ["system/*.cruds"], "01002")
    loose = {**sd.json(), "snapshot": {"element": sd.json()["snapshot"]["element"][:1]}}
    put = api.put("/fhir/StructureDefinition/vn-core-patient", json=loose, headers=facility)
    assert put.status_code == 403
    assert api.get("/fhir/StructureDefinition/vn-core-patient").json() == sd.json()
