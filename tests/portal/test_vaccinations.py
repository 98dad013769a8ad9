"""The expanded programme's schedule: each dose's status from a child's Immunizations, the
vaccinations page of the profile shown, and the reminder SMS (once per dose, only to a
confirmed guardian or the person's own phone, no diagnosis in it)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sokhoe.access.guardians import confirm_guardian
from sokhoe.access.otp import link_citizen
from sokhoe.access.sms import MemoryGateway, SmsDeliveryError
from sokhoe.portal.immunisation import CVX, EPI, SCHEDULE, VACCINES, add_months, plan
from sokhoe.portal.reminders import remind
from sokhoe.portal.selfdeclared import mark
from tests.clinic.clinic_world import World, make_world
from tests.clinic.station import NURSE, door, make_station
from tests.conftest import BASE
from tests.portal.portal_world import csrf_of, sign_in

BIRTH = date(2025, 1, 10)
PARENT, OTHER = "0987654321", "0978111222"


def shot(rid: str, cvx: str, day: date, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Immunization",
        "id": rid,
        "status": "completed",
        "patient": {"reference": "Patient/p-be"},
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}]},
        "occurrenceDateTime": day.isoformat(),
        **extra,
    }


def statuses(found: Any) -> dict[str, str]:
    return {d.key: d.status for d in found.doses}


def test_the_schedule_is_the_programmes_with_cvx_codes() -> None:
    keys = [(d.vaccine, d.number, d.months) for d in SCHEDULE]
    assert keys[:2] == [("hepb-birth", 1, 0), ("bcg", 1, 0)]
    assert [(v, n) for v, n, m in keys if m in (2, 3, 4)] == [
        ("penta", 1),
        ("opv", 1),
        ("penta", 2),
        ("opv", 2),
        ("penta", 3),
        ("opv", 3),
    ]
    assert {(v, m) for v, _, m in keys if v == "ipv"} == {("ipv", 5), ("ipv", 9)}
    assert ("measles", 1, 9) in keys and ("dtp", 1, 18) in keys and ("mr", 1, 18) in keys
    assert [(n, m) for v, n, m in keys if v == "je"] == [(1, 12), (2, 12), (3, 24)]
    cvx = {k: v.cvx for k, v in VACCINES.items()}
    assert cvx == {
        "hepb-birth": "08",
        "bcg": "19",
        "penta": "198",
        "opv": "178",
        "ipv": "10",
        "measles": "05",
        "je": "39",
        "dtp": "01",
        "mr": "04",
    }
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)


def test_each_dose_is_given_due_overdue_or_upcoming() -> None:
    given = [
        shot("i1", "08", BIRTH),
        shot("i2", "19", BIRTH + timedelta(days=3)),
        shot("i3", "198", add_months(BIRTH, 2)),
        shot("i4", "178", add_months(BIRTH, 2)),
        # declared by the parent, refuted by the station: it does not count
        mark(shot("i5", "198", add_months(BIRTH, 3)), "refuted"),
        shot("i6", "198", add_months(BIRTH, 3), status="entered-in-error"),
    ]
    today = add_months(BIRTH, 3) + timedelta(days=10)
    found = plan(BIRTH, given, today)
    assert found.child
    got = statuses(found)
    assert got["hepb-birth:1"] == got["bcg:1"] == got["penta:1"] == got["opv:1"] == "given"
    assert got["penta:2"] == got["opv:2"] == "due"
    assert got["penta:3"] == "upcoming" and got["measles:1"] == "upcoming"
    later = statuses(plan(BIRTH, given, add_months(BIRTH, 5) + timedelta(days=1)))
    assert later["penta:2"] == "overdue" and later["penta:3"] == "overdue"
    assert later["ipv:1"] == "due"
    # nothing recorded at birth: overdue the next days, the birth dose is not a later shot
    newborn = statuses(plan(BIRTH, [], BIRTH + timedelta(days=2)))
    assert newborn["hepb-birth:1"] == "overdue" and newborn["bcg:1"] == "due"
    late_hepb = statuses(
        plan(BIRTH, [shot("h", "08", BIRTH + timedelta(days=40))], BIRTH + timedelta(days=41))
    )
    assert late_hepb["hepb-birth:1"] == "overdue"
    # a date before birth counts for nothing (a typing slip): listed apart
    slip = plan(BIRTH, [shot("s", "19", BIRTH - timedelta(days=1))], BIRTH + timedelta(days=2))
    assert statuses(slip)["bcg:1"] == "due" and [g.resource["id"] for g in slip.other] == ["s"]


def test_japanese_encephalitis_counts_from_the_dose_before() -> None:
    first = add_months(BIRTH, 13)
    found = plan(BIRTH, [shot("je1", "39", first)], first + timedelta(days=3))
    je2 = next(d for d in found.doses if d.key == "je:2")
    assert je2.due == first + timedelta(days=7) and je2.status == "upcoming"
    second = first + timedelta(days=10)
    found = plan(BIRTH, [shot("je1", "39", first), shot("je2", "39", second)], second)
    je3 = next(d for d in found.doses if d.key == "je:3")
    assert je3.due == second + timedelta(days=365)
    # a declaration coded with the table's own codes counts too
    coded = shot("x", "0", first)
    coded["vaccineCode"] = {"coding": [{"system": EPI, "code": "je"}], "text": "VNNB"}
    assert statuses(plan(BIRTH, [coded], first))["je:1"] == "given"


def test_an_adults_missing_childhood_doses_are_not_overdue() -> None:
    adult = plan(
        date(1985, 3, 15),
        [shot("t", "19", date(1985, 3, 20)), shot("f", "141", date(2024, 10, 1))],
        date(2026, 1, 1),
    )
    assert not adult.child and adult.due == []
    assert [d.key for d in adult.doses] == ["bcg:1"]
    assert [g.resource["id"] for g in adult.other] == ["f"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = make_world(tmp_path, BASE)
    make_station(world)
    today = world.platform.clock().date()
    child = {
        "resourceType": "Patient",
        "id": "p-be",
        "name": [{"family": "Đỗ", "given": ["Minh", "Châu"]}],
        "birthDate": add_months(today, -2).isoformat(),  # two months old: 5-in-1 and OPV due
        "address": [{"use": "home", "city": "Phường Hoàn Kiếm", "state": "Thành phố Hà Nội"}],
    }
    world.platform.update(child, "Patient", "p-be")
    born = add_months(today, -2)
    world.platform.update(shot("bcg", "19", born), "Immunization", "bcg")
    declared = mark(shot("hepb", "08", born, primarySource=False), "unconfirmed")
    world.platform.update(declared, "Immunization", "hepb")
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p-be"},
        "code": {"text": "Tim bẩm sinh"},
    }
    world.platform.create(condition, "Condition")
    return world


def guardian(world: World, phone: str) -> None:
    """``phone`` confirmed as the child's mother by the station's nurse."""
    mother = {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": "Patient/p-be"},
        "relationship": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
                ]
            }
        ],
        "telecom": [{"system": "phone", "value": phone}],
    }
    rp = world.platform.create(mother, "RelatedPerson").resource.id
    confirm_guardian(door(world, NURSE), rp)


def test_reminders_go_once_per_dose_to_confirmed_guardians_only(world: World) -> None:
    engine = world.app.state.tokens.engine
    # a parent who only asked (not confirmed) and a stranger's phone get nothing
    unconfirmed = {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": "Patient/p-be"},
        "relationship": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH"}
                ]
            }
        ],
        "telecom": [{"system": "phone", "value": OTHER}],
    }
    world.platform.create(unconfirmed, "RelatedPerson")
    sms = MemoryGateway()
    assert remind(world.platform, engine, sms).sent == 0 and sms.sent == []
    guardian(world, PARENT)
    report = remind(world.platform, engine, sms)
    assert report.children == 1 and report.sent == 2  # 5-in-1 and OPV, due now
    assert {to for to, _ in sms.sent} == {PARENT}
    for _, text in sms.sent:
        assert text.startswith("Sổ sức khỏe: bé Châu ")
        assert "Tim" not in text and "p-be" not in text and "Đỗ" not in text
    assert any("5 trong 1" in t for _, t in sms.sent) and any("OPV" in t for _, t in sms.sent)
    again = remind(world.platform, engine, sms)
    assert again.sent == 0 and again.already == 2 and len(sms.sent) == 2
    # the measles dose at 9 months is not yet within the reminder's lead
    assert not any("sởi" in t for _, t in sms.sent)


def test_a_failed_send_is_tried_again_and_the_cli_runs_the_job(
    world: World, tmp_path: Path
) -> None:
    engine = world.app.state.tokens.engine
    link_citizen(engine, PARENT, "p-be")  # the child's own linked phone

    class Down:
        def send(self, phone: str, text: str) -> None:
            raise SmsDeliveryError("down")

    failed = remind(world.platform, engine, Down())
    assert failed.failed == 2 and failed.sent == 0
    from sokhoe.cli import app

    db = world.settings.database_url
    result = CliRunner().invoke(
        app, ["portal", "remind", "--db", db], env={"SOKHOE_VAR_DIR": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    assert '"sent": 2' in result.output
    outbox = (tmp_path / "sms-outbox.jsonl").read_text(encoding="utf-8")
    assert outbox.count(PARENT) == 2
    bad = CliRunner().invoke(app, ["portal", "remind", "--db", db, "--today", "10/01/2025"])
    assert bad.exit_code == 2


def test_the_vaccinations_page_shows_the_profile_shown(world: World) -> None:
    guardian(world, PARENT)
    client = sign_in(world, PARENT)
    home = client.get("/portal").text
    client.post("/portal/profile", data={"csrf": csrf_of(home), "patient": "p-be"})
    page = client.get("/portal/vaccinations")
    assert page.status_code == 200 and "Đỗ Minh Châu" in page.text
    assert "Tiêm chủng mở rộng" in page.text and "Đến lịch tiêm" in page.text
    assert "Bạn tự khai, chờ trạm y tế xác nhận" in page.text  # the declared birth dose
    assert "Cơ sở y tế ghi nhận" in page.text  # the BCG recorded at a facility
    assert "Tim bẩm sinh" not in page.text
    english = client.get("/portal/vaccinations?lang=en")
    assert "Due now" in english.text and "5-in-1" in english.text
    # another citizen, even naming the child in the profile cookie, sees their own (nothing)
    stranger = sign_in(world, OTHER)
    stranger.cookies.set("sokhoe_profile", "p-be")
    theirs = stranger.get("/portal/vaccinations")
    assert "Châu" not in theirs.text and theirs.status_code == 404
    assert (
        TestClient(world.app, base_url=BASE)
        .get("/portal/vaccinations", follow_redirects=False)
        .status_code
        == 303
    )
