"""The station's check of a record a person made on their phone: the typed personal ID becomes
the record's CCCD only when staff who may see the record saw the card, and never when another
record holds the number."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.otp import citizen_principal, link_citizen, linked_patient
from sokhoe.clinic.identity import confirm_identity
from sokhoe.errors import Conflict, FhirError, InvalidRequest
from sokhoe.fhir.patient_links import people_holding
from sokhoe.mpi.identifiers import CCCD
from sokhoe.mpi.matching import Matcher
from sokhoe.portal.claim import ClaimForm, claim
from sokhoe.portal.patient import DECLARED_CCCD
from sokhoe.portal.selfdeclared import verification
from tests.clinic.clinic_world import CCCD_NUMBER, PASSWORD, World, make_world
from tests.clinic.station import NURSE, door, make_station, resident
from tests.conftest import BASE

PHONE = "0987111222"
NUMBER = "001090000077"


@pytest.fixture
def world(tmp_path: Path) -> World:
    made = make_world(tmp_path, BASE)
    make_station(made)
    return made


def made_on_phone(
    world: World, number: str = NUMBER, born: tuple[str, str, str] = ("2", "7", "1990")
) -> str:
    """A resident of the station's ward whose details matched nothing: their own record."""
    engine = world.app.state.tokens.engine
    link_citizen(engine, PHONE, None)
    citizen = world.platform.for_caller(citizen_principal(PHONE, None))
    form = ClaimForm(number, *born, name="Lê Thị Hoa", sex="female")
    done = claim(
        citizen,
        engine,
        form,
        address="203.0.113.9",
        today=date(2026, 12, 6),
        index=world.platform,
        matcher=Matcher(world.platform),
        ward="00070",
    )
    assert done.patient_id is not None and linked_patient(engine, PHONE) == done.patient_id
    return done.patient_id


def holders(world: World, number: str) -> list[str]:
    with world.platform.snapshot() as tx:
        return list(people_holding(world.platform, tx, CCCD, number))


def test_the_station_confirms_the_record_and_the_card_then_finds_it(world: World) -> None:
    pid = made_on_phone(world)
    assert holders(world, NUMBER) == []  # a typed number is found by nobody's card
    nurse = door(world, NURSE)
    confirm_identity(nurse, pid)
    record = world.platform.read("Patient", pid).content or {}
    assert verification(record) == "confirmed"
    assert {i["system"] for i in record["identifier"]} == {CCCD}
    assert holders(world, NUMBER) == [pid]
    with pytest.raises(InvalidRequest):  # checked once
        confirm_identity(nurse, pid)


def test_refused_when_another_record_holds_the_number_or_the_caller_may_not(
    world: World,
) -> None:
    pid = made_on_phone(world, CCCD_NUMBER, ("15", "3", "1985"))  # p-an's, a record B keeps
    nurse = door(world, NURSE)
    before = world.platform.read("Patient", pid)
    with pytest.raises(Conflict):
        confirm_identity(nurse, pid)
    with pytest.raises(FhirError):  # hospital C has nothing to do with this person
        confirm_identity(door(world, "bs.c"), pid)
    with pytest.raises(InvalidRequest):  # a facility's record is not a self-made one
        confirm_identity(nurse, resident(world))
    with pytest.raises(FhirError):  # nor one the station may not see
        confirm_identity(nurse, "p-an")
    after = world.platform.read("Patient", pid)
    assert after.version_id == before.version_id
    assert [i["system"] for i in (after.content or {})["identifier"]] == [DECLARED_CCCD]
    assert holders(world, CCCD_NUMBER) == ["p-an"]


def test_the_chart_offers_the_check_and_a_stale_page_changes_nothing(world: World) -> None:
    pid = made_on_phone(world)
    client = TestClient(world.app, base_url=BASE)
    signed = client.post("/clinic/sign-in", data={"username": NURSE, "password": PASSWORD})
    assert signed.status_code == 200, signed.text
    chart = client.get(f"/clinic/patients/{pid}")
    assert 'id="confirm-identity"' in chart.text and NUMBER in chart.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', chart.text)
    assert csrf is not None
    stale = client.post(
        f"/clinic/patients/{pid}/identity", data={"csrf": csrf.group(1), "version": "99"}
    )
    assert stale.status_code == 409
    assert verification(world.platform.read("Patient", pid).content or {}) == "unconfirmed"
    done = client.post(
        f"/clinic/patients/{pid}/identity",
        data={"csrf": csrf.group(1), "version": "1"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert 'id="confirm-identity"' not in client.get(f"/clinic/patients/{pid}").text
    assert holders(world, NUMBER) == [pid]
