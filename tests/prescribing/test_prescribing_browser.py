"""The prescription in the real Chromium, from the keyboard: a doctor at the commune station
prescribes in the visit, sees the duplicate-therapy warning for a medicine active from the
district hospital, answers it, signs the visit and prints the prescription (QR and Code 128);
axe finds no serious violation, at desktop and phone sizes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from sokhoe.operations.prescribe import run_prescribe
from tests.browser import axe_violations, free_port, leave_autofocus, serving, shoot
from tests.clinic.clinic_world import PASSWORD, QR
from tests.prescribing.rx_world import B, RxWorld, line, make_rx_world, parameters


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RxWorld, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rx = make_rx_world(tmp_path_factory.mktemp("rx-browser"), base)
    with serving(rx.world.app, port):
        yield rx, base


def _check(page: Page, name: str) -> None:
    assert axe_violations(page) == [], name
    shoot(page, f"clinic/{name}")


def _sms_code(rx: RxWorld) -> str:
    outbox = Path(rx.world.settings.var_dir) / "sms-outbox.jsonl"
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return next(w for w in re.findall(r"\b\d{6}\b", text))


def test_a_doctor_prescribes_answers_the_warning_signs_and_prints(
    served: tuple[RxWorld, str], chromium: Browser
) -> None:
    rx, base = served
    world = rx.world
    run_prescribe(  # the district hospital prescribed amlodipine for a month
        rx.doctor("bs.b", B),
        parameters(world.patient_id, "enc-b", [line("AMLODIPIN-5", per_day=1, days=30)]),
        datetime.now(UTC),
    )
    totp = pyotp.TOTP(world.totp_secret)
    context = chromium.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/clinic/sign-in")
    page.keyboard.type("bs.an")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(totp.at(datetime.now(UTC).timestamp() - 30))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/clinic")
    page.keyboard.type(QR)
    page.keyboard.press("Enter")
    page.wait_for_selector("#found")
    page.focus("#start-visit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#next-patient")
    page.goto(f"{base}/clinic/patients/{world.patient_id}")
    page.focus("#send-code")
    page.keyboard.press("Enter")
    page.wait_for_selector("#code")
    page.focus("#code")
    page.keyboard.type(_sms_code(rx))
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Bệnh viện Đa khoa Đống Đa")
    page.goto(f"{base}/clinic")
    leave_autofocus(page, "q")  # leave the check-in box, then: next patient
    page.keyboard.press("n")
    page.wait_for_selector("#visit-form")
    page.wait_for_load_state()  # the shortcuts' script runs at the end of the page
    page.keyboard.press("Escape")
    page.keyboard.press("p")  # the prescription's first medicine
    page.keyboard.type("amlo")  # the catalogue, by name, without accents
    page.wait_for_selector("#rx0-drug-choices [data-code='AMLODIPIN-5']")
    page.keyboard.press("Enter")
    assert page.input_value("#rx0-drug") == "AMLODIPIN-5"
    for field, value in (("dose", "1"), ("times", "1"), ("days", "10")):
        page.keyboard.press("Tab")
        page.keyboard.type(value)
        assert page.input_value(f"#rx0-{field}") == value
    page.focus("#prescribe-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#rx-problems")
    warning = page.inner_text("#rx-problems")
    assert "Bệnh viện Đa khoa Đống Đa" in warning and "cùng hoạt chất" in warning
    _check(page, "rx-01-canh-bao-trung-thuoc")
    page.focus("#rx0-override")
    page.keyboard.type("Bệnh viện đã ngừng thuốc, kê lại liều mới")
    page.focus("#prescribe-button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#prescription .issued")
    code = page.inner_text("#prescription .issued code")
    assert re.fullmatch(r"01001[0-9a-z]{7}-C", code)
    _check(page, "rx-02-da-ke-don")
    # close, sign, print
    page.focus("#systolic")
    page.keyboard.type("135")
    page.keyboard.press("Tab")
    page.keyboard.type("85")
    page.fill("#dx0", "I10")
    page.focus("#close-visit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#sign-form")
    assert "Amlodipin 5mg" in page.inner_text("main")
    page.focus("#code")
    page.keyboard.type(totp.now())
    page.keyboard.press("Enter")
    page.wait_for_selector(".print-prescription")
    page.goto(f"{base}{page.get_attribute('.print-prescription', 'href')}")
    assert code in page.inner_text("main") and "ĐƠN THUỐC" in page.inner_text("main")
    assert page.locator(".barcode svg").count() == 1 and page.locator(".rx-qr svg").count() == 1
    _check(page, "rx-03-in-don-thuoc")
    phone = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    phone.add_cookies(context.cookies())
    small = phone.new_page()
    visit = re.search(r"/clinic/visits/([^/]+)/print", page.url)
    assert visit is not None
    small.goto(f"{base}/clinic/visits/{visit.group(1)}")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 376, f"the closed visit scrolls sideways on a phone ({width} px)"
    _check(small, "rx-04-phone")
    phone.close()
    context.close()
    # a pharmacist at a pharmacy across the street scans the code and hands over part, then the
    # rest; a third sale is refused with a clear message
    counter = chromium.new_context(viewport={"width": 1366, "height": 800})
    ds = counter.new_page()
    ds.on("pageerror", lambda e: errors.append(str(e)))
    ds.goto(f"{base}/pharmacy")
    ds.wait_for_url(re.compile(r".*/clinic/sign-in.*"))
    ds.keyboard.type("ds.chau")
    ds.keyboard.press("Tab")
    ds.keyboard.type(PASSWORD)
    ds.keyboard.press("Enter")
    ds.wait_for_url(f"{base}/pharmacy")
    ds.keyboard.type(code.upper())  # a scanner types the code and Enter; any case matches
    ds.keyboard.press("Enter")
    ds.wait_for_selector("#rx-state")
    assert "Chưa bán" in ds.inner_text("#rx-state")
    _check(ds, "rx-05-nha-thuoc")
    quantity = ds.locator("input[name^='q-']").first
    assert quantity.input_value() == "10"  # what remains, by default
    quantity.fill("4")
    ds.focus("#hand-over")
    ds.keyboard.press("Enter")
    ds.wait_for_selector("#sold")
    assert "Đã bán một phần" in ds.inner_text("#sold")
    assert "Nguyễn Văn An (1985)" in ds.inner_text("#sold .label")  # whose medicine it is
    _check(ds, "rx-06-da-ban-mot-phan")
    assert ds.locator("input[name^='q-']").first.input_value() == "6"
    ds.focus("#hand-over")
    ds.keyboard.press("Enter")
    ds.wait_for_selector("#sold")
    assert "Đã bán đủ" in ds.inner_text("#sold")
    assert ds.is_visible("#not-dispensable")
    ds.goto(f"{base}/pharmacy?code={code}")
    assert ds.locator("#hand-over").count() == 0  # nothing more to hand over
    # a sale posted anyway (a second counter, an old tab) is refused and says why
    answer = ds.request.post(
        f"{base}/pharmacy/dispense",
        form={
            "csrf": ds.get_attribute("meta[name=csrf-token]", "content") or "",
            "code": code,
            "invoice": "HD-LAN-3",
            ds.locator("input[name^='q-']").first.get_attribute("name") or "": "1",
        },
    )
    assert answer.status == 409 and "Không thể bán thêm" in answer.text()
    phone_counter = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    phone_counter.add_cookies(counter.cookies())
    small_counter = phone_counter.new_page()
    small_counter.goto(f"{base}/pharmacy?code={code}")
    width = small_counter.evaluate("document.documentElement.scrollWidth")
    assert width <= 376, f"the counter scrolls sideways on a phone ({width} px)"
    _check(small_counter, "rx-07-nha-thuoc-phone")
    assert errors == []
    phone_counter.close()
    counter.close()
