"""The health book on a cheap phone (360 × 740, Debian's Chromium): sign in with the SMS code,
read the summary, show a prescription's QR to the pharmacy, open a visit; axe-core finds no
serious or critical violation, nothing is wider than the screen, every link and button is big
enough to tap, no request leaves the loopback host and no script fails."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import axe_violations, free_port, serving, shoot
from tests.clinic.clinic_world import PHONE
from tests.portal.book_world import BookWorld, make_book_world
from tests.portal.portal_world import last_code

PHONE_SIZE = {"width": 360, "height": 740}
SMALL_TARGETS = """() => [...document.querySelectorAll('main a, main button, main summary')]
  .filter(e => e.offsetParent !== null)
  .map(e => [e.textContent.trim().slice(0, 40), e.getBoundingClientRect().height])
  .filter(([_, h]) => h < 44)"""
"""Links, buttons and disclosure toggles of the page shorter than a 44 px touch target."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BookWorld, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    book = make_book_world(tmp_path_factory.mktemp("book-browser"), base)
    with serving(book.world.app, port):
        yield book, base


def _check(page: Page, name: str, at: str | None = None) -> None:
    assert axe_violations(page) == [], name
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_SIZE["width"], name
    assert page.evaluate(SMALL_TARGETS) == [], name
    shoot(page, f"portal/{name}", at)


def test_the_book_on_a_phone(served: tuple[BookWorld, str], chromium: Browser) -> None:
    book, base = served
    context = chromium.new_context(
        viewport=PHONE_SIZE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
    page.goto(f"{base}/portal/book")
    assert "/portal/sign-in" in page.url
    page.fill("#phone", PHONE)
    page.click("button[type=submit]")
    page.fill("#code", last_code(book.world, PHONE))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/portal/book")
    assert page.locator("h1").inner_text() == "Sổ sức khỏe của tôi"
    glucose = page.locator("li", has_text="Đường huyết").first
    assert "cao hơn mức bình thường (3,9–6,4)" in glucose.inner_text()
    assert page.locator("li.declared", has_text="Hải sản").count() == 1
    _check(page, "so-suc-khoe-01-tom-tat")
    # the pharmacy scans the code from the screen: big enough, whole on a 360 px screen
    page.get_by_text("Hiện mã QR cho nhà thuốc").click()
    qr = page.locator(".qr svg").first
    box = qr.bounding_box()
    assert box is not None and 180 <= box["width"] <= 330
    assert page.locator(".qr-box .code.big").first.inner_text() == book.code
    _check(page, "so-suc-khoe-02-ma-qr", at="#prescriptions")
    page.locator(f"a[href='/portal/book/visits/{book.signed_visit}']").click()
    page.wait_for_url(f"{base}/portal/book/visits/{book.signed_visit}")
    assert page.get_by_text("Tải bản tóm tắt đã ký (PDF)").is_visible()
    _check(page, "so-suc-khoe-03-lan-kham")
    page.goto(f"{base}/portal/book/visits/enc-b")
    assert "Đường huyết 7,8 mmol/L — cao hơn mức bình thường" in page.inner_text("main")
    _check(page, "so-suc-khoe-04-ket-qua")
    page.goto(f"{base}/portal/download")
    _check(page, "so-suc-khoe-05-tai-ve")
    assert errors == [] and hosts == {"127.0.0.1"}
    context.close()
