"""The station's pages for what residents declared: the waiting list, the chart's section told
apart from the facility's findings, one form signed with the authenticator code."""

from __future__ import annotations

import time
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient

from sokhoe.portal.selfdeclared import verification
from tests.clinic.clinic_world import PASSWORD, World, make_world
from tests.clinic.station import NURSE, RESIDENT, declare_all, make_station, resident, totp_secret
from tests.clinic.test_pages import csrf_of
from tests.conftest import BASE


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, BASE)
    make_station(world)
    resident(world)
    return world


def _client(world: World, username: str, secret: str | None = None) -> TestClient:
    client = TestClient(world.app, base_url=BASE)
    form = {"username": username, "password": PASSWORD}
    if secret:  # the previous step: the current and next ones stay free for the form
        form["totp"] = pyotp.TOTP(secret).at(time.time() - 30)
    assert client.post("/clinic/sign-in", data=form, follow_redirects=False).status_code == 303
    return client


def test_the_nurse_verifies_a_residents_declarations_on_the_chart(world: World) -> None:
    ids = declare_all(world, RESIDENT, "lan")
    secret = totp_secret(world, NURSE)
    nurse = _client(world, NURSE, secret)
    listed = nurse.get("/clinic/self-declared")
    assert listed.status_code == 200 and "Đỗ Thị Lan" in listed.text and "Penicillin" in listed.text
    chart = nurse.get(f"/clinic/patients/{RESIDENT}")
    assert chart.status_code == 200 and 'id="self-declared"' in chart.text
    # the declared allergy is not presented as the facility's finding
    assert 'id="declared-immunizations"' in chart.text and 'id="declared-problems"' in chart.text
    assert 'id="declared-allergies"' in chart.text and "Chưa ghi nhận dị ứng" in chart.text
    html, csrf = chart.text, csrf_of(chart.text)
    items = {
        html.split(f'name="item-{i}" value="')[1].split('"')[0].split("/")[0]: i for i in range(6)
    }
    form = {"csrf": csrf, "count": "6", "code": "000000"}
    for i in items.values():
        form[f"item-{i}"] = html.split(f'name="item-{i}" value="')[1].split('"')[0]
    form[f"decision-{items['AllergyIntolerance']}"] = "confirm"
    form[f"decision-{items['Observation']}"] = "reject"
    form[f"decision-{items['Condition']}"] = "correct"
    form[f"correction-{items['Condition']}"] = "E11"
    wrong = nurse.post(f"/clinic/patients/{RESIDENT}/self-declared", data=form)
    assert wrong.status_code == 403 and "mã" in wrong.text.lower()
    assert (
        verification(
            world.platform.read("AllergyIntolerance", ids["AllergyIntolerance"]).content or {}
        )
        == "unconfirmed"
    )
    form["code"] = pyotp.TOTP(secret).now()
    done = nurse.post(
        f"/clinic/patients/{RESIDENT}/self-declared", data=form, follow_redirects=False
    )
    assert done.status_code == 303
    for rtype, state in (
        ("AllergyIntolerance", "confirmed"),
        ("Observation", "refuted"),
        ("Condition", "confirmed"),
    ):
        assert verification(world.platform.read(rtype, ids[rtype]).content or {}) == state
    after = nurse.get(f"/clinic/patients/{RESIDENT}").text
    assert "Penicillin" in after.split('class="allergies"')[1].split("</p>")[0]
    assert "E11" in after and 'name="item-3"' not in after  # three left: family, vaccine, operation
    # nothing chosen: said so, nothing signed
    empty = nurse.post(
        f"/clinic/patients/{RESIDENT}/self-declared", data={"csrf": csrf, "count": "2"}
    )
    assert empty.status_code == 422


def test_the_desk_and_another_facility_cannot_verify(world: World) -> None:
    ids = declare_all(world, RESIDENT, "lan")
    desk = _client(world, "tieptan")
    assert desk.get("/clinic/self-declared").status_code == 403
    other = _client(world, "bs.c")
    assert "Đỗ Thị Lan" not in other.get("/clinic/self-declared").text
    csrf = csrf_of(other.get("/clinic").text)
    form = {
        "csrf": csrf,
        "count": "1",
        "item-0": f"AllergyIntolerance/{ids['AllergyIntolerance']}/1",
        "decision-0": "confirm",
        "code": "123456",
    }
    refused = other.post(f"/clinic/patients/{RESIDENT}/self-declared", data=form)
    assert refused.status_code == 403
    assert (
        verification(
            world.platform.read("AllergyIntolerance", ids["AllergyIntolerance"]).content or {}
        )
        == "unconfirmed"
    )
