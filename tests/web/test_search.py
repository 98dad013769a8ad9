"""FHIR search semantics through the REST API, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

CCCD = "https://fhir.sokhoe.vn/sid/cccd"


def _post(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


PEOPLE = {
    "an": ("Nguyễn", ["Văn", "An"], "male", "1990-05-17", "001090012345"),
    "binh": ("Trần", ["Thị", "Bình"], "female", "1985-11-02", "079185000111"),
    "cuong": ("Nguyen", ["Cuong"], "male", "2001-01-01", "001201999999"),
    "dung": ("Lê", ["Dũng"], "male", "1990", "036090123456"),
}
"""The Patients of the ``people`` fixture: family, given, gender, birth date, CCCD."""


@pytest.fixture
def people(client: TestClient) -> dict[str, str]:
    org = _post(
        client,
        {
            "resourceType": "Organization",
            "name": "Trạm Y tế xã Tân Phú",
            "identifier": [{"system": "urn:csk", "value": "79001"}],
        },
    )
    ids = {"org": org}
    for key, (family, given, gender, birth, cccd) in PEOPLE.items():
        ids[key] = _post(
            client,
            {
                "resourceType": "Patient",
                "name": [{"family": family, "given": given}],
                "gender": gender,
                "birthDate": birth,
                "identifier": [{"system": CCCD, "value": cccd}],
                "managingOrganization": {"reference": f"Organization/{org}"},
            },
        )
    for key, value, when in (
        ("an", 150, "2024-03-01T08:00:00+07:00"),
        ("an", 128, "2025-06-01T08:00:00+07:00"),
        ("binh", 118, "2025-07-02"),
    ):
        ids[f"obs-{key}-{value}"] = _post(
            client,
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {
                    "coding": [
                        {
                            "system": "http://loinc.org",
                            "code": "8480-6",
                            "display": "Systolic blood pressure",
                        }
                    ],
                    "text": "Huyết áp tâm thu",
                },
                "subject": {"reference": f"Patient/{ids[key]}"},
                "effectiveDateTime": when,
                "valueQuantity": {
                    "value": value,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        )
    return ids


def test_string_accent_insensitive(client: TestClient, people: dict[str, str]) -> None:
    found = _ids(client.get("/fhir/Patient", params={"name": "nguyen"}).json())
    assert sorted(found) == sorted([people["an"], people["cuong"]])
    assert _ids(client.get("/fhir/Patient", params={"family": "NGUYỄN"}).json()) != []
    exact = _ids(client.get("/fhir/Patient", params={"family:exact": "Nguyễn"}).json())
    assert exact == [people["an"]]
    contains = _ids(client.get("/fhir/Patient", params={"name:contains": "inh"}).json())
    assert contains == [people["binh"]]


def test_token_forms(client: TestClient, people: dict[str, str]) -> None:
    r = client.get("/fhir/Patient", params={"identifier": f"{CCCD}|079185000111"}).json()
    assert _ids(r) == [people["binh"]]
    assert _ids(client.get("/fhir/Patient", params={"identifier": "079185000111"}).json()) == [
        people["binh"]
    ]
    assert client.get("/fhir/Patient", params={"identifier": f"{CCCD}|"}).json()["total"] == 4
    assert client.get("/fhir/Patient", params={"identifier": "|079185000111"}).json()["total"] == 0
    assert client.get("/fhir/Patient", params={"gender:not": "male"}).json()["total"] == 1
    text = client.get("/fhir/Observation", params={"code:text": "huyet ap"}).json()
    assert text["total"] == 3
    assert (
        client.get("/fhir/Observation", params={"code": "http://loinc.org|8480-6"}).json()["total"]
        == 3
    )


def test_date_prefixes_and_precision(client: TestClient, people: dict[str, str]) -> None:
    def ids(value: str) -> set[str]:
        return set(_ids(client.get("/fhir/Patient", params={"birthdate": value}).json()))

    assert ids("1990") == {people["an"], people["dung"]}
    assert ids("1990-05") == {people["an"]}
    assert ids("1990-05-17") == {people["an"]}
    assert ids("gt2000-12-31") == {people["cuong"]}
    assert ids("lt1986") == {people["binh"]}
    assert ids("ge1990-05-17") == {people["an"], people["cuong"], people["dung"]}
    assert ids("sa1990") == {people["cuong"]}
    assert ids("eb1990-01-01") == {people["binh"]}
    both = client.get("/fhir/Patient", params=[("birthdate", "ge1985"), ("birthdate", "lt1991")])
    assert set(_ids(both.json())) == {people["an"], people["binh"], people["dung"]}
    bad = client.get("/fhir/Patient", params={"birthdate": "17/05/1990"})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["birthdate"]


def test_quantity_and_reference_and_chain(client: TestClient, people: dict[str, str]) -> None:
    high = client.get("/fhir/Observation", params={"value-quantity": "gt140"}).json()
    assert _ids(high) == [people["obs-an-150"]]
    unit = client.get(
        "/fhir/Observation", params={"value-quantity": "le130|http://unitsofmeasure.org|mm[Hg]"}
    ).json()
    assert sorted(_ids(unit)) == sorted([people["obs-an-128"], people["obs-binh-118"]])
    by_ref = client.get("/fhir/Observation", params={"subject": f"Patient/{people['an']}"}).json()
    assert by_ref["total"] == 2
    assert client.get("/fhir/Observation", params={"patient": people["an"]}).json()["total"] == 2
    chained = client.get(
        "/fhir/Observation", params={"subject:Patient.identifier": f"{CCCD}|079185000111"}
    ).json()
    assert _ids(chained) == [people["obs-binh-118"]]
    has = client.get("/fhir/Patient", params={"_has:Observation:subject:value-quantity": "gt140"})
    assert _ids(has.json()) == [people["an"]]
    eff = client.get("/fhir/Observation", params={"date": "2025"}).json()
    assert eff["total"] == 2


def test_include_revinclude(client: TestClient, people: dict[str, str]) -> None:
    b = client.get(
        "/fhir/Observation", params={"code": "8480-6", "_include": "Observation:subject"}
    )
    included = _ids(b.json(), "include")
    assert sorted(included) == sorted([people["an"], people["binh"]])
    r = client.get(
        "/fhir/Patient", params={"_id": people["an"], "_revinclude": "Observation:subject"}
    ).json()
    assert _ids(r) == [people["an"]]
    assert sorted(_ids(r, "include")) == sorted([people["obs-an-150"], people["obs-an-128"]])
    it = client.get(
        "/fhir/Observation",
        params=[
            ("_id", people["obs-an-150"]),
            ("_include", "Observation:subject"),
            ("_include:iterate", "Patient:organization"),
        ],
    ).json()
    assert people["org"] in _ids(it, "include")


def test_sort_paging_summary_elements(client: TestClient, people: dict[str, str]) -> None:
    first = client.get("/fhir/Patient", params={"_sort": "birthdate", "_count": 2}).json()
    assert _ids(first) == [people["binh"], people["dung"]]
    assert first["total"] == 4
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(nxt.replace("http://testserver", "")).json()
    assert _ids(second) == [people["an"], people["cuong"]]
    assert not any(link["relation"] == "next" for link in second["link"])
    desc = client.get("/fhir/Patient", params={"_sort": "-birthdate,family"}).json()
    assert _ids(desc)[0] == people["cuong"]
    multi = client.get("/fhir/Patient", params={"_sort": "gender,-family"}).json()
    assert _ids(multi)[0] == people["binh"]
    count = client.get("/fhir/Patient", params={"_summary": "count"}).json()
    assert count["total"] == len(PEOPLE) and count.get("entry", []) == []
    men = client.get("/fhir/Patient", params={"_summary": "count", "gender": "male"}).json()
    assert men["total"] == sum(1 for p in PEOPLE.values() if p[2] == "male")  # 3 of 4
    assert men.get("entry", []) == []
    el = client.get("/fhir/Patient", params={"_elements": "gender", "_id": people["an"]}).json()
    res = el["entry"][0]["resource"]
    assert set(res) == {"resourceType", "id", "meta", "gender"}
    assert res["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_unknown_parameters_reported_or_strict(client: TestClient, people: dict[str, str]) -> None:
    lenient = client.get("/fhir/Patient", params={"foo": "bar"}).json()
    assert lenient["total"] == 4
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "foo" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    strict = client.get(
        "/fhir/Patient", params={"foo": "bar"}, headers={"Prefer": "handling=strict"}
    )
    assert strict.status_code == 400


def test_compartment_search_and_everything(client: TestClient, people: dict[str, str]) -> None:
    comp = client.get(f"/fhir/Patient/{people['an']}/Observation").json()
    assert comp["total"] == 2
    ev = client.get(f"/fhir/Patient/{people['an']}/$everything").json()
    types = sorted(e["resource"]["resourceType"] for e in ev["entry"])
    assert types == ["Observation", "Observation", "Patient"]
    only = client.get(f"/fhir/Patient/{people['an']}/$everything", params={"_type": "Observation"})
    assert only.json()["total"] == 2
    assert client.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_history_type_and_system(client: TestClient, people: dict[str, str]) -> None:
    t = client.get("/fhir/Patient/_history").json()
    assert t["total"] == 4
    s = client.get("/fhir/_history", params={"_count": 3}).json()
    assert s["total"] == 8
    assert len(s["entry"]) == 3
    future = client.get("/fhir/_history", params={"_since": "2999-01-01T00:00:00Z"}).json()
    assert future["total"] == 0
