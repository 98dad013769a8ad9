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


def _pharmacist(rx: RxWorld) -> TestClient:
    client = TestClient(rx.world.app, base_url=BASE)
    r = client.post(
        "/clinic/sign-in",
        data={"username": "ds.chau", "password": PASSWORD, "next": "/clinic"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/pharmacy", r.text
    return client


def test_a_pharmacist_hands_over_part_then_the_rest_then_is_refused(rx: RxWorld) -> None:
    pid, eid = rx.person(A, "Trần Thị Cúc")
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
    with _pharmacist(rx) as ds:
        home = ds.get("/pharmacy")
        assert home.status_code == 200 and 'id="code"' in home.text and "Nhà thuốc" in home.text
        page = ds.get("/pharmacy", params={"code": issued.code.upper()})
        assert page.status_code == 200 and issued.code in page.text
        assert "Chưa bán" in page.text and "Paracetamol 500mg" in page.text
        allergies = re.search(r'id="allergies".*?</div>', page.text, re.S)
        assert allergies is not None and "Ibuprofen" in allergies.group(0)
        assert "Penicilin" not in page.text  # an allergy that concerns nothing prescribed
        assert "Trần Thị Cúc" not in page.text  # the counter sees the prescription, not the record
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
