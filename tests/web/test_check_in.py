"""``Patient/$check-in``: one person however many facilities scan the card."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sokhoe.mpi.identifiers import BHXH, BHYT, CCCD, CMND, FACILITY, mrn_system

QR = "079090001234|023456789|NGUYỄN VĂN AN|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"
QR_NO_CMND = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"


def _params(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": k, "valueString": v} for k, v in values.items()],
    }


def _ids(patient: dict[str, Any], system: str) -> list[dict[str, Any]]:
    return [i for i in patient["identifier"] if i["system"] == system]


def test_same_card_at_two_facilities_is_one_person(client: TestClient) -> None:
    first = client.post("/fhir/Patient/$check-in", json=_params(qr=QR, facility="79001"))
    assert first.status_code == 201, first.text
    assert first.headers["Location"].startswith("http://testserver/fhir/Patient/")
    p = first.json()
    assert p["name"][0]["family"] == "Nguyễn"
    assert p["name"][0]["given"] == ["Văn", "An"]
    assert p["birthDate"] == "1990-03-15"
    assert p["gender"] == "male"
    assert _ids(p, CCCD)[0]["value"] == "079090001234"
    assert _ids(p, CMND)[0]["use"] == "old"
    second = client.post(
        "/fhir/Patient/$check-in",
        json=_params(qr=QR_NO_CMND, facility="01002", mrn="BN-2026-77"),
    )
    assert second.status_code == 200, second.text
    q = second.json()
    assert q["id"] == p["id"]
    assert _ids(q, mrn_system("01002"))[0]["value"] == "BN-2026-77"
    assert len(_ids(q, mrn_system("79001"))) == 1
    assert len(_ids(q, CMND)) == 1  # kept although the second card omitted it
    again = client.post("/fhir/Patient/$check-in", json=_params(qr=QR, facility="79001"))
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == q["meta"]["versionId"]  # nothing new: no version
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_a_check_in_without_a_number_keeps_the_facility_s_own(client: TestClient) -> None:
    client.post("/fhir/Patient/$check-in", json=_params(qr=QR, facility="01002", mrn="BN-0042"))
    again = client.post("/fhir/Patient/$check-in", json=_params(qr=QR, facility="01002"))
    assert again.status_code == 200, again.text
    assert _ids(again.json(), mrn_system("01002")) == [
        {
            "use": "usual",
            "system": mrn_system("01002"),
            "value": "BN-0042",
            "assigner": {"identifier": {"system": FACILITY, "value": "01002"}},
        }
    ]
    renumbered = client.post(
        "/fhir/Patient/$check-in", json=_params(qr=QR, facility="01002", mrn="BN-0099")
    )
    numbers = {i["value"]: i.get("use") for i in _ids(renumbered.json(), mrn_system("01002"))}
    assert numbers == {"BN-0042": "old", "BN-0099": "usual"}  # a number the desk sends wins


def test_bhyt_lookup_and_card_renewal(client: TestClient) -> None:
    client.post("/fhir/Patient/$check-in", json=_params(qr=QR, bhyt="DN4790123456789"))
    found = client.post("/fhir/Patient/$check-in", json=_params(bhyt="dn4790123456789 "))
    assert found.status_code == 200
    # a new card (other group and level) with the same social-insurance number
    renewed = client.post("/fhir/Patient/$check-in", json=_params(bhyt="HT3790123456789"))
    assert renewed.status_code == 200
    p = renewed.json()
    cards = {i["value"]: i for i in _ids(p, BHYT)}
    assert cards["DN4790123456789"]["use"] == "old"
    assert "end" in cards["DN4790123456789"]["period"]
    assert cards["HT3790123456789"].get("use") != "old"
    assert [i["value"] for i in _ids(p, BHXH)] == ["0123456789"]


def test_the_12_digit_id_finds_a_registered_person_and_registers_nobody(
    client: TestClient,
) -> None:
    unknown = client.post("/fhir/Patient/$check-in", json=_params(cccd="079090001234"))
    assert unknown.status_code == 404 and "scan the CCCD QR" in unknown.text
    assert client.get("/fhir/Patient").json()["total"] == 0  # a number alone registers nobody
    made = client.post("/fhir/Patient/$check-in", json=_params(qr=QR))
    found = client.post("/fhir/Patient/$check-in", json=_params(cccd=" 079090001234 "))
    assert found.status_code == 200 and found.json()["id"] == made.json()["id"]
    for bad in ("07909000123", "07909000123x", "079090001234567"):
        r = client.post("/fhir/Patient/$check-in", json=_params(cccd=bad))
        assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["cccd"], bad
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_unknown_card_and_bad_input_change_nothing(client: TestClient) -> None:
    unknown = client.post("/fhir/Patient/$check-in", json=_params(bhyt="DN4790000000001"))
    assert unknown.status_code == 404
    assert "scan the CCCD QR" in unknown.json()["issue"][0]["diagnostics"]
    for body in (
        _params(),
        _params(qr="079090001234|x"),
        _params(qr=QR, facility="HN"),
        _params(qr=QR, mrn="1"),
        _params(bhyt="12345"),
        {"resourceType": "Patient"},
    ):
        r = client.post("/fhir/Patient/$check-in", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient").json()["total"] == 0


def test_identifiers_are_normalised_or_refused_on_every_write(client: TestClient) -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": CCCD, "value": " 079 090 001234 "},
            {"system": BHYT, "value": "dn4790123456789"},
        ],
    }
    r = client.post("/fhir/Patient", json=patient)
    assert r.status_code == 201, r.text
    values = [i["value"] for i in r.json()["identifier"]]
    assert values == ["079090001234", "DN4790123456789"]
    found = client.get("/fhir/Patient", params={"identifier": f"{CCCD}|079090001234"}).json()
    assert found["total"] == 1
    bad = {"resourceType": "Patient", "identifier": [{"system": CCCD, "value": "12345"}]}
    r = client.post("/fhir/Patient", json=bad)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Patient.identifier[0].value"]
    assert "12 digits" in issue["diagnostics"]
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_a_probable_earlier_record_is_queued_for_review(client: TestClient) -> None:
    earlier = {
        "resourceType": "Patient",
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1990-03-15",
        "address": [{"text": "12 Lê Lợi, TP Hồ Chí Minh"}],
    }
    old_id = client.post("/fhir/Patient", json=earlier).json()["id"]
    r = client.post("/fhir/Patient/$check-in", json=_params(qr=QR_NO_CMND))
    assert r.status_code == 201  # a card without phone or ID on record is not certain
    queue = client.get("/fhir/Patient/$review-queue").json()
    assert queue["total"] == 1
    task = queue["entry"][0]["resource"]
    pair = {task["focus"]["reference"], task["for"]["reference"]}
    assert pair == {f"Patient/{old_id}", f"Patient/{r.json()['id']}"}
