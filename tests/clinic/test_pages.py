"""The clinic pages over HTTP (no browser): sign-in, the desk, the chart, the visit, and what
staff of another facility cannot reach through them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from sokhoe.access.accounts import add_facility
from tests.api_helpers import sms_code
from tests.clinic.clinic_world import PASSWORD, QR, World, make_world
from tests.conftest import BASE


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, BASE)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def signed_in(world: World, username: str) -> TestClient:
    """A client signed in as ``username`` (bs.an also types the code of their authenticator)."""
    c = TestClient(world.app, base_url=BASE)
    form = {"username": username, "password": PASSWORD}
    for _ in range(2):
        sent = time.time()
        if username == "bs.an":
            # the previous step's code (still accepted): the step now and the next one stay
            # free for the signatures a test then makes
            form["totp"] = pyotp.TOTP(world.totp_secret).at(sent - 30)
        r = c.post("/clinic/sign-in", data=form, follow_redirects=False)
        if r.status_code == 303 or "totp" not in form or int(time.time()) // 30 == int(sent) // 30:
            break
        # a step began while the request ran (a loaded machine): the code was two steps old
        # when the server read it, so the code of the step before the new one is typed instead
    assert r.status_code == 303, r.text
    return c


def start_visit(
    world: World, client: TestClient, payer: str = "self-pay", room: bool = True
) -> tuple[str, str]:
    """Check the world's person in by the QR and start their visit; (visit id, CSRF token)."""
    csrf = csrf_of(client.get("/clinic").text)
    client.post("/clinic/check-in", data={"q": QR, "csrf": csrf})
    form = {"csrf": csrf, "patient": world.patient_id, "name": "Nguyễn Văn An", "payer": payer}
    if room:
        form["room"] = world.rooms[0]
    client.post("/clinic/visits", data=form)
    found = re.search(r'href="/clinic/visits/([^"]+)"', client.get("/clinic").text)
    assert found is not None
    return found.group(1), csrf


def confirm_presence(world: World, client: TestClient, csrf: str) -> None:
    """The patient reads out the code sent to their phone: the history opens."""
    client.post(f"/clinic/patients/{world.patient_id}/presence-code", data={"csrf": csrf})
    client.post(
        f"/clinic/patients/{world.patient_id}/confirm-presence",
        data={"csrf": csrf, "code": sms_code(client)},
    )


@pytest.fixture
def doctor(world: World) -> Iterator[TestClient]:
    with signed_in(world, "bs.an") as c:
        yield c


def test_pages_are_vietnamese_unless_english_is_chosen(world: World, doctor: TestClient) -> None:
    page = doctor.get("/clinic", headers={"Accept-Language": "en-US,en"})
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text and "Tiếp nhận" in page.text
    english = doctor.get("/clinic?lang=en")
    assert '<html lang="en">' in english.text and "Check in" in english.text
    assert doctor.get("/clinic").text.count('<html lang="en">') == 1  # remembered in a cookie


