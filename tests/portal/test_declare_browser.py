"""A resident on a cheap phone (360 × 740) in the real Chromium: from the ward's poster to
their record, then an allergy and a long-term illness declared and sent; every page passes
axe-core, fits the screen and loads nothing from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from sokhoe.portal.extraction import TYPES
from sokhoe.portal.selfdeclared import is_self_declared
from tests.browser import axe_violations, free_port, serving, shoot
from tests.clinic.clinic_world import CCCD_NUMBER, PHONE, World, make_world
from tests.portal.portal_world import WARD, declare_the_rest, last_code

WIDTH = 360


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("declare-browser"), base)
    with serving(world.app, port):
        yield world, base


def _check(page: Page, name: str) -> None:
    """No serious axe violation, nothing wider than the phone, and the screenshot."""
    assert axe_violations(page) == [], name
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH + 1, f"{name} scrolls sideways ({width} px)"
    small = page.evaluate(
        """() => [...document.querySelectorAll('main a, main button, main input, main label')]
            .filter(e => e.offsetParent !== null && !e.closest('.visually-hidden, .default-submit'))
            .map(e => [e.tagName, e.id || e.textContent.trim().slice(0, 30),
                       e.getBoundingClientRect().height])
            .filter(([tag, , h]) => tag !== 'A' && h < 43.5 && tag !== 'LABEL')"""
    )
    assert small == [], f"{name}: touch targets under 44 px: {small}"
    shoot(page, f"portal/{name}")


def test_a_resident_declares_an_allergy_and_an_illness_on_a_small_phone(
    served: tuple[World, str], chromium: Browser
) -> None:
    world, base = served
    context = chromium.new_context(
        viewport={"width": WIDTH, "height": 740}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
    page.goto(f"{base}/portal/w/{WARD}")
    page.click("text=Bắt đầu")
    page.fill("#phone", PHONE)
    page.press("#phone", "Enter")
    page.wait_for_selector("#code")
    page.fill("#code", last_code(world, PHONE))
    page.press("#code", "Enter")
    page.wait_for_url(f"{base}/portal")
    page.click("text=Khai báo sức khỏe")  # no record yet: find it first
    page.wait_for_url(f"{base}/portal/claim")
    _check(page, "tim-ho-so-01-nhap")
    page.fill("#cccd", CCCD_NUMBER)
    page.fill("#birth-day", "16")  # a slip of the finger: the record is not found
    page.fill("#birth-month", "3")
    page.fill("#birth-year", "1985")
    page.click("text=Tìm hồ sơ của tôi")
    page.wait_for_selector("#name")
    _check(page, "tim-ho-so-02-khong-thay")
    page.click("text=Kiểm tra lại số căn cước và ngày sinh")
    page.wait_for_url(f"{base}/portal/claim")
    page.fill("#cccd", CCCD_NUMBER)
    page.fill("#birth-day", "15")
    page.fill("#birth-month", "3")
    page.fill("#birth-year", "1985")
    page.click("text=Tìm hồ sơ của tôi")
    page.wait_for_selector(".panel")
    assert "Đã tìm thấy hồ sơ sức khỏe của bạn" in page.inner_text("h1")
    _check(page, "tim-ho-so-03-da-thay")
    page.click("main a.button")
    page.wait_for_url(f"{base}/portal/declare")
    _check(page, "khai-bao-01-danh-sach")
    page.click("text=Dị ứng")
    page.click("text=Lưu và tiếp tục")  # nothing chosen: the error summary
    page.wait_for_selector(".error-summary")
    _check(page, "khai-bao-02-loi")
    page.click(".error-summary a")  # the summary's link takes the focus to the question
    assert page.evaluate("document.activeElement.id") == "allergies-any"
    page.keyboard.press("Space")  # from the keyboard: choose "Có", Enter sends
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal/declare/allergies/details")
    page.click("label[for=allergy-kind-0]")
    page.fill("#allergy-substance-0", "Penicillin")
    page.fill("#allergy-reaction-0", "Nổi mẩn, khó thở")
    _check(page, "khai-bao-03-di-ung")
    page.click("text=Lưu và tiếp tục")
    page.wait_for_url(f"{base}/portal/declare/conditions")
    page.click("label[for=conditions-any]")
    page.click("text=Lưu và tiếp tục")
    page.wait_for_url(f"{base}/portal/declare/conditions/details")
    page.click("text=Tăng huyết áp")
    _check(page, "khai-bao-04-benh-man-tinh")
    page.click("text=Lưu và tiếp tục")
    page.wait_for_load_state()
    declare_the_rest(world, world.patient_id, PHONE)
    page.goto(f"{base}/portal/declare")
    assert "Bạn đã làm xong 13 / 13 phần." in page.inner_text("main")
    page.click("text=Xem lại và gửi câu trả lời")
    page.wait_for_url(f"{base}/portal/declare/check")
    assert "Penicillin" in page.inner_text("main")
    _check(page, "khai-bao-05-xem-lai")
    page.click("text=Gửi câu trả lời >> nth=-1")
    page.wait_for_url(f"{base}/portal/declare/sent")
    _check(page, "khai-bao-06-da-gui")
    # the other kinds of question: what the record says, a choice list, dates, a photo
    page.goto(f"{base}/portal/declare/about")
    assert CCCD_NUMBER in page.inner_text("main") and "Giáo viên" in page.input_value("#occupation")
    _check(page, "khai-bao-07-thong-tin")
    page.goto(f"{base}/portal/declare/vaccines")
    page.click("label[for=vaccines-any]")
    page.click("text=Lưu và tiếp tục")
    page.wait_for_url(f"{base}/portal/declare/vaccines/details")
    _check(page, "khai-bao-08-tiem-chung")
    found = {}
    for rtype in TYPES:
        query = world.platform.parse_query(rtype, [("patient", f"Patient/{world.patient_id}")])
        found[rtype] = [
            (m.content or {}).get("code", {}).get("text")
            for m in world.platform.search(query).matches
            if is_self_declared(m.content or {})
        ]
    assert found["AllergyIntolerance"] == ["Penicillin"]
    assert found["Condition"] == ["Tăng huyết áp"]
    # the one 400 is the form sent without an answer (its error page is the point)
    assert [e for e in errors if "status of 400" not in e] == []
    assert hosts <= {"127.0.0.1"}
    context.close()
