"""The self-declaration: one short screen at a time over the pages, kept on the server, sent
with its self-declared items in one transaction; never into someone else's record."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sokhoe.access.care import home_commune
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import confirm_guardian, with_wards
from sokhoe.access.otp import citizen_principal, link_citizen
from sokhoe.access.principal import Principal
from sokhoe.bootstrap import publish_registry
from sokhoe.errors import Forbidden, InvalidRequest
from sokhoe.portal import declaration
from sokhoe.portal.codes import CHRONIC, FAMILY_DISEASES
from sokhoe.portal.extraction import ITEM_SYSTEM, TYPES, Extracted
from sokhoe.portal.patient import self_declared_patient
from sokhoe.portal.photo import PhotoRefused, card_photo
from sokhoe.portal.questionnaire import CANONICAL, TRANSLATION
from sokhoe.portal.sections import BY_LINK
from sokhoe.portal.selfdeclared import is_self_declared, verification
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM, is_recordable
from sokhoe.store.sql import SqlStore
from sokhoe.web.i18n import catalogue
from tests.clinic.clinic_world import PASSWORD, PHONE, World, make_world
from tests.conftest import BASE, _truncate
from tests.portal.portal_world import csrf_of, sign_in

TODAY = date(2026, 5, 4)
VI = catalogue("vi", "portal").gettext
REST: dict[str, dict[str, Any]] = {
    "about": {"occupation": "Giáo viên", "ethnicity": "01"},
    "blood": {"abo": "O", "rh": "positive"},
    "surgeries": {
        "surgeries-any": True,
        "surgery": [{"surgery-what": "Ruột thừa", "surgery-year": 2010}],
    },
    "disabilities": {"disabilities-any": False},
    "family": {
        "family-any": True,
        "relative": [{"relative-who": "FTH", "relative-disease": "I10"}],
    },
    "vaccines": {
        "vaccines-any": True,
        "vaccine": [{"vaccine-code": "213", "vaccine-date": "2021-08"}],
    },
    "tobacco": {"tobacco": "current", "tobacco-kind": ["water-pipe"], "tobacco-per-day": 10},
    "alcohol": {"alcohol": "never"},
    "activity": {"activity-days": 3, "activity-minutes": 45},
    "exposure": {"exposure-any": False},
    "birth": {"birth-weight": 3200},
}
"""Answers for the sections the HTTP journey does not walk through itself."""
ALLERGIES = {
    "allergies-any": True,
    "allergy": [
        {
            "allergy-kind": "medication",
            "allergy-substance": "Penicillin",
            "allergy-reaction": "Nổi mẩn",
        },
        {"allergy-kind": "food", "allergy-substance": "Tôm"},
    ],
}
CONDITIONS = {"conditions-any": True, "condition": ["I10", "E11"], "condition-other": "Gout"}


@pytest.fixture
def world(tmp_path: Path) -> World:
    made = make_world(tmp_path, BASE)
    link_citizen(made.app.state.tokens.engine, PHONE, made.patient_id)
    return made


@pytest.fixture(params=["sqlite", "postgres"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The world on SQLite and on PostgreSQL, where sending is one transaction too."""
    store = None
    if request.param == "postgres":
        store = SqlStore(request.getfixturevalue("pg_url"), migrate_schema=False)
        _truncate(store)
    made = make_world(tmp_path, BASE, store)
    link_citizen(made.app.state.tokens.engine, PHONE, made.patient_id)
    yield made
    if store is not None:
        store.close()


def _door(world: World, phone: str = PHONE, own: str | None = "p-an") -> GuardedRepository:
    who = with_wards(world.platform, citizen_principal(phone, own))
    return world.platform.for_caller(who)


def _fill(repo: GuardedRepository, patient_id: str, answers: dict[str, dict[str, Any]]) -> None:
    for link, given in answers.items():
        declaration.save(repo, patient_id, BY_LINK[link], given, done=True, translate=VI)


