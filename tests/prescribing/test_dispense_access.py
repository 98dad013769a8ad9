"""What a pharmacist sees: the prescription whose code they present and the allergies that
concern it — over HTTP, by every other path the record stays closed to them, and each look-up is
in the patient's access log (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.operations.prescribe import run_prescribe
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.store.sql import SqlStore
from tests.api_helpers import client_auth
from tests.conftest import BASE, module_store
from tests.prescribing.rx_world import PASSWORD, A, P, Q, RxWorld, line, make_rx_world, parameters


@dataclass
class Scene:
    rx: RxWorld
    api: TestClient
    x: str
    """The patient whose prescription the pharmacy fills."""
    y: str
    """Someone else, with an allergy that would concern the same medicine."""
    code: str
    lines: dict[str, str]
    """Drug code -> MedicationRequest id of X's prescription."""
    others: dict[str, str]
    """What else is in X's record and Y's: name -> Type/id."""


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def s(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    folder = tmp_path_factory.mktemp("dispense-access")
    store: SqlStore = module_store(request, folder, "dispense_access")
    rx = make_rx_world(folder, BASE, store if request.param == "postgres" else None)
    doctor = rx.doctor("bs.an", A)
    x, visit = rx.person(A, "Đặng Thị Thu")
    y, y_visit = rx.person(A, "Bùi Văn Tài")
    others = {
        "penicillin allergy of X": f"AllergyIntolerance/{rx.allergy(x, 'Dị ứng penicilin')}",
        "paracetamol allergy of Y": f"AllergyIntolerance/{rx.allergy(y, 'Paracetamol')}",
        "glucose of X": "",
    }
    relevant = rx.allergy(x, "Paracetamol")
    earlier = run_prescribe(
        doctor,
        parameters(x, visit, [line("SIMVASTATIN-20", per_day=1, days=30)]),
        datetime.now(UTC),
    )
    others["other prescription of X"] = f"MedicationRequest/{earlier.requests[0]['id']}"
    issued = run_prescribe(
        doctor,
        parameters(
            x,
            visit,
            [line("PARACETAMOL-500"), line("AMLODIPIN-5", per_day=1, days=7)],
            {0: "Bệnh nhân đã dùng paracetamol không phản ứng"},
        ),
        datetime.now(UTC),
    )
    y_rx = run_prescribe(doctor, parameters(y, y_visit, [line("AMLODIPIN-5")]), datetime.now(UTC))
    others["Y's prescription"] = f"MedicationRequest/{y_rx.requests[0]['id']}"
    obs = "obs-" + x
    rx.platform.update(
        {
            "resourceType": "Observation",
            "id": obs,
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": f"Patient/{x}"},
            "valueQuantity": {"value": 6.1, "unit": "mmol/L"},
        },
        "Observation",
        obs,
    )
    others["glucose of X"] = f"Observation/{obs}"
    others["relevant allergy"] = f"AllergyIntolerance/{relevant}"
    lines = {r["medicationCodeableConcept"]["coding"][0]["code"]: r["id"] for r in issued.requests}
    with TestClient(rx.world.app, base_url=BASE) as api:
        yield Scene(rx, api, x, y, issued.code, lines, others)
    store.close()


def sign_in(api: TestClient, username: str) -> dict[str, str]:
    r = api.post("/auth/staff/sign-in", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def look_up(s: Scene, auth: dict[str, str], code: str) -> Any:
    body = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]}
    return s.api.post("/fhir/MedicationRequest/$lookup", json=body, headers=auth)


def lookups_in_log(s: Scene, patient: str) -> list[dict[str, Any]]:
    events, _total = s.rx.platform.auditor.for_patient([patient], count=500)
    return [e for e in events if "$lookup" in json.dumps(e, ensure_ascii=False)]


