"""Who looked at my record: the audit chain in plain Vietnamese, the SMS on break-the-glass
(once), reporting a concern as a review Task the facility finds, and the attacks: another
citizen, a forged profile cookie, guessed event numbers, a form without CSRF."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sokhoe.access.glass import openings
from sokhoe.access.sms import MemoryGateway
from sokhoe.errors import Forbidden
from sokhoe.portal.glass_alerts import build_alerts
from sokhoe.web.i18n import LOCAL_TIME
from tests.clinic.clinic_world import PHONE, World, make_world
from tests.conftest import BASE
from tests.portal.portal_world import csrf_of, sign_in
from tests.portal.privacy_world import (
    GUARDIAN,
    REASON,
    STRANGER,
    cards,
    child_with_guardian,
    facility_system,
    link,
    main_of,
    person,
    staff,
    tasks,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    made = make_world(tmp_path, BASE)
    link(made)
    return made


def _glass(world: World, patient_id: str = "p-an") -> int:
    """bs.c (Bệnh viện Tim, never saw the person) breaks the glass and reads twice, as a
    system sending its reason with every request would; the opening's audit seq."""
    door = staff(world, "bs.c", glass=REASON)
    door.read("Patient", patient_id)
    if patient_id == "p-an":
        door.read("Observation", "glu-b")
    since = door.clock() - timedelta(hours=1)
    found = [o for o in openings(world.platform.auditor, since) if o.patient_id == patient_id]
    assert len(found) == 1  # two or three alerts, one opening
    return found[0].seq


def test_a_clinic_doctors_reading_in_plain_vietnamese(world: World) -> None:
    staff(world, "bs.b").read("Observation", "glu-b")
    citizen = sign_in(world, PHONE)
    page = citizen.get("/portal/access-log")
    assert page.status_code == 200
    first = cards(page.text)[0]
    assert "BS. Phạm Văn Dũng" in first and "(bác sĩ)" in first
    assert "Bệnh viện Đa khoa Đống Đa" in first and "01002" not in first
    assert "Xem kết quả xét nghiệm, chỉ số sức khỏe" in first
    assert "Khám, chữa bệnh tại cơ sở" in first
    # when: the day as a heading and the time, in Vietnam's time
    stamp = re.search(r'<time datetime="([^"]+)">(\d\d:\d\d)</time>', first)
    assert stamp is not None
    local = datetime.fromisoformat(stamp.group(1)).astimezone(LOCAL_TIME)
    assert stamp.group(2) == local.strftime("%H:%M")
    heading = f'<h2 id="d-1">Hôm nay, {local.strftime("%d/%m/%Y")}</h2>'
    assert heading in main_of(page.text)
    # the citizen's own views are left out: reading the page again adds no row
    total = len(cards(citizen.get("/portal/access-log").text))
    assert total == len(cards(page.text)) and PHONE not in page.text
    english = citizen.get("/portal/access-log?lang=en").text
    assert "(doctor)" in english and "Viewed results and measurements" in english


def test_break_the_glass_is_highlighted_and_texted_once(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child_with_guardian(world)
    seq = _glass(world)
    child_seq = _glass(world, "p-be")
    gateway = MemoryGateway()
    alerts = build_alerts(world.settings, world.app.state.store, gateway)
    report = alerts.run_once()
    assert (report.openings, report.sent) == (2, 2)
    texts = dict(gateway.sent)
    assert set(texts) == {PHONE, GUARDIAN}
    own = texts[PHONE]
    assert "Bệnh viện Tim Hà Nội" in own and "hồ sơ sức khỏe của bạn" in own
    assert re.search(r"lúc \d\d:\d\d ngày \d\d/\d\d/\d{4}", own)
    # which facility and when, never what was seen or why (a lock screen shows it)
    for word in ("Glucose", "glu-b", "xét nghiệm", "hôn mê", "BS."):
        assert word not in own
    assert "Nguyễn Minh Khang" in texts[GUARDIAN]
    # the notifier again, and the command apart (another process): nothing twice
    assert alerts.run_once().sent == 0
    monkeypatch.setenv("SOKHOE_VAR_DIR", str(tmp_path / "cli"))
    from sokhoe.cli import app

    ran = CliRunner().invoke(
        app, ["audit", "glass-alerts", "--once", "--db", world.settings.database_url]
    )
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output.strip().splitlines()[-1])["sent"] == 0
    assert not (tmp_path / "cli" / "sms-outbox.jsonl").exists()
    assert len(gateway.sent) == 2
    # the page highlights it with the clinician's reason
    citizen = sign_in(world, PHONE)
    found = [c for c in cards(citizen.get("/portal/access-log").text) if f'id="a-{seq}"' in c]
    assert len(found) == 1 and 'class="card access alert"' in found[0]
    assert "hồ sơ được mở khẩn cấp (phá kính)" in found[0]
    assert f"Cấp cứu — phá kính: {REASON}" in found[0]
    assert "BS. Hoàng Thị Em" in found[0] and "Bệnh viện Tim Hà Nội" in found[0]
    assert child_seq != seq


