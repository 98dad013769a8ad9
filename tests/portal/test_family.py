"""My family: a parent's request for a child stays pending, reveals nothing and opens nothing
until a facility that may see the child confirms it; forged claims get nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import with_wards
from sokhoe.access.otp import CITIZEN_SCOPES
from sokhoe.access.principal import Principal
from sokhoe.access.ratelimit import RateLimited
from sokhoe.errors import Conflict, FhirError, Forbidden, InvalidRequest
from sokhoe.mpi.identifiers import BIRTH_CERTIFICATE, CCCD
from sokhoe.portal import family
from tests.clinic.clinic_world import CCCD_NUMBER, PASSWORD, World, make_world
from tests.clinic.station import NURSE, door, make_station
from tests.conftest import BASE
from tests.portal.portal_world import csrf_of, sign_in

PARENT, STRANGER = "0987654321", "0978111222"
CHILD_ID = "001324000123"  # a girl born in 2024, registered in Hà Nội
CHILD = "p-be"


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, BASE)
    make_station(world)
    child = {
        "resourceType": "Patient",
        "id": CHILD,
        "identifier": [
            {"system": CCCD, "value": CHILD_ID},
            {"system": BIRTH_CERTIFICATE, "value": "125/2024"},
        ],
        "name": [{"family": "Đỗ", "given": ["Minh", "Châu"]}],
        "gender": "female",
        "birthDate": "2024-05-01",
        "address": [{"use": "home", "city": "Phường Hoàn Kiếm", "state": "Thành phố Hà Nội"}],
    }
    world.platform.update(child, "Patient", CHILD)
    return world


def citizen(world: World, phone: str) -> GuardedRepository:
    """The door of a citizen signed in with ``phone`` (their records as a page refreshes them)."""
    who = Principal(kind="citizen", subject=phone, display=phone, scopes=CITIZEN_SCOPES)
    return world.platform.for_caller(with_wards(world.platform, who))


def related(world: World) -> list[dict[str, Any]]:
    query = world.platform.parse_query("RelatedPerson", [("patient", f"Patient/{CHILD}")])
    return [m.content for m in world.platform.search(query).matches if m.content]


def ask(world: World, phone: str, number: str = CHILD_ID, kind: str = "cccd") -> None:
    engine = world.app.state.tokens.engine
    family.request_child(
        citizen(world, phone), engine, phone, family.checked(kind, number, "mother")
    )


def test_a_request_opens_nothing_until_the_station_confirms_it(world: World) -> None:
    ask(world, PARENT)
    pending = related(world)
    assert len(pending) == 1 and pending[0]["telecom"][0]["value"] == PARENT
    parent = citizen(world, PARENT)
    assert CHILD not in parent.principal.patient_ids
    with pytest.raises(Forbidden):
        parent.read("Patient", CHILD)
    with pytest.raises(Forbidden):
        parent.read("RelatedPerson", str(pending[0]["id"]))
    mine = family.requests(parent, PARENT)
    assert [(r.status, r.number, r.relationship) for r in mine] == [
        ("waiting", "••••••••0123", "mother")
    ]
    assert not hasattr(mine[0], "patient_id")
    # asking again, by birth certificate, for an unknown number or for an adult: nothing more
    ask(world, PARENT, "125/2024", "birth-certificate")
    ask(world, PARENT, "001324999999")
    ask(world, PARENT, CCCD_NUMBER)
    assert len(related(world)) == 1
    # the citizen may not confirm it, nor a facility that may not see the child
    with pytest.raises(Forbidden):
        from sokhoe.access.guardians import confirm_guardian

        confirm_guardian(parent, str(pending[0]["id"]))
    with pytest.raises(Forbidden):
        confirm_guardian(door(world, "bs.c"), str(pending[0]["id"]))
    assert CHILD not in citizen(world, PARENT).principal.patient_ids
    # the station sees the request on the child's chart, and confirms it
    nurse = door(world, NURSE)
    waiting = family.pending_for(nurse, CHILD)
    assert [(p.phone, p.typed, p.relationship) for p in waiting] == [(PARENT, CHILD_ID, "mother")]
    assert family.pending_for(door(world, "bs.c"), CHILD) == []
    confirm_guardian(nurse, waiting[0].id)
    parent = citizen(world, PARENT)
    assert CHILD in parent.principal.patient_ids
    assert parent.read("Patient", CHILD).content is not None
    assert [r.status for r in family.requests(parent, PARENT)] == ["confirmed"]
    assert family.pending_for(nurse, CHILD) == []


def test_the_desk_confirms_a_registered_child_and_may_decline_a_stranger(world: World) -> None:
    desk = door(world, "tieptan")
    newborn = {
        "resourceType": "Patient",
        "identifier": [{"system": BIRTH_CERTIFICATE, "value": "77/2025"}],
        "name": [{"family": "Lê", "given": ["Bảo"]}],
        "birthDate": "2025-03-01",
    }
    baby = desk.create(newborn, "Patient").resource.id  # registered at the station's desk
    engine = world.app.state.tokens.engine
    for phone in (PARENT, STRANGER):
        family.request_child(
            citizen(world, phone),
            engine,
            phone,
            family.checked("birth-certificate", "77/2025", "father"),
        )
    from sokhoe.access.guardians import confirm_guardian

    waiting = {p.phone: p.id for p in family.pending_for(desk, baby)}
    assert set(waiting) == {PARENT, STRANGER}
    family.decline(desk, waiting[STRANGER])
    with pytest.raises(Conflict):
        confirm_guardian(desk, waiting[STRANGER])
    confirm_guardian(desk, waiting[PARENT])
    assert baby in citizen(world, PARENT).principal.patient_ids
    assert baby not in citizen(world, STRANGER).principal.patient_ids
    assert [r.status for r in family.requests(citizen(world, STRANGER), STRANGER)] == ["declined"]


def test_forged_guardian_claims_give_nothing(world: World) -> None:
    stranger = citizen(world, STRANGER)
    forged = {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": f"Patient/{CHILD}"},
        "relationship": [{"coding": [{"system": family.ROLE_CODES, "code": "MTH"}]}],
        "telecom": [{"system": "phone", "value": STRANGER}],
    }
    with pytest.raises(Forbidden):  # a citizen writes no RelatedPerson of their own
        stranger.create(forged, "RelatedPerson")
    # a facility's RelatedPerson naming the stranger's phone still opens nothing by itself
    world.platform.create(forged, "RelatedPerson")
    assert CHILD not in citizen(world, STRANGER).principal.patient_ids
    with pytest.raises(Forbidden):
        citizen(world, STRANGER).read("Patient", CHILD)
    # through the pages: the child's id posted as a profile, or a forged request form
    client = sign_in(world, STRANGER)
    home = client.get("/portal").text
    client.post("/portal/profile", data={"csrf": csrf_of(home), "patient": CHILD})
    assert "Châu" not in client.get("/portal/vaccinations").text
    sent = client.post(
        "/portal/family/add",
        data={
            "csrf": csrf_of(home),
            "kind": "cccd",
            "number": CHILD_ID,
            "relationship": "mother",
            "send": "1",
            "patient": CHILD,
        },
    )
    assert sent.status_code == 200 and "Châu" not in sent.text and "2024" not in sent.text
    assert "Châu" not in client.get("/portal/family").text


def test_bad_requests_are_refused_and_requests_are_limited(world: World) -> None:
    for kind, number, relationship in (
        ("cccd", "12345", "mother"),
        ("cccd", "999324000123", "mother"),
        ("passport", CHILD_ID, "mother"),
        ("birth-certificate", "số 12/2024", "mother"),
        ("birth-certificate", "1" * 31, "mother"),
        ("cccd", CHILD_ID, "uncle"),
    ):
        with pytest.raises(InvalidRequest):
            family.checked(kind, number, relationship)
    engine = world.app.state.tokens.engine
    for _ in range(family.REQUESTS_PER_DAY):
        ask(world, STRANGER, "001324999999")
    with pytest.raises(RateLimited):
        ask(world, STRANGER)
    assert related(world) == []  # the refused request wrote nothing
    assert isinstance(RateLimited("x", 1), FhirError) and engine is not None


def test_the_family_pages_in_vietnamese(world: World) -> None:
    client = sign_in(world, PARENT)
    page = client.get("/portal/family")
    assert page.status_code == 200 and "Gia đình" in page.text
    form = client.get("/portal/family/add")
    assert 'name="number"' in form.text and "Mẹ" in form.text
    csrf = csrf_of(form.text)
    wrong = client.post(
        "/portal/family/add",
        data={"csrf": csrf, "kind": "cccd", "number": "123", "relationship": "mother"},
    )
    assert wrong.status_code == 400 and "error-summary" in wrong.text and "12 chữ số" in wrong.text
    check = client.post(
        "/portal/family/add",
        data={"csrf": csrf, "kind": "cccd", "number": CHILD_ID, "relationship": "mother"},
    )
    assert check.status_code == 200 and "Kiểm tra" in check.text and related(world) == []
    sent = client.post(
        "/portal/family/add",
        data={
            "csrf": csrf,
            "kind": "cccd",
            "number": CHILD_ID,
            "relationship": "mother",
            "send": "1",
        },
    )
    assert sent.status_code == 200 and "trạm y tế" in sent.text.lower()
    listed = client.get("/portal/family").text
    assert "0123" in listed and CHILD_ID not in listed and "Chờ trạm y tế" in listed
    # without the CSRF token nothing is sent
    assert (
        client.post(
            "/portal/family/add",
            data={"kind": "cccd", "number": CHILD_ID, "relationship": "father", "send": "1"},
        ).status_code
        == 403
    )
    assert len(related(world)) == 1
    # the station confirms on the child's chart; the child's book appears among the profiles
    staff = TestClient(world.app, base_url=BASE)
    staff.post("/clinic/sign-in", data={"username": NURSE, "password": PASSWORD})
    chart = staff.get(f"/clinic/patients/{CHILD}")
    assert chart.status_code == 200 and 'id="guardians"' in chart.text and PARENT in chart.text
    rp = related(world)[0]["id"]
    done = staff.post(
        f"/clinic/patients/{CHILD}/guardians/{rp}",
        data={"csrf": csrf_of(chart.text), "action": "confirm"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert 'id="guardians"' not in staff.get(f"/clinic/patients/{CHILD}").text
    home = client.get("/portal").text
    assert "Đỗ Minh Châu" in home
    client.post(
        "/portal/profile",
        data={"csrf": csrf_of(home), "patient": CHILD, "next": "/portal/vaccinations"},
    )
    assert "Đỗ Minh Châu" in client.get("/portal/vaccinations").text
