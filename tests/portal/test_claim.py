"""Claiming one's record: found by CCCD, birth date and the signed-in phone together, never by
a number someone else could know; otherwise a self-declared record whose possible matches go
to the review queue, never merged on the citizen's word."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import citizen_principal, link_citizen, linked_patient
from sokhoe.access.principal import Principal
from sokhoe.access.ratelimit import RateLimited
from sokhoe.errors import Conflict, Forbidden
from sokhoe.fhir.patient_links import people_holding
from sokhoe.mpi.identifiers import CCCD
from sokhoe.mpi.links import TASK_CODE
from sokhoe.mpi.matching import Matcher
from sokhoe.portal.claim import PHONE_LIMIT, ClaimForm, ClaimProblems, ClaimResult, claim
from sokhoe.portal.patient import DECLARED_CCCD
from sokhoe.portal.selfdeclared import verification
from tests.clinic.clinic_world import CCCD_NUMBER, PHONE, World, make_world
from tests.conftest import BASE
from tests.portal.portal_world import WARD, csrf_of, sign_in

NEIGHBOUR = "0987654321"
TODAY = date(2026, 5, 4)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, BASE)


def _engine(world: World):  # type: ignore[no-untyped-def]
    return world.app.state.tokens.engine


def _citizen(world: World, phone: str) -> GuardedRepository:
    """The door of a phone that signed in (its account exists, linked to nothing)."""
    link_citizen(_engine(world), phone, None)
    return world.platform.for_caller(citizen_principal(phone, None))


def _claim(world: World, repo: GuardedRepository, form: ClaimForm) -> ClaimResult:
    return claim(
        repo,
        _engine(world),
        form,
        address="203.0.113.9",
        today=TODAY,
        index=world.platform,
        matcher=Matcher(world.platform),
    )


def _reviews(world: World) -> list[dict[str, object]]:
    query = world.platform.parse_query("Task", [("code", f"{TASK_CODE}|review-match")])
    return [t.content or {} for t in world.platform.search(query).matches]


def _events(world: World, patient_id: str) -> str:
    found, _ = world.app.state.auditor.for_patient([patient_id], count=500)
    return json.dumps(found, ensure_ascii=False)


def test_a_resident_finds_their_record_with_their_cccd_birth_date_and_signed_in_phone(
    world: World,
) -> None:
    phone = sign_in(world, PHONE)
    assert phone.get("/portal/declare", follow_redirects=False).headers["location"] == (
        "/portal/claim"
    )
    page = phone.get("/portal/claim")
    assert page.status_code == 200 and "Tìm hồ sơ sức khỏe của bạn" in page.text
    assert PHONE in page.text and 'name="phone"' not in page.text  # shown, never typed
    csrf = csrf_of(page.text)
    form = {"csrf": csrf, "step": "find", "birth-day": "15", "birth-month": "3"}
    wrong = phone.post("/portal/claim", data={**form, "cccd": "12345", "birth-year": "1985"})
    assert wrong.status_code == 400 and 'href="#cccd"' in wrong.text
    assert "Nhập đủ 12 chữ số của số căn cước (CCCD)" in wrong.text
    year = phone.post("/portal/claim", data={**form, "cccd": CCCD_NUMBER, "birth-year": "1986"})
    assert year.status_code == 400 and "Năm sinh không khớp với số căn cước" in year.text
    assert linked_patient(_engine(world), PHONE) is None
    found = phone.post(
        "/portal/claim", data={**form, "cccd": "001 085 012 345", "birth-year": "1985"}
    )
    assert found.status_code == 200 and "Đã tìm thấy hồ sơ sức khỏe của bạn" in found.text
    assert linked_patient(_engine(world), PHONE) == world.patient_id
    assert "Nguyễn Văn An" in phone.get("/portal").text
    assert phone.get("/portal/claim", follow_redirects=False).headers["location"] == "/portal"
    assert "$claim: CCCD, birth date and the signed-in phone match" in _events(
        world, world.patient_id
    )
    # a phone linked once claims nothing more
    with pytest.raises(Conflict):
        _claim(
            world,
            world.platform.for_caller(citizen_principal(PHONE, "p-an")),
            ClaimForm(CCCD_NUMBER, "15", "3", "1985"),
        )


def _normalised(html: str) -> str:
    main = html[html.index("<main") : html.index("</main>")]
    main = re.sub(r'name="csrf" value="[^"]*"', "", main)
    main = re.sub(r'value="\d+"', 'value=""', main)
    return re.sub(r"<dd>[^<]*</dd>", "<dd></dd>", main)


def test_a_neighbours_cccd_gives_nothing_away_and_makes_a_separate_record_for_review(
    world: World,
) -> None:
    neighbour = sign_in(world, NEIGHBOUR)
    page = neighbour.get("/portal/claim")
    form = {"csrf": csrf_of(page.text), "step": "find"}
    known = {"cccd": CCCD_NUMBER, "birth-day": "15", "birth-month": "3", "birth-year": "1985"}
    unknown = {"cccd": "001090000077", "birth-day": "2", "birth-month": "7", "birth-year": "1990"}
    theirs = neighbour.post("/portal/claim", data={**form, **known})
    nobody = neighbour.post("/portal/claim", data={**form, **unknown})
    assert theirs.status_code == nobody.status_code == 200
    assert "Chúng tôi không tìm thấy hồ sơ" in theirs.text
    # the same page whether the CCCD is someone's or nobody's: not even its existence shows
    assert _normalised(theirs.text) == _normalised(nobody.text)
    assert "Nguyễn Văn An" not in theirs.text
    assert linked_patient(_engine(world), NEIGHBOUR) is None
    # the owner sees the attempt among the accesses to their record
    assert "$claim: CCCD given with another birth date or phone" in _events(world, world.patient_id)
    made = neighbour.post(
        "/portal/claim",
        data={**form, **known, "step": "details", "name": "Trần Văn Hàng", "sex": "male"},
    )
    assert made.status_code == 200 and "Đã tạo sổ sức khỏe của bạn" in made.text
    own = linked_patient(_engine(world), NEIGHBOUR)
    assert own is not None and own != world.patient_id
    record = world.platform.read("Patient", own).content or {}
    assert verification(record) == "unconfirmed"
    assert {i["system"] for i in record["identifier"]} == {DECLARED_CCCD}
    assert record["telecom"][0]["value"] == NEIGHBOUR
    # the typed number is no CCCD anyone finds the person by: check-ins still reach p-an only
    with world.platform.snapshot() as tx:
        assert list(people_holding(world.platform, tx, CCCD, CCCD_NUMBER)) == [world.patient_id]
    # the patient index asks a person; nothing is merged on the citizen's word
    reviews = _reviews(world)
    assert len(reviews) == 1
    pair = {reviews[0]["focus"]["reference"], reviews[0]["for"]["reference"]}  # type: ignore[index]
    assert pair == {f"Patient/{own}", f"Patient/{world.patient_id}"}
    original = world.platform.read("Patient", world.patient_id).content or {}
    assert "link" not in original and original.get("active") is not False
    door = world.platform.for_caller(citizen_principal(NEIGHBOUR, own))
    with pytest.raises(Forbidden):
        door.read("Patient", world.patient_id)
    assert door.read("Patient", own).content is not None


def test_a_resident_new_to_the_platform_gets_a_record_the_index_compares_with_everyone(
    world: World,
) -> None:
    mai = {
        "resourceType": "Patient",
        "id": "p-mai",
        "name": [{"family": "Trần", "given": ["Thị", "Mai"]}],
        "gender": "female",
        "birthDate": "1990-05-20",
        "telecom": [{"system": "phone", "value": "0977111222"}],
    }
    world.platform.update(mai, "Patient", "p-mai")
    repo = _citizen(world, "0977111222")
    form = ClaimForm("001190012345", "20", "5", "1990")
    asked = _claim(world, repo, form)
    assert asked.outcome == "details" and asked.sex == "female"  # read from the CCCD
    assert linked_patient(_engine(world), "0977111222") is None
    with pytest.raises(ClaimProblems) as wrong:
        _claim(world, repo, ClaimForm("001190012345", "20", "5", "1990", name="1", sex="x"))
    assert {field for field, _ in wrong.value.problems} == {"name", "sex-male"}
    made = _claim(world, repo, ClaimForm("001190012345", "20", "5", "1990", name="Trần Thị Mai"))
    assert made.sex == "female"  # not asked: the CCCD's fourth digit says it
    assert made.outcome == "created" and made.patient_id not in (None, "p-mai")
    assert linked_patient(_engine(world), "0977111222") == made.patient_id
    review = _reviews(world)
    assert len(review) == 1
    grade = next(i["valueCode"] for i in review[0]["input"] if "valueCode" in i)  # type: ignore[attr-defined]
    assert grade in ("certain", "probable")  # even certain: a person decides
    assert "link" not in (world.platform.read("Patient", "p-mai").content or {})


def test_claims_are_counted_per_phone_so_numbers_cannot_be_guessed(world: World) -> None:
    repo = _citizen(world, PHONE)
    with pytest.raises(ClaimProblems):  # a mistyped form is not an attempt
        _claim(world, repo, ClaimForm("0010850", "15", "3", "1985"))
    for n in range(PHONE_LIMIT[0]):
        guess = ClaimForm(f"0010850{n:05d}", "15", "3", "1985")
        assert _claim(world, repo, guess).outcome == "details"
    with pytest.raises(RateLimited):  # the right numbers now come too late
        _claim(world, repo, ClaimForm(CCCD_NUMBER, "15", "3", "1985"))
    assert linked_patient(_engine(world), PHONE) is None
    # another phone is not held back by this one's attempts
    other = _citizen(world, NEIGHBOUR)
    assert _claim(world, other, ClaimForm("001090000077", "2", "7", "1990")).outcome == "details"


def test_only_a_citizen_claims_and_the_ward_poster_gives_the_new_records_address(
    world: World,
) -> None:
    with pytest.raises(Forbidden):
        _claim(world, world.platform, ClaimForm(CCCD_NUMBER, "15", "3", "1985"))
    vneid = Principal(kind="citizen", subject="vneid:0123456789", display="VNeID")
    with pytest.raises(Forbidden):  # no phone the SMS proved: nothing to find the record by
        _claim(world, world.platform.for_caller(vneid), ClaimForm(CCCD_NUMBER, "15", "3", "1985"))
    phone = sign_in(world, NEIGHBOUR)
    phone.get(f"/portal/w/{WARD}")  # the resident scanned the ward's poster
    page = phone.get("/portal/claim")
    data = {
        "csrf": csrf_of(page.text),
        "step": "details",
        "cccd": "001090000077",
        "birth-day": "2",
        "birth-month": "7",
        "birth-year": "1990",
        "name": "Lê Thị Hoa",
        "sex": "female",
    }
    assert phone.post("/portal/claim", data=data).status_code == 200
    own = linked_patient(_engine(world), NEIGHBOUR)
    assert own is not None
    address = (world.platform.read("Patient", own).content or {})["address"][0]
    assert address["city"] == "Phường Hoàn Kiếm" and address["state"] == "Thành phố Hà Nội"


def test_a_phone_number_the_record_no_longer_uses_claims_nothing(world: World) -> None:
    """Carriers give numbers out again: the record's old number is not its owner any more."""
    patient = world.platform.read("Patient", world.patient_id).content or {}
    patient["telecom"] = [
        {"system": "phone", "value": PHONE, "period": {"end": "2024-01-01"}},
        {"system": "phone", "value": "0933000111"},
    ]
    world.platform.update(patient, "Patient", world.patient_id)
    taken = _claim(world, _citizen(world, PHONE), ClaimForm(CCCD_NUMBER, "15", "3", "1985"))
    assert taken.outcome == "details" and linked_patient(_engine(world), PHONE) is None
    owner = _claim(world, _citizen(world, "0933000111"), ClaimForm(CCCD_NUMBER, "15", "3", "1985"))
    assert owner == ClaimResult("linked", world.patient_id)