def test_anonymous_visitors_are_sent_to_sign_in(world: World) -> None:
    with TestClient(world.app, base_url=BASE) as c:
        r = c.get("/clinic", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/clinic/sign-in")
        bad = c.post("/clinic/sign-in", data={"username": "bs.an", "password": "wrong-password"})
        assert bad.status_code == 401 and "Sai tên đăng nhập" in bad.text


def test_a_form_without_the_csrf_token_changes_nothing(world: World, doctor: TestClient) -> None:
    r = doctor.post("/clinic/check-in", data={"q": QR})
    assert r.status_code == 403
    assert doctor.get("/clinic").text.count("Nguyễn Văn An") == 0


def test_a_whole_visit_through_the_pages(world: World, doctor: TestClient) -> None:
    csrf = csrf_of(doctor.get("/clinic").text)
    found = doctor.post("/clinic/check-in", data={"q": QR, "csrf": csrf})
    assert found.status_code == 200 and "Nguyễn Văn An" in found.text
    assert "mở khi người bệnh xác nhận" in found.text  # not disclosed: another facility's person
    start = doctor.post(
        "/clinic/visits",
        data={
            "csrf": csrf,
            "patient": world.patient_id,
            "name": "Nguyễn Văn An",
            "payer": "insurance",
            "room": world.rooms[0],
        },
        follow_redirects=False,
    )
    assert start.status_code == 303
    queue = doctor.get("/clinic").text
    encounter = re.search(r'href="/clinic/visits/([^"]+)"', queue)
    assert encounter is not None
    eid = encounter.group(1)
    # the history is closed until the patient reads out the code sent to their phone
    chart = doctor.get(f"/clinic/patients/{world.patient_id}").text
    assert "Bệnh viện Đa khoa Đống Đa" not in chart
    sent = doctor.post(f"/clinic/patients/{world.patient_id}/presence-code", data={"csrf": csrf})
    assert sent.status_code == 200, sent.text
    code = sms_code(doctor)
    doctor.post(
        f"/clinic/patients/{world.patient_id}/confirm-presence", data={"csrf": csrf, "code": code}
    )
    chart = doctor.get(f"/clinic/patients/{world.patient_id}").text
    assert "Bệnh viện Đa khoa Đống Đa" in chart
    # the visit: typeahead, the repeated-test alert, implausible values questioned
    visit = doctor.get(f"/clinic/visits/{eid}")
    assert visit.status_code == 200
    dx = doctor.get("/clinic/icd10", params={"slot": 0, "dx0": "tang huyet ap"})
    assert "I10" in dx.text and "Tăng huyết áp" in dx.text
    alert = doctor.post(
        f"/clinic/visits/{eid}/orders", data={"csrf": csrf, "service": "lab:2345-7"}
    )
    assert "7.8 mmol/L" in alert.text and "Bệnh viện Đa khoa Đống Đa" in alert.text
    form = {
        "csrf": csrf,
        "reason": "Đau đầu",
        "systolic": "150",
        "diastolic": "95",
        "pulse": "720",
        "dx0": "I10",
    }
    refused = doctor.post(f"/clinic/visits/{eid}/close", data=form)
    assert refused.status_code == 422 and 'id="pulse-error"' in refused.text
    form["pulse"] = "88"
    closed = doctor.post(f"/clinic/visits/{eid}/close", data=form, follow_redirects=False)
    assert closed.status_code == 303, closed.text
    repo = world.platform
    enc = repo.read("Encounter", eid).content or {}
    assert enc["status"] == "finished" and len(enc["diagnosis"]) == 1
    condition = repo.read("Condition", enc["diagnosis"][0]["condition"]["reference"].split("/")[1])
    assert (condition.content or {})["code"]["coding"][0]["code"] == "I10"


def test_another_facility_sees_neither_the_queue_nor_the_visit(
    world: World, doctor: TestClient
) -> None:
    eid, csrf = start_visit(world, doctor, "insurance")
    doctor.post(f"/clinic/visits/{eid}/draft", data={"csrf": csrf, "notes": "bí mật của trạm A"})
    with signed_in(world, "bs.b") as other:
        assert "Nguyễn Văn An" not in other.get("/clinic").text
        page = other.get(f"/clinic/visits/{eid}")
        assert page.status_code == 404 and "bí mật" not in page.text
        other_csrf = csrf_of(other.get("/clinic").text)
        r = other.post(f"/clinic/visits/{eid}/draft", data={"csrf": other_csrf, "notes": "x"})
        assert r.status_code == 404
    assert "bí mật của trạm A" in doctor.get(f"/clinic/visits/{eid}").text


def test_staff_of_two_facilities_pick_one_and_see_only_its_queue(world: World) -> None:
    add_facility(world.app.state.tokens.engine, "bs.c", "01002")
    with TestClient(world.app, base_url=BASE) as c:
        r = c.post(
            "/clinic/sign-in",
            data={"username": "bs.c", "password": PASSWORD, "next": "/clinic"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/clinic/facility")
        chooser = c.get(r.headers["location"])
        assert (
            "Bệnh viện Tim Hà Nội" in chooser.text and "Bệnh viện Đa khoa Đống Đa" in chooser.text
        )
        csrf = csrf_of(chooser.text)
        old = c.cookies.get("sokhoe_session")
        elsewhere = c.post("/clinic/facility", data={"csrf": csrf, "facility": "01001"})
        assert elsewhere.status_code == 403  # a facility one does not work at
        chosen = c.post(
            "/clinic/facility",
            data={"csrf": csrf, "facility": "01002", "next": "/clinic"},
            follow_redirects=False,
        )
        assert chosen.status_code == 303
        today = c.get("/clinic").text
        assert (
            'id="who"' in today and "Bệnh viện Đa khoa Đống Đa" in today.split('id="who"')[1][:200]
        )
        assert 'id="change-facility"' in today
        # the session it replaced is over
        with TestClient(world.app, base_url=BASE) as stale:
            stale.cookies.set("sokhoe_session", old or "")
            assert stale.get("/clinic", follow_redirects=False).status_code == 303
    with signed_in(world, "bs.b") as single:
        assert 'id="change-facility"' not in single.get("/clinic").text


def test_the_header_comes_from_the_session_not_a_query_per_page(world: World) -> None:
    """The facility's name and the chooser link are decided at sign-in and carried in the
    session: a page reads neither the staff's facilities nor the name again."""
    add_facility(world.app.state.tokens.engine, "bs.c", "01002")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    store = world.app.state.store
    engines = {id(e): e for e in (store.writer, store.reader, world.app.state.tokens.engine)}
    with signed_in(world, "bs.c") as c:
        for engine in engines.values():
            event.listen(engine, "before_cursor_execute", seen)
        try:
            today = c.get("/clinic").text
        finally:
            for engine in engines.values():
                event.remove(engine, "before_cursor_execute", seen)
        header = today.split('id="who"')[1][:300]
        assert "Bệnh viện Tim Hà Nội" in header and 'id="change-facility"' in today
        assert statements and not [s for s in statements if "staff_facility" in s]
        # a renamed facility: this session keeps the name it began with, the next one has it
        renamed = dict(world.platform.read("Organization", "org-01003").content or {})
        renamed["name"] = "Bệnh viện Tim mạch Hà Nội"
        world.platform.update(renamed, "Organization", "org-01003")
        assert "Bệnh viện Tim Hà Nội" in c.get("/clinic").text.split('id="who"')[1][:300]
    with signed_in(world, "bs.c") as again:
        header = again.get("/clinic").text.split('id="who"')[1][:300]
        assert "Bệnh viện Tim mạch Hà Nội" in header
    with signed_in(world, "bs.b") as single:
        page = single.get("/clinic").text
        assert "Bệnh viện Đa khoa Đống Đa" in page.split('id="who"')[1][:300]
        assert 'id="change-facility"' not in page


def test_assets_are_revalidated_and_pages_never_stored(world: World, doctor: TestClient) -> None:
    asset = doctor.get("/static/vendor/htmx.min.js")
    assert asset.headers["cache-control"] == "no-cache" and asset.headers.get("etag")
    again = doctor.get(
        "/static/vendor/htmx.min.js", headers={"If-None-Match": asset.headers["etag"]}
    )
    assert again.status_code == 304
    assert doctor.get("/clinic/static/clinic.css").headers["cache-control"] == "no-cache"
    assert doctor.get("/clinic").headers["cache-control"] == "no-store"  # health data
    assert doctor.get(f"/clinic/patients/{world.patient_id}").headers["cache-control"] == "no-store"