def _items(world: World, patient_id: str = "p-an") -> dict[str, list[dict[str, Any]]]:
    """The self-declared items in the record, by type (read as the platform)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rtype in TYPES:
        query = world.platform.parse_query(
            rtype, [("patient", f"Patient/{patient_id}"), ("_count", "200")]
        )
        found = [m.content or {} for m in world.platform.search(query).matches]
        out[rtype] = [c for c in found if is_self_declared(c)]
    return out


def _responses(world: World, patient_id: str) -> list[dict[str, Any]]:
    query = world.platform.parse_query(
        "QuestionnaireResponse", [("subject", f"Patient/{patient_id}")]
    )
    return [m.content or {} for m in world.platform.search(query).matches]


def _post(client: Any, url: str, data: dict[str, Any], **kw: Any) -> Any:
    page = client.get("/portal/declare")
    return client.post(
        url,
        data={"csrf": csrf_of(page.text), "patient": "p-an", **data},
        follow_redirects=False,
        **kw,
    )


def test_declaring_step_by_step_with_errors_in_vietnamese_resumed_on_another_phone(
    world: World,
) -> None:
    phone = sign_in(world, PHONE)
    tasks = phone.get("/portal/declare")
    assert tasks.status_code == 200 and "Khai báo sức khỏe" in tasks.text
    assert "Bạn đã làm xong 0 / 13 phần." in tasks.text  # no pregnancies for a man
    first = phone.get("/portal/declare/allergies")
    assert "<h1>Bạn có bị dị ứng không?</h1>" in first.text
    empty = _post(phone, "/portal/declare/allergies", {})
    assert empty.status_code == 400 and 'href="#allergies-any"' in empty.text
    assert "Chọn Có nếu bạn bị dị ứng" in empty.text
    yes = _post(phone, "/portal/declare/allergies", {"allergies-any": "yes"})
    assert yes.headers["location"] == "/portal/declare/allergies/details"
    entry = {"allergy-count": "1", "allergy-kind-0": "medication", "allergy-substance-0": ""}
    wrong = _post(phone, "/portal/declare/allergies/details", entry)
    assert wrong.status_code == 400 and 'href="#allergy-substance-0"' in wrong.text
    assert "Nhập tên thuốc, thức ăn hoặc thứ gây dị ứng" in wrong.text
    entry |= {"allergy-substance-0": "Penicillin", "allergy-reaction-0": "Nổi mẩn"}
    more = _post(phone, "/portal/declare/allergies/details", {**entry, "action": "add"})
    assert more.status_code == 200 and 'name="allergy-substance-1"' in more.text
    assert 'value="Penicillin"' in more.text
    both = {**entry, "allergy-count": "2", "allergy-kind-1": "food", "allergy-substance-1": "Tôm"}
    saved = _post(phone, "/portal/declare/allergies/details", both)
    assert saved.headers["location"] == "/portal/declare/conditions"
    # another day, another phone: the answers are where they were left
    other = sign_in(world, PHONE, "Mozilla/5.0 (Windows NT 10.0) Firefox/121.0")
    listed = other.get("/portal/declare").text
    assert re.search(r"Dị ứng</a>\s*<strong class=\"tag verified\"[^>]*>Đã xong", listed)
    assert 'value="Tôm"' in other.get("/portal/declare/allergies/details").text
    assert _post(other, "/portal/declare/conditions", {"conditions-any": "yes"}).status_code == 303
    none = _post(other, "/portal/declare/conditions/details", {})
    assert none.status_code == 400 and "Hãy chọn một bệnh hoặc ghi tên bệnh vào ô" in none.text
    ill = {"condition": ["I10", "E11"], "condition-other": "Gout"}
    assert _post(other, "/portal/declare/conditions/details", ill).status_code == 303
    _fill(_door(world), "p-an", REST)
    check = other.get("/portal/declare/check")
    assert "Xem lại câu trả lời trước khi gửi" in check.text
    assert "Thuốc — Penicillin — Nổi mẩn" in check.text and "Tăng huyết áp" in check.text
    sent = _post(other, "/portal/declare/submit", {})
    assert sent.headers["location"] == "/portal/declare/sent"
    assert "Đã gửi câu trả lời của bạn" in other.get("/portal/declare/sent").text
    items = _items(world)
    allergy = next(a for a in items["AllergyIntolerance"] if a["code"]["text"] == "Penicillin")
    assert verification(allergy) == "unconfirmed"
    assert allergy["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert allergy["recorder"] == allergy["asserter"] == {"reference": "Patient/p-an"}
    assert allergy["category"] == ["medication"]
    assert allergy["reaction"][0]["manifestation"][0]["text"] == "Nổi mẩn"
    codes = {c["code"].get("coding", [{}])[0].get("code") for c in items["Condition"]}
    assert codes == {"I10", "E11", None}  # Gout has its text only
    pressure = next(c for c in items["Condition"] if c["code"].get("text") == "Tăng huyết áp")
    assert pressure["code"]["coding"][0]["system"] == ICD10_SYSTEM
    smoking = next(o for o in items["Observation"] if o["code"]["coding"][0]["code"] == "72166-2")
    assert (
        smoking["status"] == "preliminary"
        and smoking["category"][0]["coding"][0]["code"] == "social-history"
    )
    assert smoking["valueCodeableConcept"]["coding"][0]["code"] == "77176002"
    vaccine = items["Immunization"][0]
    assert (
        vaccine["primarySource"] is False
        and vaccine["reportOrigin"]["coding"][0]["code"] == "recall"
    )
    assert vaccine["occurrenceDateTime"] == "2021-08" and vaccine["status"] == "completed"
    assert items["FamilyMemberHistory"][0]["status"] == "partial"
    assert items["Procedure"][0]["performedDateTime"] == "2010"
    (response,) = _responses(world, "p-an")
    assert response["status"] == "completed" and response["questionnaire"] == CANONICAL
    assert "Bạn đã gửi câu trả lời ngày" in other.get("/portal/declare").text
    english = other.get("/portal/declare/allergies?lang=en").text
    assert "<h1>Do you have any allergies?</h1>" in english and 'lang="en"' in english


def test_sending_again_updates_the_same_items_and_leaves_the_stations_decisions(
    stored: World,
) -> None:
    world = stored
    repo = _door(world)
    _fill(repo, "p-an", {**REST, "allergies": ALLERGIES, "conditions": CONDITIONS})
    first = declaration.submit(repo, "p-an", translate=VI, today=TODAY)
    assert first.written == {
        "AllergyIntolerance": 2,
        "Condition": 3,
        "Procedure": 1,
        "FamilyMemberHistory": 1,
        "Immunization": 1,
        "Observation": 7,
    }
    before = {rtype: {c["id"]: c for c in found} for rtype, found in _items(world).items()}
    again = declaration.submit(repo, "p-an", translate=VI, today=TODAY)
    assert again.written == {} and again.withdrawn == 0  # nothing new, no new versions
    # the station confirms Penicillin; the resident then changes both allergies, drops E11
    penicillin = next(
        a for a in before["AllergyIntolerance"].values() if a["code"]["text"] == "Penicillin"
    )
    confirmed = dict(penicillin)
    confirmed["meta"] = {
        "tag": [t for t in penicillin["meta"]["tag"] if t["code"] != "unconfirmed"]
    }
    confirmed["meta"]["tag"].append(
        {"system": "https://fhir.sokhoe.vn/CodeSystem/verification", "code": "confirmed"}
    )
    confirmed["verificationStatus"] = {"coding": [{"code": "confirmed"}]}
    world.platform.update(confirmed, "AllergyIntolerance", penicillin["id"])
    changed = {
        "allergies-any": True,
        "allergy": [
            {
                "allergy-kind": "medication",
                "allergy-substance": "Penicillin",
                "allergy-reaction": "Khó thở",
            },
            {"allergy-kind": "food", "allergy-substance": "Tôm", "allergy-reaction": "Ngứa"},
        ],
    }
    _fill(repo, "p-an", {"allergies": changed, "conditions": {**CONDITIONS, "condition": ["I10"]}})
    third = declaration.submit(repo, "p-an", translate=VI, today=TODAY)
    assert third.written == {"AllergyIntolerance": 1} and third.withdrawn == 1 and third.kept == 1
    after = _items(world)
    assert {rtype: len(found) for rtype, found in after.items()} == {
        rtype: len(found) for rtype, found in before.items()
    }  # not one duplicate
    shrimp = next(a for a in after["AllergyIntolerance"] if a["code"]["text"] == "Tôm")
    assert shrimp["id"] in before["AllergyIntolerance"] and shrimp["meta"]["versionId"] == "2"
    assert shrimp["reaction"][0]["manifestation"][0]["text"] == "Ngứa"
    kept = next(a for a in after["AllergyIntolerance"] if a["code"]["text"] == "Penicillin")
    assert (
        verification(kept) == "confirmed"
        and kept["reaction"][0]["manifestation"][0]["text"] == "Nổi mẩn"
    )
    diabetes = next(
        c for c in after["Condition"] if c["code"].get("text") == "Đái tháo đường típ 2"
    )
    assert diabetes["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in diabetes
    assert _responses(world, "p-an")[0]["status"] == "amended"


def test_a_refused_sending_writes_nothing(stored: World) -> None:
    world = stored
    repo = _door(world)
    _fill(repo, "p-an", {**REST, "allergies": ALLERGIES, "conditions": CONDITIONS})
    (response,) = _responses(world, "p-an")
    # a facility's own allergy record carries this declaration's identifier
    forged = Extracted("AllergyIntolerance", "allergy:penicillin", {}).identifier(response["id"])
    world.platform.update(
        {
            "resourceType": "AllergyIntolerance",
            "id": "facility-allergy",
            "patient": {"reference": "Patient/p-an"},
            "code": {"text": "Penicillin"},
            "identifier": [{"system": ITEM_SYSTEM, "value": forged}],
        },
        "AllergyIntolerance",
        "facility-allergy",
    )
    before = {rtype: len(found) for rtype, found in _items(world).items()}
    phone = sign_in(world, PHONE)
    refused = _post(phone, "/portal/declare/submit", {})
    assert refused.status_code == 409
    assert "Một mục trong bản khai này đã bị người khác sửa" in refused.text
    assert {rtype: len(found) for rtype, found in _items(world).items()} == before
    (unchanged,) = _responses(world, "p-an")
    assert unchanged["status"] == "in-progress"
    assert unchanged["meta"]["versionId"] == response["meta"]["versionId"]
    facility = world.platform.read("AllergyIntolerance", "facility-allergy")
    assert facility.version_id == 1 and not is_self_declared(facility.content or {})
    # nor may an unfinished declaration be sent
    world.platform.update(
        {"resourceType": "Patient", "id": "p-cuc", "gender": "male", "birthDate": "1970-01-01"},
        "Patient",
        "p-cuc",
    )
    cuc = _door(world, "0909000111", "p-cuc")
    _fill(cuc, "p-cuc", {"allergies": ALLERGIES})
    with pytest.raises(InvalidRequest):
        declaration.submit(cuc, "p-cuc", translate=VI, today=TODAY)
    assert _responses(world, "p-cuc")[0]["status"] == "in-progress"
    assert _items(world, "p-cuc")["AllergyIntolerance"] == []


def test_a_citizen_cannot_declare_into_another_persons_record(world: World) -> None:
    world.platform.update(
        {"resourceType": "Patient", "id": "p-binh", "gender": "female", "birthDate": "1990-01-01"},
        "Patient",
        "p-binh",
    )
    phone = sign_in(world, PHONE)
    forged = _post(
        phone, "/portal/declare/allergies", {"patient": "p-binh", "allergies-any": "yes"}
    )
    assert forged.status_code == 403
    assert "Bạn chỉ có thể khai cho chính mình" in forged.text
    assert _post(phone, "/portal/declare/submit", {"patient": "p-binh"}).status_code == 403
    phone.cookies.set("sokhoe_profile", "p-binh", path="/portal")
    shown = phone.get("/portal/declare/allergies")
    assert "Nguyễn Văn An" in shown.text and 'name="patient" value="p-an"' in shown.text
    assert _responses(world, "p-binh") == []
    repo = _door(world)
    with pytest.raises(Forbidden):
        declaration.save(repo, "p-binh", BY_LINK["allergies"], ALLERGIES, done=True, translate=VI)
    with pytest.raises(Forbidden):
        declaration.load(repo, "p-binh")
    with pytest.raises(Forbidden):  # a token naming the record is not enough: the door decides
        stranger = world.platform.for_caller(citizen_principal("0909000111", "p-binh"))
        declaration.save(stranger, "p-an", BY_LINK["allergies"], ALLERGIES, done=True, translate=VI)
    assert _responses(world, "p-binh") == [] and _responses(world, "p-an") == []
    # a facility's staff (B has p-an's record) neither opens these pages nor declares for them
    doctor = TestClient(world.app, base_url=BASE)
    form = {"username": "bs.b", "password": PASSWORD}
    assert doctor.post("/clinic/sign-in", data=form, follow_redirects=False).status_code == 303
    assert doctor.get("/portal/declare").status_code == 403
    assert doctor.get("/portal/claim").status_code == 403
    principal = Principal(
        "staff", "bs.b", "BS. B", "doctor", "01002", scopes=frozenset({"user/*.cruds"})
    )
    with pytest.raises(Forbidden):
        declaration.save(
            world.platform.for_caller(principal),
            "p-an",
            BY_LINK["allergies"],
            ALLERGIES,
            done=True,
            translate=VI,
        )
    assert _responses(world, "p-an") == []


def test_a_guardian_declares_for_their_child_in_their_own_name(world: World) -> None:
    world.platform.update(
        {"resourceType": "Patient", "id": "p-be", "gender": "female", "birthDate": "2020-06-01"},
        "Patient",
        "p-be",
    )
    world.platform.update(
        {
            "resourceType": "RelatedPerson",
            "id": "rp-an",
            "patient": {"reference": "Patient/p-be"},
            "relationship": [{"coding": [{"code": "FTH"}]}],
            "telecom": [{"system": "phone", "value": PHONE}],
        },
        "RelatedPerson",
        "rp-an",
    )
    confirm_guardian(world.platform, "rp-an")
    repo = _door(world)
    child = {"resourceType": "Patient", "gender": "female", "birthDate": "2020-06-01"}
    asked = {s.link for s in declaration.sections_for(child, TODAY)}
    assert asked.isdisjoint({"tobacco", "alcohol", "exposure", "pregnancy"})
    answers = {
        link: {f"{link}-any": False}
        if f"{link}-any" in {i.link for i in BY_LINK[link].items}
        else {}
        for link in asked
    }
    answers |= {
        "allergies": {
            "allergies-any": True,
            "allergy": [{"allergy-kind": "food", "allergy-substance": "Sữa bò"}],
        }
    }
    answers |= {"blood": {"abo": "unknown"}, "activity": {"activity-days": 7}}
    _fill(repo, "p-be", answers)
    declaration.submit(repo, "p-be", translate=VI, today=TODAY)
    (milk,) = _items(world, "p-be")["AllergyIntolerance"]
    assert milk["asserter"] == milk["recorder"] == {"reference": "RelatedPerson/rp-an"}
    assert _responses(world, "p-be")[0]["author"] == {"reference": "RelatedPerson/rp-an"}
    woman = {"gender": "female", "birthDate": "1990-01-01"}
    assert "pregnancy" in {s.link for s in declaration.sections_for(woman, TODAY)}


def test_the_questionnaire_is_published_in_vietnamese_with_real_codes(world: World) -> None:
    publish_registry(world.platform)
    stored = world.platform.read("Questionnaire", "self-declaration").content or {}
    assert stored["title"] == "Khai báo sức khỏe" and stored["status"] == "active"
    allergies = next(i for i in stored["item"] if i["linkId"] == "allergies")
    gate = allergies["item"][0]
    assert gate["text"] == "Bạn có bị dị ứng không?" and gate["type"] == "boolean"
    english = gate["_text"]["extension"][0]
    assert (
        english["url"] == TRANSLATION
        and english["extension"][1]["valueString"] == "Do you have any allergies?"
    )
    assert allergies["item"][1]["enableWhen"] == [
        {"question": "allergies-any", "operator": "=", "answerBoolean": True}
    ]
    assert publish_registry(world.platform) == 0  # the same on every start: no new version
    for option in (*CHRONIC, *FAMILY_DISEASES):
        assert option.code == "other" or is_recordable(option.code), option
    with pytest.raises(Forbidden):  # server-owned: a citizen (or a facility) cannot change it
        _door(world).update(stored, "Questionnaire", "self-declaration")


def _photo(size: tuple[int, int], kind: str) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {2: (21.0, 1.0, 0.0)}  # GPS latitude: where the photo was taken
    image.save(out, kind, exif=exif) if kind == "JPEG" else image.save(out, kind)
    return out.getvalue()


def test_the_vaccination_card_photo_is_checked_shrunk_and_stripped(world: World) -> None:
    kept = card_photo(_photo((3000, 2000), "JPEG"), world.platform.clock())
    data = base64.b64decode(kept["data"])
    image = Image.open(io.BytesIO(data))
    assert kept["contentType"] == "image/jpeg" and max(image.size) == 1280
    assert kept["size"] == len(data) <= 350 * 1024 and not image.getexif()
    for bad in (b"%PDF-1.4 not a photo", b"\xff\xd8\xff" + b"\x00" * 100):
        with pytest.raises(PhotoRefused):
            card_photo(bad, world.platform.clock())
    phone = sign_in(world, PHONE)
    assert _post(phone, "/portal/declare/vaccines", {"vaccines-any": "yes"}).status_code == 303
    entry = {"vaccine-count": "1", "vaccine-code-0": "112", "vaccine-date-0-year": "2015"}
    wrong = _post(
        phone,
        "/portal/declare/vaccines/details",
        entry,
        files={"vaccine-card": ("the-card.jpg", b"GIF89a not really", "image/jpeg")},
    )
    assert wrong.status_code == 400 and "Tệp phải là ảnh chụp (JPEG, PNG hoặc WebP)" in wrong.text
    done = _post(
        phone,
        "/portal/declare/vaccines/details",
        entry,
        files={"vaccine-card": ("card.png", _photo((800, 600), "PNG"), "image/png")},
    )
    assert done.status_code == 303
    (response,) = _responses(world, "p-an")
    vaccines = next(i for i in response["item"] if i["linkId"] == "vaccines")
    card = next(i for i in vaccines["item"] if i["linkId"] == "vaccine-card")
    assert card["answer"][0]["valueAttachment"]["contentType"] == "image/jpeg"
    again = phone.get("/portal/declare/vaccines/details").text
    assert "Đã lưu một ảnh" in again and 'value="2015"' in again


def test_the_about_answers_change_only_a_record_the_citizen_made(world: World) -> None:
    about = {"address": "Số 5, Phường Hoàn Kiếm, Thành phố Hà Nội", "ethnicity": "02"}
    own = self_declared_patient(
        "p-new",
        cccd="001090000077",
        name="Lê Thị Hoa",
        sex="female",
        born=date(1990, 7, 2),
        phone="0909000111",
    )
    world.platform.update(own, "Patient", "p-new")
    repo = _door(world, "0909000111", "p-new")
    answers = {s.link: {} for s in declaration.sections_for(own, TODAY)}
    answers |= {"about": about, "allergies": {"allergies-any": False}}
    answers |= {"conditions": {"conditions-any": False}, "blood": {"abo": "A"}}
    answers |= {
        k: {f"{k}-any": False}
        for k in ("surgeries", "disabilities", "family", "vaccines", "exposure", "pregnancy")
    }
    answers |= {
        "tobacco": {"tobacco": "never"},
        "alcohol": {"alcohol": "never"},
        "activity": {"activity-days": 1},
    }
    _fill(repo, "p-new", answers)
    declaration.submit(repo, "p-new", translate=VI, today=TODAY)
    made = world.platform.read("Patient", "p-new").content or {}
    assert home_commune(made) == "00070" and made["address"][0]["line"] == ["Số 5"]
    assert made["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "02"
    # a facility's record keeps what the facility wrote: the station applies the corrections
    before = world.platform.read("Patient", "p-an")
    _fill(
        _door(world),
        "p-an",
        {**REST, "about": about, "allergies": ALLERGIES, "conditions": CONDITIONS},
    )
    declaration.submit(_door(world), "p-an", translate=VI, today=TODAY)
    assert world.platform.read("Patient", "p-an").version_id == before.version_id