def test_the_code_opens_the_prescription_and_the_allergy_that_matters(s: Scene) -> None:
    chau = sign_in(s.api, "ds.chau")
    before = len(lookups_in_log(s, s.x))
    r = look_up(s, chau, s.code.upper())
    assert r.status_code == 200, r.text
    answer = r.json()
    params = answer["parameter"]
    shown_lines = {
        p["resource"]["id"]
        for line_ in params
        if line_["name"] == "line"
        for p in line_["part"]
        if p["name"] == "request"
    }
    assert shown_lines == set(s.lines.values())
    allergies = [p for p in params if p["name"] == "allergy"]
    assert len(allergies) == 1
    (resource,) = [p["resource"] for p in allergies[0]["part"] if p["name"] == "resource"]
    assert f"AllergyIntolerance/{resource['id']}" == s.others["relevant allergy"]
    concerned = [
        p["valueReference"]["reference"] for p in allergies[0]["part"] if p["name"] == "line"
    ]
    assert concerned == [f"MedicationRequest/{s.lines['PARACETAMOL-500']}"]
    text = r.text
    for name, ref in s.others.items():  # nothing else of X's record, nothing of Y's
        if name != "relevant allergy":
            assert ref.split("/")[1] not in text, name
    assert s.y not in text and '"Patient"' not in text
    # whose it is, as the paper shows: the name and year of birth, no more of the Patient
    (holder,) = [p["part"] for p in params if p["name"] == "patient"]
    assert holder == [
        {"name": "name", "valueString": "Đặng Thị Thu"},
        {"name": "birthYear", "valueString": "1970"},
    ]
    assert "1970-05-01" not in text and "Bùi Văn Tài" not in text
    log = lookups_in_log(s, s.x)
    assert len(log) == before + 1
    assert f"Patient/{s.x}" in json.dumps(log[0])  # the name shown is in the access log
    assert "ds.chau" in json.dumps(log[0], ensure_ascii=False)
    assert s.lines["PARACETAMOL-500"] in json.dumps(log[0])
    assert lookups_in_log(s, s.y) == []
    assert look_up(s, chau, s.code).status_code == 200
    assert len(lookups_in_log(s, s.x)) == before + 2  # every look-up, not once per pharmacy
    assert look_up(s, chau, f"{A}0000000-C").status_code == 404


def test_every_other_path_stays_closed_to_the_pharmacist(s: Scene) -> None:
    chau = sign_in(s.api, "ds.chau")
    assert look_up(s, chau, s.code).status_code == 200  # having presented the code changes nothing
    para = s.lines["PARACETAMOL-500"]
    dispensed = s.api.post(
        "/fhir/MedicationDispense/$dispense",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "code", "valueString": s.code},
                {"name": "invoice", "valueString": "ACC-1"},
                {
                    "name": "line",
                    "part": [
                        {
                            "name": "request",
                            "valueReference": {"reference": f"MedicationRequest/{para}"},
                        },
                        {"name": "quantity", "valueQuantity": {"value": 5}},
                    ],
                },
            ],
        },
        headers=chau,
    )
    assert dispensed.status_code == 201, dispensed.text
    mine = dispensed.json()["entry"][0]["resource"]["id"]
    get = s.api.get
    refused = [
        f"/fhir/Patient/{s.x}",
        f"/fhir/MedicationRequest/{para}",
        f"/fhir/MedicationRequest/{para}/_history",
        f"/fhir/MedicationRequest/{para}/_history/1",
        f"/fhir/{s.others['relevant allergy']}",
        f"/fhir/{s.others['glucose of X']}",
        f"/fhir/Patient/{s.x}/$everything",
    ]
    for path in refused:
        assert get(path, headers=chau).status_code == 403, path
    empty = [
        f"MedicationRequest?group-identifier={CODE_SYSTEM}|{s.code}",
        f"MedicationRequest?patient=Patient/{s.x}",
        f"MedicationRequest?patient=Patient/{s.x}&_summary=count",
        f"AllergyIntolerance?patient=Patient/{s.x}",
        "AllergyIntolerance?_summary=count",
        f"MedicationRequest?_id={para}&_revinclude=MedicationDispense:prescription",
        f"Patient?_has:MedicationDispense:patient:_id={mine}",
        f"Patient?_id={s.x}",
    ]
    for query in empty:
        found = get(f"/fhir/{query}", headers=chau)
        assert found.status_code == 200, (query, found.text)
        assert found.json().get("total", 0) == 0 and not found.json().get("entry"), query
    # their own dispense is theirs to read; what it points at is not included
    own = get(
        "/fhir/MedicationDispense?_include=MedicationDispense:prescription"
        "&_include=MedicationDispense:subject&_include=MedicationDispense:performer",
        headers=chau,
    ).json()
    kinds = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in own["entry"]]
    assert ("MedicationDispense", "match") in kinds
    assert {k for k, mode in kinds if mode == "include"} <= {"Organization"}
    assert get(f"/fhir/MedicationDispense/{mine}", headers=chau).status_code == 200
    # another pharmacy sees nothing of it; the prescriber's facility still sees all
    phuc = sign_in(s.api, "ds.phuc")
    assert get(f"/fhir/MedicationDispense/{mine}", headers=phuc).status_code == 403
    assert get("/fhir/MedicationDispense?_summary=count", headers=phuc).json()["total"] == 0
    his = client_auth(s.api, ["system/*.cruds"], A)
    prescriber = get(
        f"/fhir/MedicationRequest?group-identifier={CODE_SYSTEM}|{s.code}", headers=his
    )
    assert prescriber.json()["total"] == 2
    assert get(f"/fhir/MedicationDispense/{mine}", headers=his).status_code == 200
    assert Q  # the second pharmacy's code is in the world (rx_world)
    assert P
