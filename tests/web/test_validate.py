"""``$validate`` at the system, type and instance level: the same checks as a write, nothing
stored, 200 with the outcome whether valid or not, 4xx only when it cannot validate.
See: https://hl7.org/fhir/R4/resource-operation-validate.html"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.config import Settings
from sokhoe.web.app import create_app
from tests.api_helpers import client_auth
from tests.conftest import BASE, platform_token, sqlite_store

FHIR = {"Content-Type": "application/fhir+json"}
GOOD: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://fhir.sokhoe.vn/sid/cccd", "value": "001085012345"}],
    "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
    "gender": "male",
    "birthDate": "1985-03-15",
}
BAD: dict[str, Any] = {**GOOD, "gender": "nam", "birthDate": "1985-02-30"}


@pytest.fixture
def api(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, sqlite_store(request, tmp_path / "validate.db"))
    with TestClient(app, base_url=BASE) as c:
        c.headers["Authorization"] = f"Bearer {platform_token(app)}"
        yield c


def wrapped(resource: dict[str, Any] | None, **values: str) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "resource", "resource": resource}] if resource else []
    for name, value in values.items():
        kind = "valueCode" if name == "mode" else "valueUri"
        params.append({"name": name, kind: value})
    return {"resourceType": "Parameters", "parameter": params}


def errors(outcome: dict[str, Any]) -> list[dict[str, Any]]:
    assert outcome["resourceType"] == "OperationOutcome"
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def stored(api: TestClient) -> int:
    return int(api.get("/fhir/Patient", params={"_summary": "count"}).json()["total"])


@pytest.mark.parametrize("path", ["/fhir/Patient/$validate", "/fhir/$validate"])
def test_a_valid_resource_is_ok_directly_or_wrapped_and_nothing_is_stored(
    api: TestClient, path: str
) -> None:
    for body in (GOOD, wrapped(GOOD), wrapped(GOOD, mode="create")):
        r = api.post(path, json=body, headers=FHIR)
        assert r.status_code == 200, r.text
        assert errors(r.json()) == []
        assert r.json()["issue"][0]["severity"] == "information"
    assert stored(api) == 0


def test_an_invalid_resource_answers_200_with_each_error_where_it_is(api: TestClient) -> None:
    for body in (BAD, wrapped(BAD)):
        r = api.post("/fhir/Patient/$validate", json=body, headers=FHIR)
        assert r.status_code == 200
        where = {tuple(i.get("expression", [])) for i in errors(r.json())}
        assert ("Patient.gender",) in where and ("Patient.birthDate",) in where
    # the platform's own rules too: a malformed CCCD, as a create would refuse it
    cccd = {**GOOD, "identifier": [{"system": GOOD["identifier"][0]["system"], "value": "123"}]}
    found = errors(api.post("/fhir/$validate", json=cccd, headers=FHIR).json())
    assert [i["expression"] for i in found] == [["Patient.identifier[0].value"]]
    refused = api.post("/fhir/Patient", json=cccd, headers=FHIR)
    assert refused.status_code == 422  # the create refuses what $validate reports
    assert [i["expression"] for i in errors(refused.json())] == [["Patient.identifier[0].value"]]
    assert stored(api) == 0


def test_the_type_in_the_url_must_be_the_resources(api: TestClient) -> None:
    found = errors(api.post("/fhir/Observation/$validate", json=GOOD, headers=FHIR).json())
    assert any("does not match the URL type" in i["diagnostics"] for i in found)
    assert api.post("/fhir/Nonsense/$validate", json=GOOD, headers=FHIR).status_code == 404


def test_update_and_delete_modes_check_the_instance(api: TestClient) -> None:
    rid = api.post("/fhir/Patient", json=GOOD, headers=FHIR).json()["id"]
    same = {**GOOD, "id": rid}
    ok = api.post(f"/fhir/Patient/{rid}/$validate", json=wrapped(same, mode="update"))
    assert ok.status_code == 200 and errors(ok.json()) == []
    other = api.post(
        f"/fhir/Patient/{rid}/$validate", json=wrapped({**GOOD, "id": "x"}, mode="update")
    )
    assert any(i["expression"] == ["Patient.id"] for i in errors(other.json()))
    no_id = api.post(f"/fhir/Patient/{rid}/$validate?mode=update", json=GOOD, headers=FHIR)
    assert any(i["code"] == "required" for i in errors(no_id.json()))
    gone = api.post("/fhir/Patient/nobody/$validate", json=wrapped(None, mode="delete"))
    assert gone.status_code == 200 and errors(gone.json())[0]["code"] == "not-found"
    there = api.post(f"/fhir/Patient/{rid}/$validate?mode=delete")
    assert there.status_code == 200 and errors(there.json()) == []
    assert api.get(f"/fhir/Patient/{rid}").json()["meta"]["versionId"] == "1"  # nothing changed


def test_it_cannot_validate_without_a_resource_or_with_a_mode_that_makes_no_sense(
    api: TestClient,
) -> None:
    assert api.post("/fhir/Patient/$validate", json=wrapped(None, mode="create")).status_code == 400
    assert api.post("/fhir/Patient/$validate?mode=update", json=GOOD).status_code == 400
    assert api.post("/fhir/Patient/$validate?mode=replace", json=GOOD).status_code == 400
    twice = wrapped(GOOD)
    twice["parameter"] *= 2
    assert api.post("/fhir/Patient/$validate", json=twice).status_code == 400
    assert api.post("/fhir/Patient/$validate", content=b"[1, 2]", headers=FHIR).status_code == 400


def test_profiles_the_server_does_not_know_are_said_not_silently_passed(api: TestClient) -> None:
    unknown = "https://example.org/StructureDefinition/other-patient"
    r = api.post("/fhir/Patient/$validate", json=wrapped(GOOD, profile=unknown)).json()
    assert [i["code"] for i in errors(r)] == ["not-supported"]
    core = "http://hl7.org/fhir/StructureDefinition/Patient"
    assert (
        errors(api.post("/fhir/Patient/$validate", json=wrapped(GOOD, profile=core)).json()) == []
    )
    claimed = {**GOOD, "meta": {"profile": [unknown]}}
    answer = api.post("/fhir/Patient/$validate", json=claimed).json()
    assert errors(answer) == []
    warned = [i for i in answer["issue"] if i["severity"] == "warning"]
    assert warned[0]["expression"] == ["Patient.meta.profile[0]"]


def test_a_facility_cannot_learn_of_a_record_it_may_not_see_by_validating_against_it(
    api: TestClient,
) -> None:
    rid = api.post("/fhir/Patient", json=GOOD, headers=FHIR).json()["id"]
    other = client_auth(api, ["system/*.cruds"], "01002")
    # the existence check is a read through the door: refused (and audited) as a read is,
    # and it tells no more than a read would (an unknown id: not found)
    refused = api.post(f"/fhir/Patient/{rid}/$validate?mode=delete", headers=other)
    assert refused.status_code == 403, refused.text
    assert api.get(f"/fhir/Patient/{rid}", headers=other).status_code == 403
    unknown = api.post("/fhir/Patient/nobody/$validate?mode=delete", headers=other)
    assert errors(unknown.json())[0]["code"] == "not-found"
    # the type level reads nothing: a facility may check its own output
    assert api.post("/fhir/Patient/$validate", json=GOOD, headers=other).status_code == 200
    assert TestClient(api.app, base_url=BASE).post("/fhir/$validate", json=GOOD).status_code == 401


def test_the_capability_statement_lists_validate_for_every_type_and_the_system(
    api: TestClient,
) -> None:
    meta = api.get("/fhir/metadata").json()
    rest = meta["rest"][0]
    assert {
        "name": "validate",
        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    } in rest["operation"]
    observation = next(r for r in rest["resource"] if r["type"] == "Observation")
    assert "validate" in [o["name"] for o in observation["operation"]]


def test_only_r4_types_are_listed_or_accepted(api: TestClient) -> None:
    listed = {r["type"] for r in api.get("/fhir/metadata").json()["rest"][0]["resource"]}
    assert "SubscriptionStatus" not in listed and {"Patient", "Subscription"} <= listed
    body = {"resourceType": "SubscriptionStatus", "status": "active"}
    found = errors(api.post("/fhir/$validate", json=body).json())
    assert found[0]["expression"] == ["SubscriptionStatus.resourceType"]
