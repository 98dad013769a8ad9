"""``identifier:of-type`` and ``:contains`` on uri parameters, on every store.
See: https://hl7.org/fhir/R4/search.html#modifiers"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _patient(value: str, kind: str | None) -> dict[str, Any]:
    identifier: dict[str, Any] = {"system": "https://fhir.sokhoe.vn/sid/mrn/79001", "value": value}
    if kind:
        identifier["type"] = {"coding": [{"system": V2, "code": kind}]}
    return {"resourceType": "Patient", "identifier": [identifier]}


def _ids(client: TestClient, rtype: str, params: dict[str, str]) -> set[str]:
    r = client.get(f"/fhir/{rtype}", params=params)
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", [])}


def test_identifier_of_type_matches_the_type_coding_and_the_value(client: TestClient) -> None:
    mr = client.post("/fhir/Patient", json=_patient("BN001", "MR")).json()["id"]
    pp = client.post("/fhir/Patient", json=_patient("BN001", "PPN")).json()["id"]
    untyped = client.post("/fhir/Patient", json=_patient("BN001", None)).json()["id"]
    of_type = "identifier:of-type"
    assert _ids(client, "Patient", {of_type: f"{V2}|MR|BN001"}) == {mr}
    assert _ids(client, "Patient", {of_type: f"{V2}|PPN|BN001"}) == {pp}
    assert _ids(client, "Patient", {of_type: f"{V2}|MR|BN002"}) == set()
    assert _ids(client, "Patient", {of_type: "http://other|MR|BN001"}) == set()
    assert _ids(client, "Patient", {of_type: f"{V2}|MR|BN001,{V2}|PPN|BN001"}) == {mr, pp}
    assert _ids(client, "Patient", {"identifier": "BN001"}) == {mr, pp, untyped}
    for wrong in (f"{V2}|MR", "BN001", f"{V2}||BN001"):  # all three parts are required
        r = client.get("/fhir/Patient", params={of_type: wrong})
        assert r.status_code == 400 and "all three" in r.text
    # an update that drops the type drops the row
    changed = {**_patient("BN001", None), "id": mr}
    client.put(f"/fhir/Patient/{mr}", json=changed)
    assert _ids(client, "Patient", {of_type: f"{V2}|MR|BN001"}) == set()


def test_uri_contains(client: TestClient) -> None:
    def valueset(url: str) -> str:
        body = {"resourceType": "ValueSet", "status": "active", "url": url}
        return str(client.post("/fhir/ValueSet", json=body).json()["id"])

    a = valueset("https://fhir.sokhoe.vn/ValueSet/thuoc-thiet-yeu")
    b = valueset("http://example.org/fhir/ValueSet/other")
    assert _ids(client, "ValueSet", {"url:contains": "thuoc"}) >= {a}
    assert b not in _ids(client, "ValueSet", {"url:contains": "thuoc"})
    assert {a, b} <= _ids(client, "ValueSet", {"url:contains": "/ValueSet/"})
    assert _ids(client, "ValueSet", {"url:contains": "100%_sure"}) == set()  # LIKE escaped