def test_a_gateway_failure_is_tried_again_next_round(world: World) -> None:
    _glass(world)

    class Down(MemoryGateway):
        def send(self, phone: str, text: str) -> None:
            from sokhoe.access.sms import SmsDeliveryError

            raise SmsDeliveryError("gateway down")

    assert build_alerts(world.settings, world.app.state.store, Down()).run_once().sent == 0
    later = MemoryGateway()
    assert build_alerts(world.settings, world.app.state.store, later).run_once().sent == 1
    assert [p for p, _ in later.sent] == [PHONE]


def test_a_citizen_never_sees_another_persons_access_log(world: World) -> None:
    staff(world, "bs.b").read("Observation", "glu-b")
    seq = _glass(world)
    person(world, "p-binh", ("Trần", "Thị Bình"), "1990-02-02")
    link(world, STRANGER, "p-binh")
    stranger = sign_in(world, STRANGER)
    for forged in (None, "p-an"):
        if forged:
            stranger.cookies.set("sokhoe_profile", forged, path="/portal")
        page = stranger.get("/portal/access-log").text
        for word in ("Phạm Văn Dũng", "Hoàng Thị Em", "Bệnh viện Tim", REASON):
            assert word not in page
    # guessing the number of An's events: not found, and no Task is opened
    assert stranger.get(f"/portal/access-log/{seq}/concern").status_code == 404
    csrf = csrf_of(stranger.get("/portal/access-log").text)
    sent = stranger.post(
        f"/portal/access-log/{seq}/concern", data={"csrf": csrf, "text": "Ai đây?"}
    )
    assert sent.status_code == 404 and REASON not in sent.text
    assert tasks(world) == []
    for path in ("/portal/access-log/abc/concern", "/portal/access-log/99999/concern"):
        assert stranger.get(path).status_code == 404
    assert stranger.get("/portal/access-log?page=abc").status_code == 200
    # a phone linked to no record sees no log at all
    nobody = sign_in(world, "0933000999")
    assert "chưa gắn với hồ sơ sức khỏe nào" in nobody.get("/portal/access-log").text


