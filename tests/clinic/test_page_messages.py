"""What a service refuses reaches the clinic pages in the reader's language, while the FHIR API
answers the same failure with the English OperationOutcome it always gave (integrators parse
it; the pages translate the message it carries)."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.access.principal import Principal
from sokhoe.clinic.billing import amount_due, invoice_id
from sokhoe.clinic.records import find
from tests.clinic.clinic_world import QR, World, make_world
from tests.clinic.test_pages import confirm_presence, csrf_of, signed_in, start_visit
from tests.conftest import BASE


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, BASE)


def _text(page: Any) -> str:
    """The page's text as a reader sees it (entities such as ``&#39;`` decoded)."""
    return html.unescape(str(page.text))


def _bearer(world: World, username: str, role: str, facility: str) -> dict[str, str]:
    """The API token of a staff member (what their own HIS would send)."""
    who = Principal("staff", username, username, role, facility, scopes=ROLE_SCOPES[role])
    return {"Authorization": f"Bearer {world.app.state.tokens.issue(who)[0]}"}


def _params(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": k, "valueString": v} for k, v in values.items()],
    }


def _closed_visit(world: World, client: TestClient) -> tuple[str, str]:
    """A visit of the world's person, checked in, examined and closed through the pages."""
    eid, csrf = start_visit(world, client)
    form = {"csrf": csrf, "reason": "Đau đầu", "systolic": "120", "diastolic": "80", "dx0": "I10"}
    closed = client.post(f"/clinic/visits/{eid}/close", data=form, follow_redirects=False)
    assert closed.status_code == 303, closed.text
    return eid, csrf


def test_a_bad_id_number_at_the_desk_reads_in_vietnamese_and_the_api_is_unchanged(
    world: World,
) -> None:
    with signed_in(world, "bs.an") as desk:
        csrf = csrf_of(desk.get("/clinic").text)
        typed = {"q": "999123456789", "csrf": csrf}
        vi = desk.post("/clinic/check-in?lang=vi", data=typed)
        assert vi.status_code == 422
        assert "Số CCCD 999123456789 bắt đầu bằng mã tỉnh không tồn tại '999'" in _text(vi)
        assert "unknown province" not in vi.text
        en = desk.post("/clinic/check-in?lang=en", data=typed)
        assert "CCCD 999123456789 starts with an unknown province code '999'" in _text(en)
    api = _bearer(world, "bs.an", "doctor", "01001")
    r = TestClient(world.app, base_url=BASE).post(
        "/fhir/Patient/$check-in", json=_params(cccd="999123456789"), headers=api
    )
    assert r.status_code == 400
    assert r.json() == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "CCCD 999123456789 starts with an unknown province code '999'",
                "expression": ["cccd"],
            }
        ],
    }


def test_a_misread_card_says_which_field_is_wrong_in_each_language(world: World) -> None:
    """The scanned QR registers a new person: a birth date in the future, an ID of the wrong
    length and a sex the ID contradicts are refused, naming the field."""
    future = QR.replace("001085012345", "001299012345").replace("15031985", "01012099")
    short = QR.replace("001085012345", "0010850123")
    female = QR.replace("|Nam|", "|Nữ|")
    cases = [
        (
            future,
            "Mã QR trên CCCD: ngày sinh 01/01/2099 ở tương lai; có thể đã quét sai",
            "CCCD QR: the birth date 01/01/2099 is in the future; the scan is probably misread",
        ),
        (
            short,
            "Mã QR trên CCCD: Số CCCD phải có đúng 12 chữ số, đã nhận '0010850123'",
            "CCCD QR: CCCD must be exactly 12 digits, got '0010850123'",
        ),
        (
            female,
            "Mã QR trên CCCD: số định danh 001085012345 ứng với giới tính Nam, năm sinh 1985, "
            "nhưng thẻ ghi giới tính Nữ, ngày sinh 1985-03-15; có thể đã quét sai",
            "CCCD QR: ID 001085012345 encodes a male born in 1985, but the card says female "
            "born 1985-03-15; the scan is probably misread",
        ),
    ]
    api = _bearer(world, "bs.an", "doctor", "01001")
    with signed_in(world, "bs.an") as desk:
        csrf = csrf_of(desk.get("/clinic").text)
        for qr, vietnamese, english in cases:
            vi = desk.post("/clinic/check-in?lang=vi", data={"q": qr, "csrf": csrf})
            assert vi.status_code == 422 and vietnamese in _text(vi)
            en = desk.post("/clinic/check-in?lang=en", data={"q": qr, "csrf": csrf})
            assert english in _text(en)
            r = desk.post("/fhir/Patient/$check-in", json=_params(qr=qr), headers=api)
            assert r.status_code == 400
            assert r.json()["issue"] == [
                {
                    "severity": "error",
                    "code": "invalid",
                    "diagnostics": english,
                    "expression": ["qr"],
                }
            ]
    assert find(world.platform, "Patient", [("birthdate", "2099-01-01")], 5) == []


