"""The clinic pages in a real browser (Debian's Chromium, driven by Playwright): a receptionist
and doctor's morning done from the keyboard, checked by axe-core on every page, at desktop and
phone sizes, with no request leaving the loopback host and no script error."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
import segno
from playwright.sync_api import Browser, Page

from sokhoe.access.accounts import add_facility
from sokhoe.clinic.billing import invoice_id
from sokhoe.clinic.referrals import referral
from sokhoe.clinic.verify import verify_signature
from sokhoe.clinic.vietqr import read_payload
from sokhoe.fhir.resources import format_instant
from sokhoe.interop.claims.sources import find_facility
from tests.browser import axe_violations, free_port, leave_autofocus, serving, shoot
from tests.clinic.clinic_world import PASSWORD, QR, World, make_world


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("clinic-browser"), base)
    with serving(world.app, port):
        yield world, base


def _sms_code(world: World) -> str:
    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return next(w for w in re.findall(r"\b\d{6}\b", text))


def _check(page: Page, name: str) -> None:
    """Every page: no serious or critical axe violation, and its screenshot."""
    assert axe_violations(page) == [], name
    shoot(page, f"clinic/{name}")


def test_a_whole_visit_from_the_keyboard_signed_printed_and_paid(
    served: tuple[World, str],
    chromium: Browser,
) -> None:
    world, base = served
    totp = pyotp.TOTP(world.totp_secret)
    context = chromium.new_context(viewport={"width": 1366, "height": 800}, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
    page.goto(f"{base}/clinic")
    assert page.url.startswith(f"{base}/clinic/sign-in")
    assert page.locator("html").get_attribute("lang") == "vi"  # whatever the browser's language
    _check(page, "01-dang-nhap")
    page.keyboard.type("bs.an")  # the username field has focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(totp.now())
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/clinic")
    # a USB scanner types the QR text and Enter into the focused box
    page.keyboard.type(QR)
    page.keyboard.press("Enter")
    page.wait_for_selector("#found")
    assert "Nguyễn Văn An" in page.inner_text("#found")
    _check(page, "02-tiep-nhan")
    page.focus("#start-visit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#next-patient")
    assert "Chờ khám: 1" in page.inner_text(".counts").replace("\n", " ")
    _check(page, "03-danh-sach")
    # the patient reads out the code sent to their phone: the history opens
    page.goto(f"{base}/clinic/patients/{world.patient_id}")
    page.focus("#send-code")
    page.keyboard.press("Enter")
    page.wait_for_selector("#code")
    page.focus("#code")
    page.keyboard.type(_sms_code(world))
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Bệnh viện Đa khoa Đống Đa")
    _check(page, "04-ho-so")
    page.goto(f"{base}/clinic")
    leave_autofocus(page, "q")  # leave the check-in box, then: next patient
    page.keyboard.press("n")
    page.wait_for_selector("#visit-form")
    page.wait_for_load_state()  # the shortcuts' script runs at the end of the page
    page.keyboard.press("v")
    page.keyboard.type("150")
    page.keyboard.press("Tab")
    page.keyboard.type("95")
    page.focus("#dx0")
    page.keyboard.type("tang huyet ap")  # Vietnamese without accents finds I10
    page.wait_for_selector("#dx0-choices [data-code='I10']")
    page.keyboard.press("Enter")
    assert page.input_value("#dx0") == "I10"
    page.wait_for_selector("#saved:has-text('Đã lưu nháp')")  # saved on the server as typed
    _check(page, "05-kham")
    # the glucose measured at the hospital nine days ago is shown before the order is placed
    page.keyboard.press("Escape")
    page.keyboard.press("o")
    page.select_option("#service", "lab:2345-7")
    page.focus("#order-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#repeat-alert")
    alert = page.inner_text("#repeat-alert")
    assert "7.8" in alert and "Bệnh viện Đa khoa Đống Đa" in alert
    _check(page, "06-canh-bao-xet-nghiem-lap-lai")
    page.focus("#repeat_reason")
    page.keyboard.type("Theo dõi đường huyết sau điều chỉnh thuốc")
    page.keyboard.press("Enter")
    page.wait_for_selector("ul.placed")
    page.wait_for_load_state()  # the shortcuts' script runs at the end of the page
    page.keyboard.press("s")  # to the close button (not pressed by the shortcut alone)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/clinic/visits/*/sign")
    eid = page.url.split("/")[-2]
    assert "I10" in page.inner_text("main")
    _check(page, "07-ky")
    page.keyboard.type(totp.at(time.time() + 30))  # the code field has focus; next code
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/clinic/visits/{eid}")
    assert "BS. Trần Thị Bình" in page.inner_text("main")
    _check(page, "08-da-ky")
    page.goto(f"{base}/clinic/visits/{eid}/print/summary")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "Bản giấy chuyển đổi từ hồ sơ bệnh án điện tử" in page.inner_text("footer")
    assert page.locator("footer .qr svg").count() == 1
    _check(page, "09-in-tom-tat")
    page.goto(f"{base}/clinic/visits/{eid}")
    page.focus("#make-bill")
    page.keyboard.press("Enter")
    page.wait_for_selector("#vietqr svg")
    payload = page.get_attribute("#vietqr", "data-payload") or ""
    due = page.input_value("#amount")
    assert read_payload(payload)["amount"] == due and int(due) > 0
    _check(page, "10-thanh-toan")
    page.focus("#record-payment")
    page.keyboard.press("Enter")
    page.wait_for_selector("#paid")
    page.goto(f"{base}/clinic/visits/{eid}/signature")
    assert "✓" in page.inner_text("main")
    _check(page, "11-kiem-tra-chu-ky")
    page.goto(f"{base}/clinic/visits/{eid}/amend")
    _check(page, "12-sua-doi")
    # the record as FHIR holds it
    repo = world.platform

    def of_visit(rtype: str, param: str = "encounter") -> list[dict[str, Any]]:
        query = repo.parse_query(rtype, [(param, f"Encounter/{eid}")])
        return [m.content for m in repo.search(query).matches if m.content]

    assert (repo.read("Encounter", eid).content or {})["status"] == "finished"
    assert {o["code"]["coding"][0]["code"] for o in of_visit("Observation")} >= {"85354-9"}
    assert [c["code"]["coding"][0]["code"] for c in of_visit("Condition")] == ["I10"]
    assert [s["code"]["coding"][0]["code"] for s in of_visit("ServiceRequest")] == ["2345-7"]
    signatures = of_visit("Provenance", "target")
    assert len(signatures) == 1 and verify_signature(repo, signatures[0]["id"]).valid
    assert (repo.read("Invoice", invoice_id(eid)).content or {})["status"] == "balanced"
    events, _ = world.app.state.auditor.for_patient([world.patient_id], 500)
    assert all(e["resourceType"] == "AuditEvent" for e in events)
    kinds = {
        (e["type"]["code"], *(s.get("code") for s in e.get("subtype", [])[:1])) for e in events
    }
    assert ("110106", "print") in kinds  # the printed summary
    assert ("rest", "operation") in kinds  # check-in, presence, $sign
    assert ("rest", "create") in kinds and ("rest", "read") in kinds
    # the same pages on a phone, in English
    phone = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    phone.add_cookies(context.cookies())
    small = phone.new_page()
    for path, name in (
        ("/clinic?lang=en", "13-phone-today"),
        (f"/clinic/patients/{world.patient_id}", "14-phone-chart"),
        (f"/clinic/visits/{eid}", "15-phone-visit"),
        (f"/clinic/visits/{eid}/bill", "16-phone-bill"),
    ):
        small.goto(f"{base}{path}")
        assert small.locator("html").get_attribute("lang") == "en"
        assert "Sign out" in small.inner_text("header")
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 375 + 1, f"{path} scrolls sideways on a phone ({width} px)"
        _check(small, name)
    assert errors == []
    assert hosts <= {"127.0.0.1"}
    phone.close()
    context.close()


def test_the_phone_camera_reads_the_id_card_qr(
    served: tuple[World, str],
    chromium: Browser,
) -> None:
    """The desk's camera scanner decodes the chip ID card's QR with the locally served jsQR
    (drawn into a canvas here: the test machine has no camera)."""
    _world, base = served
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
    page.goto(f"{base}/clinic/sign-in")
    page.fill("#username", "tieptan")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{base}/clinic")
    assert page.is_visible("#camera-button")  # a camera API exists on this origin
    image = segno.make(QR, error="m").png_data_uri(scale=4, border=4)
    text = page.evaluate(
        """async (uri) => {
            await window.sokhoeLoadDecoder();
            const img = new Image();
            img.src = uri;
            await img.decode();
            const canvas = document.createElement("canvas");
            canvas.width = img.width; canvas.height = img.height;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            return window.sokhoeDecodeQr(ctx.getImageData(0, 0, img.width, img.height));
        }""",
        image,
    )
    assert text == QR
    assert hosts <= {"127.0.0.1", ""}  # the decoder came from our own server
    assert axe_violations(page) == []
    context.close()


def test_the_receiving_hospital_s_pages_and_the_facility_chooser(
    served: tuple[World, str],
    chromium: Browser,
) -> None:
    """The pages the first test does not reach: the facility chooser (a doctor of two
    facilities) and a queue with a referral waiting, checked by axe at both sizes."""
    world, base = served
    add_facility(world.app.state.tokens.engine, "bs.c", "01002")
    repo = world.platform
    sent = referral(
        patient_id=world.patient_id,
        patient_name="Nguyễn Văn An",
        encounter_id="enc-b",
        sender=find_facility(repo, "01002"),
        receiver=find_facility(repo, "01003"),
        reason="Khám chuyên khoa tim mạch",
        diagnosis=None,
        when=format_instant(datetime.now(UTC)),
    )
    repo.create(sent, "ServiceRequest")
    for size, suffix in (
        ({"width": 1366, "height": 800}, ""),
        ({"width": 390, "height": 844}, "-phone"),
    ):
        context = chromium.new_context(viewport=size)
        page = context.new_page()
        page.goto(f"{base}/clinic/sign-in")
        page.fill("#username", "bs.c")
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_load_state()
        assert "/clinic/facility" in page.url, (page.url, page.inner_text("main")[:300])
        _check(page, f"17-chon-co-so{suffix}")
        page.focus("#choose-facility")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/clinic")
        assert "Bệnh viện Tim Hà Nội" in page.inner_text("#who")
        assert "Khám chuyên khoa tim mạch" in page.inner_text("#referred")
        _check(page, f"18-danh-sach-benh-vien{suffix}")
        context.close()


def test_an_unidentified_emergency_patient_from_the_keyboard(
    served: tuple[World, str],
    chromium: Browser,
) -> None:
    """A doctor at hospital B registers someone brought in unconscious, treats them on the
    temporary record, and joins it to the person's record once their ID card turns up; the
    desk's emergency form, the temporary chart and the identify page pass axe at both sizes."""
    world, base = served
    for size, suffix in (
        ({"width": 1366, "height": 800}, ""),
        ({"width": 390, "height": 844}, "-phone"),
    ):
        context = chromium.new_context(viewport=size)
        page = context.new_page()
        page.goto(f"{base}/clinic/sign-in")
        page.fill("#username", "bs.b")
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url(f"{base}/clinic")
        page.focus("#emergency summary")
        page.keyboard.press("Enter")
        page.focus("#emergency-age")
        page.keyboard.type("45")
        page.focus("#emergency-features")
        page.keyboard.type("Áo sơ mi trắng, tìm thấy ở bến xe")
        _check(page, f"19-cap-cuu{suffix}")
        page.focus("#emergency-start")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf"{re.escape(base)}/clinic/visits/[^/]+$"))
        page.goto(f"{base}/clinic")
        assert "Áo sơ mi trắng" in page.inner_text("#unidentified")
        page.locator("#unidentified a", has_text="CC-").last.focus()
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert "Hồ sơ tạm" in page.inner_text("#temporary")
        _check(page, f"20-ho-so-tam{suffix}")
        page.focus("#identify")
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        page.fill("#q", QR)
        page.press("#q", "Enter")
        page.wait_for_load_state()
        assert "Nguyễn Văn An" in page.inner_text("main")
        _check(page, f"21-xac-dinh{suffix}")
        page.fill("#reason-1", "Người nhà mang căn cước đến")
        page.focus("form.join button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/clinic/patients/{world.patient_id}")
        assert "Bệnh viện Đa khoa Đống Đa" in page.inner_text("main")
        context.close()
