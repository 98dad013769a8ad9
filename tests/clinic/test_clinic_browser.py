"""The clinic pages in a real browser (Debian's Chromium, driven by Playwright): a receptionist
and doctor's morning done from the keyboard, checked by axe-core on every page, at desktop and
phone sizes, with no request leaving the loopback host and no script error."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import Browser, Page

from tests.clinic.clinic_world import PASSWORD, QR, World, make_world
from tests.web.test_dashboard_browser import _free_port, chromium  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = (
    Path(os.environ.get("SOKHOE_SCREENSHOTS", "")) if os.environ.get("SOKHOE_SCREENSHOTS") else None
)
"""Set to a folder to keep the screenshots (the guide in docs/ uses them)."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("clinic-browser"), base)
    server = uvicorn.Server(
        uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield world, base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations axe-core finds on the page."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _shoot(page: Page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_morning_at_the_desk_and_in_the_room_from_the_keyboard(
    served: tuple[World, str],
    chromium: Browser,  # noqa: F811 (the fixture)
) -> None:
    world, base = served
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
    assert axe_violations(page) == []
    _shoot(page, "01-dang-nhap")
    page.keyboard.type("bs.an")  # the username field has focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/clinic")
    # a USB scanner types the QR text and Enter into the focused box
    page.keyboard.type(QR)
    page.keyboard.press("Enter")
    page.wait_for_selector("#found")
    assert "Nguyễn Văn An" in page.inner_text("#found")
    assert axe_violations(page) == []
    _shoot(page, "02-tiep-nhan")
    page.focus("#start-visit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#next-patient")
    assert "Chờ khám: 1" in page.inner_text(".counts").replace("\n", " ")
    _shoot(page, "03-danh-sach")
    page.keyboard.press("Escape")  # leave the check-in box, then: next patient
    page.keyboard.press("n")
    page.wait_for_selector("#visit-form")
    assert axe_violations(page) == []
    page.keyboard.press("v")
    page.keyboard.type("150")
    page.keyboard.press("Tab")
    page.keyboard.type("95")
    page.focus("#dx0")
    page.keyboard.type("tang huyet ap")
    page.wait_for_selector("#dx0-choices [data-code='I10']")
    page.keyboard.press("Enter")
    assert page.input_value("#dx0") == "I10"
    page.wait_for_selector("#saved:has-text('Đã lưu nháp')")  # saved on the server as typed
    _shoot(page, "04-kham")
    page.focus("#close-visit")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/clinic/patients/{world.patient_id}")
    assert axe_violations(page) == []
    enc = world.platform.search(
        world.platform.parse_query(
            "Encounter", [("status", "finished"), ("patient", "Patient/p-an")]
        )
    ).matches
    assert (
        len(enc) >= 1 and any("I10" in str(e.content) for e in enc) is False
    )  # diagnosis is a Condition
    conditions = world.platform.search(
        world.platform.parse_query("Condition", [("patient", "Patient/p-an"), ("code", "I10")])
    ).matches
    assert len(conditions) == 1
    # the same pages on a phone, in English
    phone = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    phone.add_cookies(context.cookies())
    small = phone.new_page()
    small.goto(f"{base}/clinic?lang=en")
    assert small.locator("html").get_attribute("lang") == "en"
    assert "Check in" in small.inner_text("main")
    assert axe_violations(small) == []
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 375 + 1, f"the page scrolls sideways on a phone ({width} px)"
    _shoot(small, "05-dien-thoai")
    assert errors == []
    assert hosts <= {"127.0.0.1"}
    phone.close()
    context.close()
