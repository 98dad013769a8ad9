"""Prescribing inside the visit page: the medicine typeahead, the duplicate-therapy warning for
a medicine active from another facility, the override, and the issued prescription."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest

from sokhoe.operations.prescribe import run_prescribe
from sokhoe.prescribing.code import CODE_SYSTEM
from tests.clinic.test_pages import confirm_presence, signed_in, start_visit
from tests.conftest import BASE
from tests.prescribing.rx_world import B, RxWorld, line, make_rx_world, parameters


@pytest.fixture
def rx(tmp_path: Path) -> RxWorld:
    return make_rx_world(tmp_path, BASE)


def _form(csrf: str, **lines: str) -> dict[str, str]:
    return {"csrf": csrf, "reason": "Tăng huyết áp tái khám", **lines}


def test_a_doctor_prescribes_in_the_visit_and_answers_the_warning(rx: RxWorld) -> None:
    world = rx.world
    # hospital B prescribed amlodipine to the person nine days after their visit there
    run_prescribe(
        rx.doctor("bs.b", B),
        parameters(world.patient_id, "enc-b", [line("AMLODIPIN-5", per_day=1, days=30)]),
        datetime.now(UTC),
    )
    with signed_in(world, "bs.an") as doctor:
        eid, csrf = start_visit(world, doctor)
        confirm_presence(world, doctor, csrf)
        choices = doctor.get("/clinic/drugs", params={"slot": 0, "rx0-drug": "amlo"})
        assert (
            'data-code="AMLODIPIN-5"' in choices.text and 'data-target="rx0-drug"' in choices.text
        )
        accents = doctor.get("/clinic/drugs", params={"slot": 1, "rx1-drug": "paracetamol 500"})
        assert 'data-code="PARACETAMOL-500"' in accents.text
        page = doctor.get(f"/clinic/visits/{eid}")
        assert 'id="prescription"' in page.text and 'data-shortcut="p"' in page.text
        form = _form(
            csrf,
            **{"rx0-drug": "AMLODIPIN-5", "rx0-dose": "1", "rx0-times": "1", "rx0-days": "10"},
            **{"rx1-drug": "PARACETAMOL-500", "rx1-dose": "1", "rx1-times": "3", "rx1-days": "3"},
        )
        refused = doctor.post(f"/clinic/visits/{eid}/prescribe", data=form)
        assert refused.status_code == 422
        assert "Bệnh viện Đa khoa Đống Đa" in refused.text and 'id="rx0-override"' in refused.text
        assert 'id="rx1-override"' not in refused.text  # paracetamol is fine
        blocked = doctor.post(f"/clinic/visits/{eid}/prescribe", data={**form, "rx1-days": "45"})
        assert blocked.status_code == 422 and "vượt quá 30 ngày" in blocked.text
        form["rx0-override"] = "Bệnh viện B đã ngừng amlodipin, đổi sang liều mới"
        done = doctor.post(f"/clinic/visits/{eid}/prescribe", data=form, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"].endswith("#prescription")
        after = doctor.get(f"/clinic/visits/{eid}").text
        code = re.search(r"<code>(01001[0-9a-z]{7}-C)</code>", after)
        assert code is not None
        assert "Ngày 3 lần, mỗi lần 1 viên" in after and 'value="AMLODIPIN-5"' not in after
    repo = world.platform
    query = repo.parse_query(
        "MedicationRequest", [("group-identifier", f"{CODE_SYSTEM}|{code.group(1)}")]
    )
    lines = [m.content for m in repo.search(query).matches if m.content]
    assert sorted(r["dispenseRequest"]["quantity"]["value"] for r in lines) == [9, 10]
    (amlodipine,) = [r for r in lines if "detectedIssue" in r]
    issue = repo.read("DetectedIssue", amlodipine["detectedIssue"][0]["reference"].split("/")[1])
    assert (issue.content or {})["mitigation"][0]["action"]["text"].startswith("Bệnh viện B")


def test_english_and_the_prescription_is_signed_with_the_visit(rx: RxWorld) -> None:
    world = rx.world
    with signed_in(world, "bs.an") as doctor:
        eid, csrf = start_visit(world, doctor)
        form = _form(csrf, **{"rx0-drug": "PARACETAMOL-500", "rx0-dose": "1", "rx0-times": "2"})
        refused = doctor.post(f"/clinic/visits/{eid}/prescribe?lang=en", data=form)
        assert refused.status_code == 422 and "the days must be a number" in refused.text
        form["rx0-days"] = "2"
        closed = doctor.post(f"/clinic/visits/{eid}/prescribe?lang=en", data=form)
        assert closed.status_code == 422 and "history first" in closed.text
        confirm_presence(world, doctor, csrf)
        issued = doctor.post(f"/clinic/visits/{eid}/prescribe", data=form, follow_redirects=False)
        assert issued.status_code == 303
        close = {**form, "systolic": "120", "diastolic": "80", "dx0": "R51"}
        closed = doctor.post(f"/clinic/visits/{eid}/close", data=close, follow_redirects=False)
        assert closed.status_code == 303, closed.text
        review = doctor.get(f"/clinic/visits/{eid}/sign").text
        assert "Paracetamol 500mg" in review  # the signature covers the prescription
        early = doctor.get(f"/clinic/visits/{eid}/print/prescription")
        assert early.status_code == 409  # a paper copy is of a signed record
        digest = re.search(r'name="sha256" value="([^"]+)"', review)
        assert digest is not None
        sign_form = {
            "csrf": csrf,
            "sha256": digest.group(1),
            "method": "totp",
            "code": pyotp.TOTP(world.totp_secret).now(),
        }
        signed = doctor.post(f"/clinic/visits/{eid}/sign", data=sign_form, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        closed_page = doctor.get(f"/clinic/visits/{eid}").text
        code = re.search(r"print/prescription\?code=([^\"]+)\"", closed_page)
        assert code is not None
        printed = doctor.get(f"/clinic/visits/{eid}/print/prescription?code={code.group(1)}")
        assert printed.status_code == 200 and '<html lang="vi">' in printed.text
        assert "ĐƠN THUỐC" in printed.text and code.group(1) in printed.text
        assert "Bản giấy chuyển đổi từ hồ sơ bệnh án điện tử" in printed.text
        assert printed.text.count("<svg") >= 3  # lookup QR, prescription QR, Code 128
        assert "Paracetamol 500mg" in printed.text and "Số lượng: 04 " in printed.text
