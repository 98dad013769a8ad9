"""Issue #14's whole journey in the real Chromium: a resident scans the ward's poster on a
small phone, signs in with the code the SMS carried, finds their record and declares an allergy
and a long-term illness; the ward station's nurse confirms the allergy at the clinic, signed with
her authenticator code; the resident then sees it confirmed by the station, and the nurse's
look at the record in "who looked at my record"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import Browser

from tests.browser import axe_violations, free_port, serving
from tests.clinic.clinic_world import CCCD_NUMBER, PASSWORD, PHONE, World, make_world
from tests.clinic.station import CITY, NURSE, WARD_NAME, make_station, totp_secret
from tests.portal.portal_world import WARD, declare_the_rest, last_code


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("journey"), base)
    make_station(world)
    person = world.platform.read("Patient", world.patient_id).content or {}
    home = {"use": "home", "city": WARD_NAME, "state": CITY}  # a resident of the ward
    world.platform.update({**person, "address": [home]}, "Patient", world.patient_id)
    with serving(world.app, port):
        yield world, base


def test_declared_then_confirmed_by_the_station_and_the_nurse_seen_in_the_access_log(
    served: tuple[World, str], chromium: Browser
) -> None:
    world, base = served
    phone = chromium.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True
    ).new_page()
    # the resident: the ward's poster, the SMS code, their record
    phone.goto(f"{base}/portal/w/{WARD}")
    assert WARD_NAME in phone.inner_text("main")
    phone.click("text=Bắt đầu")
    phone.fill("#phone", PHONE)
    phone.press("#phone", "Enter")
    phone.fill("#code", last_code(world, PHONE))
    phone.press("#code", "Enter")
    phone.wait_for_url(f"{base}/portal")
    phone.click("text=Khai báo sức khỏe")
    phone.wait_for_url(f"{base}/portal/claim")
    phone.fill("#cccd", CCCD_NUMBER)
    phone.fill("#birth-day", "15")
    phone.fill("#birth-month", "3")
    phone.fill("#birth-year", "1985")
    phone.click("text=Tìm hồ sơ của tôi")
    phone.click("main a.button")
    phone.wait_for_url(f"{base}/portal/declare")
    # an allergy and a long-term illness
    phone.click("text=Dị ứng")
    phone.click("label[for=allergies-any]")
    phone.click("text=Lưu và tiếp tục")
    phone.wait_for_url(f"{base}/portal/declare/allergies/details")
    phone.click("label[for=allergy-kind-0]")
    phone.fill("#allergy-substance-0", "Penicillin")
    phone.fill("#allergy-reaction-0", "Nổi mẩn")
    phone.click("text=Lưu và tiếp tục")
    phone.wait_for_url(f"{base}/portal/declare/conditions")
    phone.click("label[for=conditions-any]")
    phone.click("text=Lưu và tiếp tục")
    phone.wait_for_url(f"{base}/portal/declare/conditions/details")
    phone.click("text=Tăng huyết áp")
    phone.click("text=Lưu và tiếp tục")
    phone.wait_for_load_state()
    declare_the_rest(world, world.patient_id, PHONE)
    phone.goto(f"{base}/portal/declare/check")
    phone.click("text=Gửi câu trả lời >> nth=-1")
    phone.wait_for_url(f"{base}/portal/declare/sent")
    phone.goto(f"{base}/portal/book")
    book = phone.inner_text("main")
    assert "Penicillin" in book and "Chờ trạm y tế xác nhận" in book
    # the ward station's nurse confirms the allergy at the clinic, from the keyboard
    secret = totp_secret(world, NURSE)
    desk = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    desk.goto(f"{base}/clinic/sign-in")
    desk.fill("#username", NURSE)
    desk.fill("#password", PASSWORD)
    # the previous step's code signs in: the current one stays free for the signature
    desk.fill("#totp", pyotp.TOTP(secret).at(time.time() - 30))
    desk.press("#totp", "Enter")
    desk.wait_for_url(f"{base}/clinic")
    desk.goto(f"{base}/clinic/self-declared")
    desk.click(f"a[href^='/clinic/patients/{world.patient_id}']")
    desk.wait_for_selector("#self-declared")
    allergy = desk.locator("#self-declared fieldset", has_text="Penicillin")
    allergy.locator("input[value=confirm]").check()
    desk.fill("#verify-code", pyotp.TOTP(secret).now())
    desk.press("#verify-code", "Enter")
    desk.wait_for_load_state()
    assert axe_violations(desk) == []
    assert "Penicillin" not in desk.inner_text("#self-declared")  # decided: no longer waiting
    assert "Tăng huyết áp" in desk.inner_text("#self-declared")  # the illness waits still
    # the resident sees the station's confirmation, and the nurse's look at the record
    phone.goto(f"{base}/portal/book")
    allergies = phone.locator("main li", has_text="Penicillin").first.inner_text()
    assert "Trạm y tế đã xác nhận" in allergies
    phone.goto(f"{base}/portal/access-log")
    log = phone.inner_text("main")
    assert "ĐD. Vũ Thị Hoa" in log and "Trạm Y tế Phường Hoàn Kiếm" in log
    assert axe_violations(phone) == []
