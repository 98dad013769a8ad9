"""Who looked at my record, and sharing, on a phone-sized Chromium (360 x 740): a resident
reads the log with an emergency opening highlighted, reports it, makes a share code with its
QR, withdraws it and keeps mental-health records private, from the keyboard; axe-core on every
page, nothing wider than the screen, touch targets of at least 44 px, no request leaving the
loopback host."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import axe_violations, free_port, serving, shoot
from tests.clinic.clinic_world import PHONE, World, make_world
from tests.portal.privacy_world import REASON, link, staff


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("privacy-browser"), base)
    link(world)
    staff(world, "bs.b").read("Observation", "glu-b")
    staff(world, "bs.c", glass=REASON).read("Observation", "glu-b")
    with serving(world.app, port):
        yield world, base


def _code(world: World) -> str:
    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    found = re.search(r"\b(\d{6})\b", text)
    assert found is not None
    return found.group(1)


def _check(page: Page, name: str, at: str | None = None) -> None:
    """Every page: no serious or critical axe violation, nothing wider than the phone, every
    button and choice at least 44 px high; its screenshot when asked for."""
    assert axe_violations(page) == [], name
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, name
    small = page.evaluate(
        """() => [...document.querySelectorAll('main button, main .button, main .choices label')]
            .filter(e => e.getBoundingClientRect().height < 44)
            .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert small == [], name
    shoot(page, f"portal/{name}", at)


def test_who_looked_and_sharing_on_a_phone(served: tuple[World, str], chromium: Browser) -> None:
    world, base = served
    context = chromium.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
    page.goto(f"{base}/portal/sign-in")
    page.fill("#phone", PHONE)
    page.keyboard.press("Enter")
    page.wait_for_selector("#code")
    page.fill("#code", _code(world))
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal")
    page.get_by_role("link", name=re.compile("Ai đã xem hồ sơ của tôi")).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal/access-log")
    # the opening and the reading it allowed, both highlighted with the reason
    assert page.locator("article.alert").count() == 2
    glass = page.locator("article.alert").first
    assert REASON in glass.inner_text() and "Bệnh viện Tim Hà Nội" in glass.inner_text()
    assert "BS. Phạm Văn Dũng" in page.inner_text("main")
    _check(page, "ai-da-xem-01-nhat-ky")
    # report the emergency opening, from the keyboard
    glass.get_by_role("link", name=re.compile("Báo điều bất thường")).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#text")
    _check(page, "ai-da-xem-02-bao-bat-thuong")
    page.focus("#text")
    page.keyboard.type("Tôi không đi cấp cứu hôm đó.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Đã gửi đến cơ sở")
    _check(page, "ai-da-xem-03-da-gui")
    # sharing: a code for one day, its QR, then withdrawn
    page.goto(f"{base}/portal/sharing")
    _check(page, "chia-se-01-trang")
    page.get_by_label("1 ngày").check()
    page.get_by_role("button", name="Tạo mã chia sẻ").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#share-code")
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", page.inner_text("#share-code").strip())
    assert page.locator(".qr svg").count() == 1
    assert page.locator(".qr svg").bounding_box()["width"] <= 328  # type: ignore[index]
    _check(page, "chia-se-02-ma-qr")
    page.goto(f"{base}/portal/sharing")
    page.get_by_role("button", name=re.compile("^Thu hồi")).first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Đã thu hồi")
    assert "Mã đang chờ cơ sở nhập" not in page.inner_text("main")
    # mental health kept for the hospital that treats the person
    psy = page.locator(".card", has=page.get_by_role("heading", name="Sức khỏe tâm thần"))
    psy.get_by_label("Bệnh viện Đa khoa Đống Đa").check()
    psy.get_by_role("button", name=re.compile("^Giữ kín")).click()
    page.wait_for_selector("text=Đang giữ kín")
    _check(page, "chia-se-03-giu-kin", at="#kept-title")
    assert errors == []
    assert hosts == {"127.0.0.1"}
    context.close()
