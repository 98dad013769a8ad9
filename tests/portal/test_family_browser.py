"""A parent on a 360-pixel phone adds their child, the station's nurse confirms the parent on the
child's chart (where the child's declared vaccination waits too), and the parent opens the
child's vaccinations: every page passes axe-core and fits the phone's width."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from sokhoe.mpi.identifiers import CCCD
from tests.browser import axe_violations, free_port, serving, shoot
from tests.clinic.clinic_world import PASSWORD, World, make_world
from tests.clinic.station import NURSE, RESIDENT, declare_all, declared, make_station, resident

PARENT = "0987654321"
CHILD_ID = "001324000123"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world = make_world(tmp_path_factory.mktemp("family-browser"), base)
    make_station(world)
    child = {
        "resourceType": "Patient",
        "id": "p-be",
        "identifier": [{"system": CCCD, "value": CHILD_ID}],
        "name": [{"family": "Đỗ", "given": ["Minh", "Châu"]}],
        "birthDate": "2025-01-10",
        "address": [{"use": "home", "city": "Phường Hoàn Kiếm", "state": "Thành phố Hà Nội"}],
    }
    world.platform.update(child, "Patient", "p-be")
    bcg = {**declared("p-be", "be-bcg", "Immunization"), "occurrenceDateTime": "2025-01-12"}
    world.platform.update(bcg, "Immunization", "be-bcg")
    resident(world)  # a neighbour who declared one item of each kind
    declare_all(world, RESIDENT, "lan")
    with serving(world.app, port):
        yield world, base


def _code(world: World) -> str:
    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return str(re.findall(r"\b\d{6}\b", text)[0])


def _check(page: Page, name: str) -> None:
    assert axe_violations(page) == [], name
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, name
    shoot(page, f"portal/{name}")


def test_a_parent_adds_a_child_the_station_confirms_and_the_vaccinations_show(
    served: tuple[World, str], chromium: Browser
) -> None:
    world, base = served
    phone = chromium.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = phone.new_page()
    page.goto(f"{base}/portal/sign-in")
    page.fill("#phone", PARENT)
    page.press("#phone", "Enter")
    page.fill("#code", _code(world))
    page.press("#code", "Enter")
    page.wait_for_url(f"{base}/portal")
    page.goto(f"{base}/portal/family")
    _check(page, "gia-dinh-01-trang")
    page.click("a[href='/portal/family/add']")
    page.fill("#number", "12345")
    page.check("input[value=mother]")
    page.click("button[type=submit] >> text=Tiếp tục")
    assert page.is_visible(".error-summary")
    _check(page, "gia-dinh-02-loi")
    page.fill("#number", CHILD_ID)
    page.press("#number", "Enter")
    assert page.is_visible("text=Kiểm tra lại thông tin")
    _check(page, "gia-dinh-03-kiem-tra")
    page.click("text=Gửi đề nghị")
    assert page.is_visible("text=Đã gửi đề nghị")
    _check(page, "gia-dinh-04-da-gui")
    page.goto(f"{base}/portal/family")
    assert page.is_visible("text=Chờ trạm y tế xác nhận")
    assert not page.is_visible("text=Châu")
    _check(page, "gia-dinh-05-cho-xac-nhan")

    station = chromium.new_context(viewport={"width": 1280, "height": 800})
    desk = station.new_page()
    desk.goto(f"{base}/clinic/sign-in")
    desk.fill("#username", NURSE)
    desk.fill("#password", PASSWORD)
    desk.press("#password", "Enter")
    desk.wait_for_url(f"{base}/clinic")
    desk.click("#self-declared-link")
    desk.wait_for_url(f"{base}/clinic/self-declared")
    assert "Đỗ Thị Lan" in desk.inner_text("main") and "Penicillin" in desk.inner_text("main")
    assert axe_violations(desk) == []
    shoot(desk, "clinic/22-tu-khai-cho-xac-nhan")
    desk.click("text=Đỗ Thị Lan")
    desk.wait_for_url(re.compile(rf".*/clinic/patients/{RESIDENT}.*"))
    section = desk.locator("#self-declared")
    section.locator("fieldset", has_text="Penicillin").get_by_label("Xác nhận", exact=True).check()
    illness = section.locator("fieldset", has_text="Tiểu đường")
    illness.get_by_label("Sửa").check()
    illness.locator("input[name^=correction]").fill("E11")
    section.locator("fieldset", has_text="Hút thuốc").get_by_label("Không xác nhận").check()
    assert axe_violations(desk) == []
    shoot(desk, "clinic/23-xac-nhan-tu-khai")
    desk.goto(f"{base}/clinic/patients/p-be")
    assert desk.is_visible("#self-declared") and desk.is_visible("#guardians")
    assert axe_violations(desk) == []
    shoot(desk, "clinic/24-xac-nhan-cha-me")
    desk.click("#guardians button[value=confirm]")
    desk.wait_for_url(re.compile(r".*/clinic/patients/p-be.*"))
    assert not desk.is_visible("#guardians")
    station.close()

    page.goto(f"{base}/portal/family")
    assert page.is_visible("text=Đỗ Minh Châu")
    _check(page, "gia-dinh-06-da-xac-nhan")
    page.click("button[value='/portal/vaccinations']")
    page.wait_for_url(f"{base}/portal/vaccinations")
    assert page.is_visible("text=Bạn tự khai, chờ trạm y tế xác nhận")
    assert page.locator(".doses li.overdue, .doses li.due").count() > 0
    _check(page, "tiem-chung-01-lich")
    phone.close()
