"""The pharmacy counter over HTTP: sign in as a pharmacist, open a prescription by its code
(whatever the case), hand over part then the rest, a third sale refused with a clear message;
the relevant allergy shown; the clinic pages closed to pharmacists and the counter to doctors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sokhoe.operations.prescribe import run_prescribe
from tests.clinic.clinic_world import PASSWORD
from tests.clinic.test_pages import csrf_of, signed_in
from tests.conftest import BASE
from tests.prescribing.rx_world import A, RxWorld, line, make_rx_world, parameters


@pytest.fixture
def rx(tmp_path: Path) -> RxWorld:
    return make_rx_world(tmp_path, BASE)


def pharmacist(rx: RxWorld) -> TestClient:
    """A client signed in at the counter as the pharmacist ``ds.chau`` (sent to /pharmacy)."""
    client = TestClient(rx.world.app, base_url=BASE)
    r = client.post(
        "/clinic/sign-in",
        data={"username": "ds.chau", "password": PASSWORD, "next": "/clinic"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/pharmacy", r.text
    return client


def test_a_pharmacist_hands_over_part_then_the_rest_then_is_refused(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Trần Thị Cúc", born="1968-02-03", telecom=[{"value": "0987654321"}])
    rx.allergy(pid, "Ibuprofen")
    rx.allergy(pid, "Penicilin")
    issued = run_prescribe(
        rx.doctor("bs.an", A),
        parameters(
            pid,
            eid,
            [line("PARACETAMOL-500", days=5), line("IBUPROFEN-400", per_day=2, days=3)],
            {1: "Đã dùng trước đây không sao"},
        ),
        datetime.now(UTC),
    )
    with pharmacist(rx) as ds:
        home = ds.get("/pharmacy")
        assert home.status_code == 200 and 'id="code"' in home.text and "Nhà thuốc" in home.text
        page = ds.get("/pharmacy", params={"code": issued.code.upper()})
        assert page.status_code == 200 and issued.code in page.text
        assert "Chưa bán" in page.text and "Paracetamol 500mg" in page.text
        allergies = re.search(r'id="allergies".*?</div>', page.text, re.S)
        assert allergies is not None and "Ibuprofen" in allergies.group(0)
        assert "Penicilin" not in page.text  # an allergy that concerns nothing prescribed
        # whose it is (name and year of birth, as on the paper), not the rest of the record
        assert "Trần Thị Cúc (1968)" in page.text
        assert "0987654321" not in page.text and "03/02/1968" not in page.text
        csrf = csrf_of(page.text)
        ids = {
            r["medicationCodeableConcept"]["coding"][0]["code"]: r["id"] for r in issued.requests
        }
        para, ibu = ids["PARACETAMOL-500"], ids["IBUPROFEN-400"]
        part = {
            "csrf": csrf,
            "code": issued.code,
            "invoice": "HD-001",
            f"q-{para}": "10",
            f"q-{ibu}": "0",
        }
        sold = ds.post("/pharmacy/dispense", data=part)
        assert sold.status_code == 200 and 'id="sold"' in sold.text
        assert "Đã bán một phần" in sold.text and "HD-001" in sold.text
        labels = re.findall(r'<div class="label".*?</div>', sold.text, re.S)
        assert len(labels) == 1 and "Trần Thị Cúc (1968)" in labels[0]
        assert "Paracetamol 500mg" in labels[0] and "10" in labels[0] and "Nhà thuốc" in labels[0]
        rest = {**part, "invoice": "HD-002", f"q-{para}": "5", f"q-{ibu}": "6", f"lot-{ibu}": "L01"}
        done = ds.post("/pharmacy/dispense", data=rest)
        assert done.status_code == 200 and "Đã bán đủ" in done.text
        assert 'id="not-dispensable"' in done.text
        again = ds.post("/pharmacy/dispense", data={**rest, "invoice": "HD-003", f"q-{ibu}": "1"})
        assert again.status_code == 409 and 'role="alert"' in again.text
        assert issued.code in again.text and 'id="sold"' not in again.text
        wrong = ds.get("/pharmacy", params={"code": "01001zzzzzzz-C"})
        assert wrong.status_code == 404 and 'id="problem"' in wrong.text
        assert ds.get("/clinic").status_code == 403  # not a clinic's staff
    with signed_in(rx.world, "bs.an") as doctor:
        assert doctor.get("/pharmacy").status_code == 403
    events, _ = rx.world.app.state.auditor.for_patient([pid], 200)
    assert any("lookup" in str(e) for e in events)  # the patient sees who looked it up


def test_the_label_names_only_the_patient_of_the_code_presented(rx: RxWorld) -> None:
    """Forged request ids: a pharmacist who holds one prescription's code and names another
    prescription's lines (or an unknown code) learns nothing of that other patient."""
    mine, visit = rx.person(A, "Lê Văn Minh", born="1990-01-01")
    other, other_visit = rx.person(A, "Phạm Thị Bí Mật", born="1955-06-07")
    doctor = rx.doctor("bs.an", A)
    now = datetime.now(UTC)
    held = run_prescribe(doctor, parameters(mine, visit, [line("PARACETAMOL-500")]), now)
    theirs = run_prescribe(doctor, parameters(other, other_visit, [line("AMLODIPIN-5")]), now)
    their_line = theirs.requests[0]["id"]
    with pharmacist(rx) as ds:
        csrf = csrf_of(ds.get("/pharmacy").text)
        before = rx.platform.read("MedicationRequest", their_line).version_id
        forged = ds.post(
            "/pharmacy/dispense",
            data={"csrf": csrf, "code": held.code, "invoice": "HD-X1", f"q-{their_line}": "5"},
        )
        assert forged.status_code == 400 and "Phạm Thị Bí Mật" not in forged.text
        assert 'id="sold"' not in forged.text
        unknown = ds.post(
            "/pharmacy/dispense",
            data={"csrf": csrf, "code": "01001zzzzzzz-C", "invoice": "HD-X2", "q-x": "1"},
        )
        assert unknown.status_code == 404 and "Phạm Thị Bí Mật" not in unknown.text
        assert "Lê Văn Minh" not in unknown.text
        # the same line id typed next to the right code's own line: only the code's own line
        # is handed over and labelled
        mine_line = held.requests[0]["id"]
        both = ds.post(
            "/pharmacy/dispense",
            data={
                "csrf": csrf,
                "code": held.code,
                "invoice": "HD-X3",
                f"q-{mine_line}": "5",
                f"q-{their_line}": "5",
            },
        )
        assert both.status_code == 200 and "Phạm Thị Bí Mật" not in both.text
        labels = re.findall(r'<div class="label".*?</div>', both.text, re.S)
        assert len(labels) == 1 and "Lê Văn Minh (1990)" in labels[0]
    assert rx.platform.read("MedicationRequest", their_line).version_id == before
    query = rx.platform.parse_query("MedicationDispense", [("subject", f"Patient/{other}")])
    assert rx.platform.search(query).matches == []