def test_a_concern_opens_a_review_task_the_facility_finds_and_answers(world: World) -> None:
    seq = _glass(world)
    citizen = sign_in(world, PHONE)
    form = citizen.get(f"/portal/access-log/{seq}/concern")
    assert form.status_code == 200 and "Bệnh viện Tim Hà Nội" in form.text
    csrf = csrf_of(form.text)
    url = f"/portal/access-log/{seq}/concern"
    words = "Tôi không đi cấp cứu hôm đó, ai đã mở hồ sơ của tôi?"
    assert citizen.post(url, data={"text": words}).status_code == 403  # no CSRF token
    empty = citizen.post(url, data={"csrf": csrf, "text": "   "})
    assert empty.status_code == 400 and "Hãy viết điều bạn thấy bất thường" in empty.text
    assert tasks(world) == []
    done = citizen.post(url, data={"csrf": csrf, "text": words}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == url
    again = citizen.post(url, data={"csrf": csrf, "text": words})
    assert again.status_code == 409 and "Bạn đã báo về lần xem này" in again.text
    [task] = tasks(world)
    assert task["status"] == "requested" and task["description"] == words
    assert task["focus"] == {"reference": f"AuditEvent/{seq}"}
    assert task["for"] == {"reference": "Patient/p-an"}
    assert task["requester"] == {"reference": "Patient/p-an"}
    assert task["owner"]["reference"] == "Organization/org-01003"
    assert "BS. Hoàng Thị Em" in task["input"][0]["valueString"]
    # the facility's system finds it by owner, though the facility has no relationship with
    # the person (only the doctor who broke the glass had, for a shift)
    his_c = facility_system(world, "01003")
    query = his_c.parse_query(
        "Task",
        [
            ("owner", "Organization/org-01003"),
            ("code", "https://fhir.sokhoe.vn/CodeSystem/access-concern|access-concern"),
        ],
    )
    assert [t.id for t in his_c.search(query).matches] == [task["id"]]
    with pytest.raises(Forbidden):
        his_c.read("Patient", "p-an")
    stranger_facility = facility_system(world, "01001")
    assert stranger_facility.search(query).matches == []
    forged = {**task, "id": "forged", "description": "Không có gì bất thường"}
    forged.pop("meta", None)
    with pytest.raises(Forbidden):  # only $report-concern opens one
        his_c.update(forged, "Task", "forged")
    # it records its answer (the state only) and the citizen reads it
    answered = {
        **task,
        "status": "completed",
        "note": [{"text": "Bác sĩ trực cấp cứu đã mở nhầm hồ sơ; đã nhắc nhở."}],
    }
    answered.pop("meta", None)
    with pytest.raises(Forbidden):
        his_c.update({**answered, "description": "Không có gì"}, "Task", task["id"])
    with pytest.raises(Forbidden):  # another facility, though it treats the person
        facility_system(world, "01002").update(answered, "Task", task["id"])
    his_c.update(answered, "Task", task["id"])
    shown = citizen.get(url).text
    assert "Cơ sở đã trả lời" in shown and "đã nhắc nhở" in shown
    listed = [c for c in cards(citizen.get("/portal/access-log").text) if f"a-{seq}" in c]
    assert "Cơ sở đã trả lời" in listed[0]


def test_a_guardian_reads_the_childs_log_and_reports_for_the_child(world: World) -> None:
    child = child_with_guardian(world)
    seq = _glass(world, child)
    mother = sign_in(world, GUARDIAN)
    home = mother.get("/portal").text
    mother.post("/portal/profile", data={"csrf": csrf_of(home), "patient": child})
    page = mother.get("/portal/access-log").text
    assert f'id="a-{seq}"' in page and "Bệnh viện Tim Hà Nội" in page
    csrf = csrf_of(page)
    mother.post(f"/portal/access-log/{seq}/concern", data={"csrf": csrf, "text": "Con tôi khỏe"})
    [task] = tasks(world)
    assert task["for"] == {"reference": f"Patient/{child}"}
    assert task["requester"]["identifier"]["value"] == GUARDIAN
    # An (not the child's guardian) finds nothing of it
    an = sign_in(world, PHONE)
    assert an.get(f"/portal/access-log/{seq}/concern").status_code == 404


def test_the_log_is_paged_newest_first(world: World) -> None:
    from sokhoe.access.otp import citizen_principal
    from sokhoe.portal.access_log import PER_PAGE, access_log

    doctor = staff(world, "bs.b")
    for _ in range(PER_PAGE + 3):
        doctor.read("Observation", "glu-b")
    me = world.platform.for_caller(citizen_principal(PHONE, "p-an"), audit_reads=True)
    first, second = access_log(me, "p-an", 1), access_log(me, "p-an", 2)
    assert first.total == second.total > PER_PAGE and first.pages == second.pages == 2
    seqs = [a.seq for d in first.days for a in d.accesses]
    rest = [a.seq for d in second.days for a in d.accesses]
    assert len(seqs) == PER_PAGE and len(rest) == first.total - PER_PAGE
    assert seqs + rest == sorted(seqs + rest, reverse=True)
    citizen = sign_in(world, PHONE)
    page = citizen.get("/portal/access-log").text
    assert "Trang 1/2" in page and 'href="/portal/access-log?page=2"' in page
    assert len(cards(citizen.get("/portal/access-log?page=2").text)) == len(rest)
