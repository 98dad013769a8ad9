"""The portal in a real browser on a cheap phone's screen (Debian's Chromium, 360 px wide):
from the ward's QR to the health book and the list of devices, every page checked by axe-core,
for touch targets of at least 44 px, for no horizontal scrolling at 200 % zoom, and the
portal's scripts weighed against its 50 KB budget. With ``SOKHOE_SCREENSHOTS`` set, the
screenshots of the citizen's guide (``docs/huong-dan-nguoi-dan.md``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Response

from sokhoe.access.guardians import confirm_guardian
from sokhoe.access.otp import link_citizen
from sokhoe.mpi.identifiers import mrn_system
from tests.browser import axe_violations, free_port, serving, shoot
from tests.clinic.clinic_world import PHONE, World, make_world
from tests.portal.portal_world import WARD

ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PHONE_SCREEN = {"width": 360, "height": 740}
ZOOMED = {"width": 180, "height": 370}
"""The same screen at 200 % zoom: half as many CSS pixels each way."""
SCRIPT_BUDGET = 50 * 1024
TARGET = 44
INTERACTIVE = (
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], "
    "[tabindex]:not([tabindex='-1'])"
)
_MEASURE = """(selector) => [...document.querySelectorAll(selector)].filter((e) => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.right > 0;
}).map((e) => ({what: e.outerHTML.slice(0, 90), height: e.getBoundingClientRect().height,
               width: e.getBoundingClientRect().width}))"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("portal-browser"), base)
    link_citizen(world.app.state.tokens.engine, PHONE, world.patient_id)
    _add_child(world)
    with serving(world.app, port):
        yield world, base


def _add_child(world: World) -> None:
    """The citizen's daughter, his guardian link confirmed (so the home page shows the
    profile switch)."""
    repo = world.platform
    child = {
        "resourceType": "Patient",
        "id": "p-be",
        "identifier": [{"system": mrn_system("01001"), "value": "BN-TE-1"}],
        "name": [{"family": "Nguyễn", "given": ["Thị", "Bé"]}],
        "gender": "female",
        "birthDate": "2023-05-02",
    }
    repo.update(child, "Patient", "p-be")
    father = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": "Patient/p-be"},
        "relationship": [{"coding": [{"system": ROLE_CODES, "code": "FTH"}]}],
        "telecom": [{"system": "phone", "value": PHONE}],
    }
    confirm_guardian(repo, repo.create(father, "RelatedPerson").resource.id)


def _sms_code(world: World) -> str:
    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return next(w for w in re.findall(r"\b\d{6}\b", text))


def _check(page: Page, name: str, problems: list[str]) -> None:
    """axe-core, the touch targets at 360 px, reflow at 200 % zoom; then the screenshot."""
    problems += [f"{name}: axe {v}" for v in axe_violations(page)]
    for found in page.evaluate(_MEASURE, INTERACTIVE):
        if found["height"] < TARGET - 0.5:
            problems.append(f"{name}: {found['height']:.0f} px tall: {found['what']}")
    shoot(page, f"portal/{name}")
    page.set_viewport_size(ZOOMED)
    # the layout's width against the screen's (a phone's window.innerWidth grows with the page)
    wide = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if wide > 0:
        problems.append(f"{name}: scrolls sideways by {wide} px at 200 % zoom")
    page.set_viewport_size(PHONE_SCREEN)


def test_from_the_ward_qr_to_the_devices_on_a_cheap_phone(
    served: tuple[World, str], chromium: Browser
) -> None:
    world, base = served
    context = chromium.new_context(
        viewport=PHONE_SCREEN,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent="Mozilla/5.0 (Linux; Android 11; SM-A025F) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    )
    page = context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    scripts: dict[str, int] = {}
    page.on("pageerror", lambda e: errors.append(str(e)))
    expected = "status of 400"  # the page answering the wrong number says so with a 400
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and expected not in m.text else None,
    )
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))

    def weigh(response: Response) -> None:
        if response.request.resource_type == "script":
            scripts[response.url] = len(response.body())

    page.on("response", weigh)
    problems: list[str] = []
    # the poster's QR opens the ward's greeting
    page.goto(f"{base}/portal/w/{WARD}")
    assert "Phường Hoàn Kiếm" in page.inner_text("main")
    _check(page, "01-phuong", problems)
    page.get_by_role("link", name="Bắt đầu").click()
    page.wait_for_url(f"{base}/portal/sign-in")
    _check(page, "02-so-dien-thoai", problems)
    page.get_by_label("Số điện thoại di động").fill("0912")  # a number too short
    page.get_by_role("button", name="Gửi mã cho tôi").click()
    assert page.locator(".error-summary").is_visible()
    _check(page, "03-loi-so-dien-thoai", problems)
    page.get_by_label("Số điện thoại di động").fill(PHONE)
    page.get_by_role("button", name="Gửi mã cho tôi").click()
    page.wait_for_selector("#code")
    _check(page, "04-nhap-ma", problems)
    page.keyboard.type(_sms_code(world))  # the code field has focus
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal")
    assert page.locator("h1").inner_text() == "Nguyễn Văn An"
    _check(page, "05-trang-chinh", problems)
    page.get_by_role("button", name="Nguyễn Thị Bé").click()
    page.wait_for_url(f"{base}/portal")
    assert page.locator("h1").inner_text() == "Nguyễn Thị Bé"
    page.get_by_role("link", name="Nơi bạn đang đăng nhập").click()
    page.wait_for_url(f"{base}/portal/devices")
    assert "Android" in page.inner_text("main")
    _check(page, "06-thiet-bi", problems)
    assert problems == [], "\n".join(problems)
    assert sum(scripts.values()) <= SCRIPT_BUDGET, scripts
    assert errors == [] and hosts == {"127.0.0.1"}
    context.close()
