"""Transaction and batch bundles: atomicity, reference resolution, and refusal of bad input."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _counts(client: TestClient) -> tuple[int, int]:
    return (
        client.get("/fhir/Patient").json()["total"],
        client.get("/fhir/Observation").json()["total"],
    )


def _txn(entries: list[dict[str, Any]], btype: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": btype, "entry": entries}


PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Phạm", "given": ["Minh"]}],
    "identifier": [{"system": "urn:cccd", "value": "001"}],
}


def _obs(subject: str, status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 60, "unit": "kg"},
    }


def test_transaction_resolves_urn_uuid(client: TestClient) -> None:
    bundle = _txn(
        [
            {
                "fullUrl": "urn:uuid:p1",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:o1",
                "resource": _obs("urn:uuid:p1"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ]
    )
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created", "201 Created"]
    pid = out["entry"][0]["response"]["location"].split("/")[1]
    obs = client.get("/fhir/Observation", params={"subject": f"Patient/{pid}"}).json()
    assert obs["total"] == 1
    assert obs["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_if_none_exist_and_conditional_reference(client: TestClient) -> None:
    client.post("/fhir/Patient", json=PATIENT)
    bundle = _txn(
        [
            {
                "fullUrl": "urn:uuid:p1",
                "resource": PATIENT,
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=urn:cccd|001",
                },
            },
            {
                "resource": _obs("Patient?identifier=urn:cccd|001"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"resource": _obs("urn:uuid:p1"), "request": {"method": "POST", "url": "Observation"}},
        ]
    )
    out = client.post("/fhir", json=bundle).json()
    assert out["entry"][0]["response"]["status"] == "200 OK"
    assert _counts(client) == (1, 2)


def test_transaction_is_all_or_nothing(client: TestClient) -> None:
    before = _counts(client)
    bad = _txn(
        [
            {
                "fullUrl": "urn:uuid:p1",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": _obs("urn:uuid:p1", status="done"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ]
    )
    r = client.post("/fhir", json=bad)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.status"]
    assert _counts(client) == before
    dangling = _txn(
        [
            {
                "resource": _obs("urn:uuid:missing"),
                "request": {"method": "POST", "url": "Observation"},
            }
        ]
    )
    assert client.post("/fhir", json=dangling).status_code == 400
    unresolved = _txn(
        [
            {
                "resource": _obs("Patient?identifier=urn:cccd|nobody"),
                "request": {"method": "POST", "url": "Observation"},
            }
        ]
    )
    assert client.post("/fhir", json=unresolved).status_code == 404
    assert _counts(client) == before


def test_a_rewritten_reference_is_checked_against_its_place(client: TestClient) -> None:
    """The entries are validated before the transaction, while ``urn:uuid:`` references name no
    type yet; once rewritten, each must still name a type its element allows."""
    before = _counts(client)
    medication = {"resourceType": "Medication", "code": {"text": "Paracetamol 500 mg"}}
    bad = _txn(
        [
            {
                "fullUrl": "urn:uuid:m1",
                "resource": medication,
                "request": {"method": "POST", "url": "Medication"},
            },
            {
                "fullUrl": "urn:uuid:p1",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": _obs("urn:uuid:m1"), "request": {"method": "POST", "url": "Observation"}},
        ]
    )
    r = client.post("/fhir", json=bad)
    assert r.status_code == 422, r.text
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[2].resource.subject.reference"]
    assert "Medication" in issue["diagnostics"]
    assert _counts(client) == before
    assert client.get("/fhir/Medication").json()["total"] == 0


def test_malformed_bundles_are_refused(client: TestClient) -> None:
    cases = [
        {"resourceType": "Bundle", "type": "collection"},
        {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": PATIENT}]},
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "POST", "url": "Patient"}}],
        },
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": PATIENT, "request": {"method": "POST", "url": "Observation"}}],
        },
        {"resourceType": "Patient"},
    ]
    for case in cases:
        r = client.post("/fhir", json=case)
        assert r.status_code == 400, case
        assert r.json()["resourceType"] == "OperationOutcome"
    assert _counts(client) == (0, 0)


def test_transaction_put_delete_get(client: TestClient) -> None:
    pid = client.post("/fhir/Patient", json=PATIENT).json()["id"]
    bundle = _txn(
        [
            {
                "resource": {**PATIENT, "id": "fixed-1"},
                "request": {"method": "PUT", "url": "Patient/fixed-1"},
            },
            {"request": {"method": "DELETE", "url": f"Patient/{pid}"}},
            {"request": {"method": "GET", "url": "Patient/fixed-1"}},
        ]
    )
    out = client.post("/fhir", json=bundle).json()
    assert out["entry"][0]["response"]["status"] == "201 Created"
    assert out["entry"][2]["resource"]["id"] == "fixed-1"
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410


def test_batch_reports_each_entry(client: TestClient) -> None:
    bundle = _txn(
        [
            {"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Patient", "gender": "x"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient/nope"}},
        ],
        btype="batch",
    )
    out = client.post("/fhir", json=bundle).json()
    assert out["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in out["entry"]] == ["201", "422", "404"]
    assert _counts(client) == (1, 0)