def test_paying_a_bill_twice_or_the_wrong_amount_reads_in_vietnamese(world: World) -> None:
    with signed_in(world, "bs.an") as cashier:
        eid, csrf = _closed_visit(world, cashier)
        confirm_presence(world, cashier, csrf)  # the bill reads the patient's record
        issued = cashier.post(f"/clinic/visits/{eid}/bill", data={"csrf": csrf})
        assert issued.status_code == 200, issued.text
        rid = invoice_id(eid)
        due = int(amount_due(world.platform.read("Invoice", rid).content or {}))
        assert due >= 1000  # the thousands separator shows
        wrong = {"csrf": csrf, "amount": str(due + 1000), "method": "cash"}
        vi = cashier.post(f"/clinic/visits/{eid}/payment?lang=vi", data=wrong)
        assert vi.status_code == 400
        more = f"{due + 1000:,}"
        assert (
            f"Số tiền phải trả của bảng kê Invoice/{rid} là {f'{due:,}'.replace(',', '.')} đồng; "
            f"{more.replace(',', '.')} đồng là nhiều hơn số đó. Hãy thu đúng số tiền phải trả."
        ) in _text(vi)
        en = cashier.post(f"/clinic/visits/{eid}/payment?lang=en", data=wrong)
        assert (
            f"The amount due on Invoice/{rid} is {due:,} đồng; {more} đồng is more than that. "
            "Take exactly the amount due."
        ) in _text(en)
        right = {"csrf": csrf, "amount": str(due), "method": "cash"}
        paid = cashier.post(f"/clinic/visits/{eid}/payment?lang=vi", data=right)
        assert paid.status_code == 200 and "đã được thanh toán" not in _text(paid)
        again = cashier.post(f"/clinic/visits/{eid}/payment?lang=vi", data=right)
        assert again.status_code == 409
        assert (
            f"Bảng kê Invoice/{rid} đã được thanh toán; không nhận thanh toán lần thứ hai"
            in _text(again)
        )
        en = cashier.post(f"/clinic/visits/{eid}/payment?lang=en", data=right)
        assert f"Invoice/{rid} is already paid; a second payment is refused" in _text(en)


def test_signing_again_with_a_spent_code_reads_in_vietnamese_and_the_api_is_unchanged(
    world: World,
) -> None:
    with signed_in(world, "bs.an") as doctor:
        eid, csrf = _closed_visit(world, doctor)
        code = pyotp.TOTP(world.totp_secret).at(time.time())
        form = {"csrf": csrf, "method": "totp", "code": code}
        signed = doctor.post(f"/clinic/visits/{eid}/sign", data=form, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        vi = doctor.post(f"/clinic/visits/{eid}/sign?lang=vi", data=form)
        assert vi.status_code == 403
        assert (
            "Chữ ký chưa được xác nhận: Mã xác thực này đã được dùng; hãy đợi mã tiếp theo"
            in _text(vi)
        )
        en = doctor.post(f"/clinic/visits/{eid}/sign?lang=en", data=form)
        english = (
            "The signature was not confirmed: This authenticator code was already used; "
            "wait for the next one"
        )
        assert english in _text(en)
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "method", "valueCode": "totp"},
                {"name": "code", "valueString": code},
            ],
        }
        api = _bearer(world, "bs.an", "doctor", "01001")
        r = doctor.post(f"/fhir/Encounter/{eid}/$sign", json=body, headers=api)
        assert r.status_code == 403
        assert r.json() == {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "forbidden", "diagnostics": english}],
        }


