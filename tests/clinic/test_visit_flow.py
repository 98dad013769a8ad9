"""A visit from closing to payment over the pages: sign by the authenticator code, print the
three paper forms (audited), refer the patient (the receiving hospital's queue and chart), bill
with a VietQR code, take the payment; and what the other facility cannot do along the way."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sokhoe.access.db import access_engine
from sokhoe.clinic.verify import verify_signature
from sokhoe.clinic.vietqr import read_payload
from sokhoe.store.sql.access_schema import audit_event
from tests.clinic.clinic_world import BANK, QR, World, make_world
from tests.clinic.test_pages import confirm_presence, csrf_of, signed_in, start_visit
from tests.conftest import BASE


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, BASE)


def next_code(world: World) -> str:
    """The authenticator code of the current 30-second step (the sign-in spent the one
    before)."""
    return pyotp.TOTP(world.totp_secret).now()


def closed_visit(world: World, doctor: TestClient, expect: int = 303, **extra: str) -> str:
    """Check the person in, start and close a visit with ``extra`` form fields; its id (or,
    when closing is expected to be refused, the page that says why)."""
    eid, csrf = start_visit(world, doctor)
    form = {"csrf": csrf, "reason": "Đau đầu", "systolic": "150", "diastolic": "95", "dx0": "I10"}
    closed = doctor.post(
        f"/clinic/visits/{eid}/close", data={**form, **extra}, follow_redirects=False
    )
    assert closed.status_code == expect, closed.text
    if expect != 303:
        return closed.text
    assert closed.headers["location"] == f"/clinic/visits/{eid}/sign"
    return eid


def audit_actions(world: World) -> list[str]:
    """The action of every audit row, oldest first."""
    with access_engine(world.app.state.store).connect() as conn:
        return [
            a for (a,) in conn.execute(select(audit_event.c.action).order_by(audit_event.c.seq))
        ]


def test_sign_print_and_pay(world: World) -> None:
    with signed_in(world, "bs.an") as doctor:
        eid = closed_visit(world, doctor, follow_up="2027-01-05")
        csrf = csrf_of(doctor.get("/clinic").text)
        # printing waits for the signature
        assert doctor.get(f"/clinic/visits/{eid}/print/summary").status_code == 409
        review = doctor.get(f"/clinic/visits/{eid}/sign")
        assert review.status_code == 200 and "Tăng huyết áp" in review.text
        sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', review.text)
        assert sha is not None
        wrong = doctor.post(
            f"/clinic/visits/{eid}/sign",
            data={"csrf": csrf, "sha256": sha.group(1), "code": "000000"},
        )
        assert wrong.status_code == 403 and "Sai mã xác thực" in wrong.text
        stale = doctor.post(
            f"/clinic/visits/{eid}/sign",
            data={"csrf": csrf, "sha256": "0" * 64, "code": next_code(world)},
        )
        assert stale.status_code == 409  # not what the clinician reviewed: nothing signed
        assert "Chờ ký: <b>1</b>" in doctor.get("/clinic").text
        signed = doctor.post(  # the stale attempt was refused before the code was spent
            f"/clinic/visits/{eid}/sign",
            data={"csrf": csrf, "sha256": sha.group(1), "code": next_code(world)},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        closed = doctor.get(f"/clinic/visits/{eid}").text
        assert "BS. Trần Thị Bình" in closed and 'id="print-summary"' in closed
        # the three paper forms, always Vietnamese, audited
        summary = doctor.get(f"/clinic/visits/{eid}/print/summary?lang=en")
        assert summary.status_code == 200
        assert '<html lang="vi">' in summary.text
        assert "Bản giấy chuyển đổi từ hồ sơ bệnh án điện tử" in summary.text
        assert "I10 — Tăng huyết áp" in summary.text and "<svg" in summary.text
        code = re.search(r"Mã tra cứu: <b>([0-9A-F-]{14})</b>", summary.text)
        assert code is not None
        appointment = doctor.get(f"/clinic/visits/{eid}/print/appointment")
        assert "05/01/2027" in appointment.text and "GIẤY HẸN KHÁM LẠI" in appointment.text
        assert doctor.get(f"/clinic/visits/{eid}/print/referral").status_code == 409  # none
        assert doctor.get(f"/clinic/visits/{eid}/print/secret").status_code == 400
        assert audit_actions(world).count("print") == 2
        # the QR on the paper opens the verified signature
        check = doctor.get(f"/clinic/visits/{eid}/signature?code={code.group(1)}&lang=en")
        assert "✓ Valid signature" in check.text
        assert re.search(r"Matches the paper</dt><dd>yes", check.text)
        # the bill reads the person's record (card, address): the patient confirms the code
        assert doctor.post(f"/clinic/visits/{eid}/bill", data={"csrf": csrf}).status_code == 403
        confirm_presence(world, doctor, csrf)
        # the bill, its VietQR code, the payment
        assert doctor.post(f"/clinic/visits/{eid}/bill", data={"csrf": csrf}).status_code == 200
        bill = doctor.get(f"/clinic/visits/{eid}/bill").text
        due = re.search(r'name="amount" inputmode="numeric" value="(\d+)"', bill)
        assert due is not None and int(due.group(1)) > 0
        assert 'id="vietqr"' in bill
        payload = re.search(r'data-payload="([^"]+)"', bill)
        assert payload is not None
        fields = read_payload(payload.group(1))  # checks the CRC too
        assert fields["amount"] == due.group(1) and fields["account"] == BANK.account
        short = doctor.post(
            f"/clinic/visits/{eid}/payment",
            data={"csrf": csrf, "amount": str(int(due.group(1)) - 1000), "method": "vietqr"},
        )
        assert short.status_code == 400
        paid = doctor.post(
            f"/clinic/visits/{eid}/payment",
            data={"csrf": csrf, "amount": due.group(1), "method": "vietqr"},
        )
        assert paid.status_code == 200 and 'id="paid"' in paid.text
        twice = doctor.post(
            f"/clinic/visits/{eid}/payment",
            data={"csrf": csrf, "amount": due.group(1), "method": "cash"},
        )
        assert twice.status_code == 409
        # every page in both languages (the printed forms stay Vietnamese)
        pages = {
            "/clinic": ("Today", "Hôm nay"),
            f"/clinic/patients/{world.patient_id}": ("Visits", "Các lượt khám"),
            f"/clinic/visits/{eid}": ("Print and bill", "In giấy tờ và thanh toán"),
            f"/clinic/visits/{eid}/sign": ("Your signature covers", "Chữ ký của bạn xác nhận"),
            f"/clinic/visits/{eid}/signature": ("Valid signature", "Chữ ký hợp lệ"),
            f"/clinic/visits/{eid}/bill": ("Patient pays", "Người bệnh trả"),
        }
        for path, (english, vietnamese) in pages.items():
            en = doctor.get(f"{path}?lang=en")
            vi = doctor.get(f"{path}?lang=vi")
            assert '<html lang="en">' in en.text and english in en.text, path
            assert '<html lang="vi">' in vi.text and vietnamese in vi.text, path
    repo = world.platform
    provenance = repo.search(
        repo.parse_query("Provenance", [("target", f"Encounter/{eid}")])
    ).matches
    assert len(provenance) == 1
    assert verify_signature(repo, provenance[0].id).valid
    with signed_in(world, "bs.b") as other:
        assert other.get(f"/clinic/visits/{eid}/print/summary").status_code in (403, 404)
        assert other.get(f"/clinic/visits/{eid}/bill").status_code in (403, 404)
        other_csrf = csrf_of(other.get("/clinic").text)
        sign = other.post(f"/clinic/visits/{eid}/sign", data={"csrf": other_csrf, "code": "1"})
        assert sign.status_code in (403, 404)


def test_a_referral_reaches_the_receiving_hospital_and_opens_the_record(world: World) -> None:
    with signed_in(world, "bs.c") as hospital:
        before = hospital.get(f"/clinic/patients/{world.patient_id}").text
        assert "7.8" not in before and "Bệnh viện Đa khoa Đống Đa" not in before
    with signed_in(world, "bs.an") as doctor:
        csrf = csrf_of(doctor.get("/clinic").text)
        doctor.post("/clinic/check-in", data={"q": QR, "csrf": csrf})
        confirm_presence(world, doctor, csrf)
        no_reason = closed_visit(world, doctor, refer_to="01003", expect=422)
        assert "Write why the patient is referred" in no_reason or "chuyển" in no_reason
        eid = closed_visit(
            world, doctor, refer_to="01003", refer_reason="Cần khám chuyên khoa tim mạch"
        )
        sha = re.search(
            r'name="sha256" value="([0-9a-f]{64})"', doctor.get(f"/clinic/visits/{eid}/sign").text
        )
        assert sha is not None
        doctor.post(
            f"/clinic/visits/{eid}/sign",
            data={"csrf": csrf, "sha256": sha.group(1), "code": next_code(world)},
        )
        slip = doctor.get(f"/clinic/visits/{eid}/print/referral")
        assert slip.status_code == 200
        assert "GIẤY CHUYỂN TUYẾN" in slip.text and "Bệnh viện Tim Hà Nội" in slip.text
    with signed_in(world, "bs.b") as other:  # a hospital the patient was not referred to
        assert 'id="referred"' not in other.get("/clinic").text
    with signed_in(world, "bs.c") as hospital:
        queue = hospital.get("/clinic").text
        assert 'id="referred"' in queue and "Cần khám chuyên khoa tim mạch" in queue
        assert "Trạm Y tế Phường Hoàn Kiếm" in queue and "Nguyễn Văn An" in queue
        chart = hospital.get(f"/clinic/patients/{world.patient_id}").text
        assert "7.8" in chart and "I10" in chart  # the history opened by the referral
        referral = re.search(r'name="referral" value="([^"]+)"', queue)
        assert referral is not None
        taken = hospital.post(
            "/clinic/visits",
            data={
                "csrf": csrf_of(queue),
                "patient": world.patient_id,
                "name": "Nguyễn Văn An",
                "referral": referral.group(1),
                "payer": "insurance",
            },
            follow_redirects=False,
        )
        assert taken.status_code == 303
        after = hospital.get("/clinic").text
        assert 'id="referred"' not in after and "Nguyễn Văn An" in after


def test_a_signed_summary_is_corrected_by_an_amendment_signed_again(world: World) -> None:
    with signed_in(world, "bs.an") as doctor:
        eid = closed_visit(world, doctor, history="Đau đầu 3 ngày", treatment="Amlodipin 5 mg")
        csrf = csrf_of(doctor.get("/clinic").text)
        sha = re.search(
            r'name="sha256" value="([0-9a-f]{64})"', doctor.get(f"/clinic/visits/{eid}/sign").text
        )
        assert sha is not None
        doctor.post(
            f"/clinic/visits/{eid}/sign",
            data={"csrf": csrf, "sha256": sha.group(1), "code": next_code(world)},
        )
        form = doctor.get(f"/clinic/visits/{eid}/amend").text
        assert "Amlodipin 5 mg" in form
        change = {"csrf": csrf, "history": "Đau đầu 3 ngày", "treatment": "Amlodipin 10 mg"}
        unreasoned = doctor.post(f"/clinic/visits/{eid}/amend", data={**change, "code": "1"})
        assert unreasoned.status_code == 400  # an amendment needs its reason
        code = pyotp.TOTP(world.totp_secret).at(time.time() + 30)  # the step after the signing
        done = doctor.post(
            f"/clinic/visits/{eid}/amend",
            data={**change, "reason": "Ghi nhầm liều", "code": code},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        check = doctor.get(f"/clinic/visits/{eid}/signature?lang=en").text
        assert check.count("✓ Valid signature") == 2 and "Ghi nhầm liều" in check
    repo = world.platform
    summary = repo.search(repo.parse_query("Composition", [("encounter", f"Encounter/{eid}")]))
    current = summary.matches[0]
    assert current.version_id == 2 and "Amlodipin 10 mg" in str(current.content)
    first = repo.vread("Composition", current.id, "1").content
    assert "Amlodipin 5 mg" in str(first)  # both stay visible


PRICES = """kind,key,code,name,unit,price,group
exam,AMB,02.1896,Khám Nội (trạm),Lần,38700,13
lab,2093-3,23.0041.1494,Định lượng Cholesterol toàn phần (trạm),Lần,26900,1
"""
LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect width="9"/></svg>'


def test_each_facility_bills_from_its_own_price_list_and_prints_its_logo(world: World) -> None:
    assert world.settings.facility_dir is not None
    own = world.settings.facility_dir / "01001"
    own.mkdir(parents=True)
    (own / "prices.csv").write_text(PRICES, encoding="utf-8")
    (own / "logo.svg").write_text(LOGO, encoding="utf-8")
    with signed_in(world, "bs.an") as doctor:
        eid, csrf = start_visit(world, doctor)
        page = doctor.get(f"/clinic/visits/{eid}").text
        assert "Cholesterol toàn phần (trạm)" in page  # its own list, not the built-in one
        assert "Định lượng Glucose" not in page
        form = {"csrf": csrf, "systolic": "120", "diastolic": "80", "dx0": "I10"}
        doctor.post(f"/clinic/visits/{eid}/close", data=form)
        sha = re.search(
            r'name="sha256" value="([0-9a-f]{64})"', doctor.get(f"/clinic/visits/{eid}/sign").text
        )
        doctor.post(
            f"/clinic/visits/{eid}/sign",
            data={"csrf": csrf, "sha256": sha.group(1), "code": next_code(world)},  # type: ignore[union-attr]
        )
        printed = doctor.get(f"/clinic/visits/{eid}/print/summary").text
        assert 'class="logo" src="data:image/svg+xml;base64,' in printed
        confirm_presence(world, doctor, csrf)
        doctor.post(f"/clinic/visits/{eid}/bill", data={"csrf": csrf})
        bill = doctor.get(f"/clinic/visits/{eid}/bill").text
        assert "Khám Nội (trạm)" in bill and 'value="38700"' in bill
    with signed_in(world, "bs.b") as hospital:  # another facility keeps the built-in list
        theirs, _ = start_visit(world, hospital, room=False)
        page = hospital.get(f"/clinic/visits/{theirs}").text
        assert "Định lượng Glucose" in page and "(trạm)" not in page
