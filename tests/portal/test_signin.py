"""Signing in to the portal from the ward's QR, staying signed in, and ending sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.otp import link_citizen
from tests.clinic.clinic_world import PHONE, World, make_world
from tests.conftest import BASE
from tests.portal.portal_world import WARD, csrf_of, last_code, sign_in


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, BASE)


def test_the_ward_qr_greets_the_resident_in_the_wards_name(world: World) -> None:
    client = TestClient(world.app, base_url=BASE)
    page = client.get(f"/portal/w/{WARD}")
    assert page.status_code == 200
    assert "Phường Hoàn Kiếm" in page.text and "Thành phố Hà Nội" in page.text
    assert 'lang="vi"' in page.text and "Bắt đầu" in page.text
    start = client.get(f"/portal/w/{WARD}/start", follow_redirects=False)
    assert start.headers["location"] == "/portal/sign-in"
    assert client.get("/portal/w/99999").status_code == 404
    english = client.get(f"/portal/w/{WARD}?lang=en")
    assert "Welcome, resident of Phường Hoàn Kiếm" in english.text


def test_sign_in_with_the_sms_code_and_stay_signed_in(world: World) -> None:
    link_citizen(world.app.state.tokens.engine, PHONE, world.patient_id)
    client = TestClient(world.app, base_url=BASE)
    assert (
        client.get("/portal", follow_redirects=False)
        .headers["location"]
        .startswith("/portal/sign-in")
    )
    wrong = client.post("/portal/sign-in", data={"phone": "12345"})
    assert wrong.status_code == 400 and "10 chữ số" in wrong.text
    phone = sign_in(world, PHONE)
    home = phone.get("/portal")
    assert home.status_code == 200 and "Nguyễn Văn An" in home.text
    cookie = next(c for c in phone.cookies.jar if c.name == "sokhoe_session")
    assert cookie.expires is not None and cookie.expires - cookie.expires % 1 > 0
    # a wrong code is refused and counted
    other = TestClient(world.app, base_url=BASE)
    other.post("/portal/sign-in", data={"phone": PHONE})
    bad = other.post("/portal/verify", data={"phone": PHONE, "code": "000000"})
    assert bad.status_code == 401 and "không đúng" in bad.text
    assert other.get("/portal", follow_redirects=False).status_code == 303


def test_devices_are_listed_and_sign_out_everywhere_ends_them_all(world: World) -> None:
    link_citizen(world.app.state.tokens.engine, PHONE, world.patient_id)
    phone = sign_in(world, PHONE)
    laptop = sign_in(world, PHONE, "Mozilla/5.0 (Windows NT 10.0) Firefox/121.0")
    listed = phone.get("/portal/devices").text
    assert "Chrome · Android" in listed and "Firefox · Windows" in listed
    # another citizen cannot end this citizen's sessions, even naming their session id
    stranger = sign_in(world, "0987654321")
    victim = listed.split('name="device" value="')[1].split('"')[0]
    csrf = csrf_of(stranger.get("/portal/devices").text)
    stranger.post("/portal/devices/end", data={"csrf": csrf, "device": victim})
    assert phone.get("/portal").status_code == 200 and laptop.get("/portal").status_code == 200
    # a form without the CSRF token ends nothing
    assert phone.post("/portal/devices/end", data={"all": "1"}).status_code == 403
    assert laptop.get("/portal").status_code == 200
    csrf = csrf_of(phone.get("/portal/devices").text)
    out = phone.post("/portal/devices/end", data={"csrf": csrf, "all": "1"}, follow_redirects=False)
    assert out.headers["location"] == "/portal/sign-in"
    for client in (phone, laptop):
        assert client.get("/portal", follow_redirects=False).status_code == 303
    theirs = stranger.get("/portal/devices").text
    assert theirs.count('name="device"') == 1 and "Firefox" not in theirs


def test_a_forged_profile_cookie_shows_ones_own_book(world: World) -> None:
    engine = world.app.state.tokens.engine
    link_citizen(engine, PHONE, world.patient_id)
    stranger = sign_in(world, "0987654321")
    stranger.cookies.set("sokhoe_profile", world.patient_id, path="/portal")
    page = stranger.get("/portal")
    assert "Nguyễn Văn An" not in page.text
    csrf = csrf_of(page.text)
    stranger.post("/portal/profile", data={"csrf": csrf, "patient": world.patient_id})
    assert "Nguyễn Văn An" not in stranger.get("/portal").text
    assert last_code(world, "0987654321")