def test_refused_access_reads_in_vietnamese_and_the_api_is_unchanged(world: World) -> None:
    """The history written elsewhere is closed to a facility that checked the person in by
    number only; a receptionist may not sign; another facility may not ask the patient for a
    code before checking them in: the door says why in the reader's language."""
    pid = world.patient_id
    with signed_in(world, "bs.an") as doctor:
        eid, csrf = _closed_visit(world, doctor)
        # checked in by number only: the bill would read the history written elsewhere
        vi = doctor.post(f"/clinic/visits/{eid}/bill?lang=vi", data={"csrf": csrf})
        assert vi.status_code == 403
        assert (
            f"Người bệnh Patient/{pid} mới được tiếp nhận tại cơ sở 01001 bằng số định danh"
            in _text(vi)
        )
        en = doctor.post(f"/clinic/visits/{eid}/bill?lang=en", data={"csrf": csrf})
        assert f"Patient/{pid} was checked in at facility 01001 by a number only" in _text(en)
    with signed_in(world, "tieptan") as desk:
        csrf = csrf_of(desk.get("/clinic").text)
        form = {"csrf": csrf, "method": "totp", "code": "123456"}
        vi = desk.post(f"/clinic/visits/{eid}/sign?lang=vi", data=form)
        assert vi.status_code == 403
        roles = re.search(r"Thao tác \$sign chỉ dành cho các vai trò: ([a-z, -]+)", _text(vi))
        assert roles is not None and "doctor" in roles.group(1)
        en = desk.post(f"/clinic/visits/{eid}/sign?lang=en", data=form)
        assert f"$sign needs one of the roles: {roles.group(1)}" in _text(en)
    with signed_in(world, "bs.c") as other:
        csrf = csrf_of(other.get("/clinic").text)
        vi = other.post(f"/clinic/patients/{pid}/presence-code?lang=vi", data={"csrf": csrf})
        assert vi.status_code == 403
        assert f"Hãy tiếp nhận người bệnh Patient/{pid} tại cơ sở của bạn trước" in _text(vi)
        en = other.post(f"/clinic/patients/{pid}/presence-code?lang=en", data={"csrf": csrf})
        english = f"Check Patient/{pid} in at your facility first ($check-in)"
        assert english in _text(en)
        api = _bearer(world, "bs.c", "doctor", "01003")
        r = other.post(f"/fhir/Patient/{pid}/$presence-code", json={}, headers=api)
        assert r.status_code == 403
        assert r.json()["issue"] == [
            {"severity": "error", "code": "forbidden", "diagnostics": english}
        ]
        read = other.get(f"/fhir/Patient/{pid}", headers=api)
        assert read.status_code == 403
        assert read.json()["issue"][0]["diagnostics"] == (
            f"Patient/{pid} has no current relationship with facility 01003; "
            "a clinician may break the glass with a reason"
        )


def test_a_problem_with_a_value_in_it_reads_in_vietnamese_beside_its_field(world: World) -> None:
    with signed_in(world, "bs.an") as doctor:
        eid, csrf = start_visit(world, doctor)
        form = {"csrf": csrf, "reason": "Đau đầu", "pulse": "720", "dx0": "XYZ9"}
        vi = doctor.post(f"/clinic/visits/{eid}/close?lang=vi", data=form)
        assert vi.status_code == 422
        assert "XYZ9 không phải là mã ICD-10" in _text(vi)
        assert "Giá trị này không thể có; hãy kiểm tra lại" in _text(vi)  # a plain message
        en = doctor.post(f"/clinic/visits/{eid}/close?lang=en", data=form)
        assert "XYZ9 is not an ICD-10 code" in _text(en)
        assert "This value is not possible; check it" in _text(en)
