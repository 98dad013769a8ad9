"""Merge keeps both records and widens searches; unmerge restores exactly; the review queue."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.links import queue_review


def _params(**values: Any) -> dict[str, Any]:
    out = []
    for k, v in values.items():
        name = k.replace("_", "-")
        if name.endswith("patient"):
            out.append({"name": name, "valueReference": {"reference": f"Patient/{v}"}})
        else:
            out.append({"name": name, "valueString": v})
    return {"resourceType": "Parameters", "parameter": out}


def _create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _patient(family: str, given: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": "female",
        "birthDate": "1985-04-02",
    }


def _obs(pid: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "unit": "kg"},
    }


def _snapshot(client: TestClient) -> dict[str, str]:
    """Every resource's current content without meta, by Type/id."""
    out: dict[str, str] = {}
    url: str | None = "/fhir?_count=500"
    while url:
        page = client.get(url).json()
        for e in page.get("entry", []):
            r = dict(e["resource"])
            r.pop("meta", None)
            out[f"{r['resourceType']}/{r['id']}"] = json.dumps(r, sort_keys=True)
        url = next(
            (
                link["url"].replace("http://testserver", "")
                for link in page["link"]
                if link["relation"] == "next"
            ),
            None,
        )
    return out


def _ids(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}


def test_merge_widens_searches_and_unmerge_restores_everything(client: TestClient) -> None:
    a = _create(client, _patient("Lê", "Hoa"))
    b = _create(client, _patient("Le", "Hoa"))
    other = _create(client, _patient("Phạm", "Minh"))
    obs_a = _create(client, _obs(a, 50))
    obs_b = _create(client, _obs(b, 51))
    _create(client, _obs(other, 70))
    before = _snapshot(client)

    r = client.post(
        "/fhir/Patient/$merge",
        json=_params(source_patient=b, target_patient=a, reason="same CCCD", performer="bs. An"),
    )
    assert r.status_code == 200, r.text
    prov = r.json()
    assert prov["resourceType"] == "Provenance"
    assert prov["agent"][0]["who"]["display"] == "bs. An"
    # the purpose of use from R4's bound value set, and the staff's words (HAPI's validator)
    assert prov["reason"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    "code": "PATADMIN",
                    "display": "patient administration",
                }
            ],
            "text": "same CCCD",
        }
    ]
    assert client.get(f"/fhir/Patient/{b}").json()["active"] is False
    for pid in (a, b):
        found = client.get("/fhir/Observation", params={"patient": pid}).json()
        assert {e["resource"]["id"] for e in found["entry"]} == {obs_a, obs_b}
        everything = client.get(f"/fhir/Patient/{pid}/$everything").json()
        assert {f"Patient/{a}", f"Patient/{b}", f"Observation/{obs_a}", f"Observation/{obs_b}"} <= (
            _ids(everything)
        )
        assert f"Patient/{other}" not in _ids(everything)
    again = client.post(
        "/fhir/Patient/$merge",
        json=_params(source_patient=b, target_patient=other, reason="x", performer="y"),
    )
    assert again.status_code == 409

    r = client.post(
        "/fhir/Patient/$unmerge",
        json=_params(source_patient=b, reason="different mothers' names", performer="bs. An"),
    )
    assert r.status_code == 200, r.text
    after = _snapshot(client)
    added = set(after) - set(before)
    assert added and all(key.startswith("Provenance/") for key in added)
    assert {k: after[k] for k in before} == before
    found = client.get("/fhir/Observation", params={"patient": b}).json()
    assert {e["resource"]["id"] for e in found["entry"]} == {obs_b}
    assert (
        client.post(
            "/fhir/Patient/$unmerge", json=_params(source_patient=b, reason="x", performer="y")
        ).status_code
        == 409
    )


def test_bad_merge_requests_change_nothing(client: TestClient) -> None:
    a = _create(client, _patient("Lê", "Hoa"))
    before = _snapshot(client)
    for body in (
        _params(source_patient=a, target_patient=a, reason="x", performer="y"),
        _params(source_patient=a, target_patient="nobody", reason="x", performer="y"),
        _params(source_patient=a, reason="x", performer="y"),
        _params(source_patient=a, target_patient=a, performer="y"),
        {"resourceType": "Patient"},
    ):
        r = client.post("/fhir/Patient/$merge", json=body)
        assert r.status_code in (400, 404), (body, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert _snapshot(client) == before


def test_review_queue_reject_then_accept(client: TestClient) -> None:
    repo: FhirRepository = client.app.state.repository  # type: ignore[attr-defined]
    a = _create(client, _patient("Trần", "Lan"))
    b = _create(client, _patient("Tran", "Lan"))
    c = _create(client, _patient("Trần", "Lan"))
    assert queue_review(repo, a, b, 0.97, "probable") is not None
    assert queue_review(repo, b, a, 0.97, "probable") is None  # once per pair
    queue_review(repo, a, c, 0.96, "probable")
    queue = client.get("/fhir/Patient/$review-queue").json()
    assert queue["total"] == 2
    pairs = {
        frozenset([e["resource"]["focus"]["reference"], e["resource"]["for"]["reference"]]): e[
            "resource"
        ]["id"]
        for e in queue["entry"]
    }
    first = pairs[frozenset([f"Patient/{a}", f"Patient/{b}"])]
    rejected = client.post(
        f"/fhir/Task/{first}/$resolve-review",
        json=_params(decision="reject", reason="different people", performer="bs. Bình"),
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert client.get("/fhir/Patient/$review-queue").json()["total"] == 1
    provs = client.get("/fhir/Provenance").json()
    assert provs["total"] == 1
    assert provs["entry"][0]["resource"]["activity"]["coding"][0]["code"] == "link-rejected"
    second = client.get("/fhir/Patient/$review-queue").json()["entry"][0]["resource"]["id"]
    accepted = client.post(
        f"/fhir/Task/{second}/$resolve-review",
        json=_params(decision="accept", reason="same phone and CCCD", performer="bs. Bình"),
    )
    assert accepted.status_code == 200, accepted.text
    merged = [
        p
        for p in (client.get(f"/fhir/Patient/{pid}").json() for pid in (a, c))
        if p.get("active") is False
    ]
    assert len(merged) == 1 and merged[0]["id"] == c  # the newer record joins the older
    again = client.post(
        f"/fhir/Task/{second}/$resolve-review",
        json=_params(decision="reject", reason="x", performer="y"),
    )
    assert again.status_code == 409
