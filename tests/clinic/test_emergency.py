"""The unidentified emergency patient: a temporary record at the desk, the emergency visit on
it, and the doctor who later joins it to the person's own record — and every way that join
must be refused."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from sokhoe.clinic.emergency import FEATURES, UNIDENTIFIED
from sokhoe.mpi.identifiers import mrn_system
from tests.clinic.clinic_world import QR, A, World, make_world
from tests.clinic.test_pages import csrf_of, signed_in, start_visit
from tests.conftest import BASE


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, BASE)


def _count(world: World, resource_type: str) -> int:
    query = world.platform.parse_query(resource_type, [("_summary", "count")])
    return world.platform.search(query).total or 0


def _register(world: World, client: TestClient, **form: str) -> str:
    """Register an unidentified patient from the desk; the emergency visit's id."""
    csrf = csrf_of(client.get("/clinic").text)
    data = {"csrf": csrf, "sex": "male", "age": "40", "room": world.rooms[1], **form}
    r = client.post("/clinic/emergency", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/clinic/visits/([^/]+)", r.headers["location"])
    assert found is not None
    return found.group(1)


def _temporary_id(world: World, eid: str) -> str:
    enc = world.platform.read("Encounter", eid).content or {}
    return str(enc["subject"]["reference"]).split("/")[1]


def test_the_desk_registers_an_unidentified_patient_who_is_called_first(world: World) -> None:
    with signed_in(world, "tieptan") as desk:
        start_visit(world, desk)  # someone already waiting
        eid = _register(world, desk, features="Áo khoác xanh, tìm thấy ở chợ Đồng Xuân")
        enc = world.platform.read("Encounter", eid).content or {}
        assert enc["class"]["code"] == "EMER" and enc["priority"]["coding"][0]["code"] == "EM"
        assert enc["status"] == "arrived"
        assert enc["location"][0]["location"]["reference"] == f"Location/{world.rooms[1]}"
        patient = world.platform.read("Patient", _temporary_id(world, eid)).content or {}
        assert UNIDENTIFIED["code"] in {t["code"] for t in patient["meta"]["tag"]}
        (ident,) = patient["identifier"]
        assert ident["use"] == "temp" and ident["system"] == mrn_system(A)
        assert re.fullmatch(r"CC-\d{4}-\d{4}-[0-9a-z]{4}", ident["value"])
        assert patient["name"][0]["use"] == "temp"
        assert patient["name"][0]["text"] == f"Chưa rõ danh tính {ident['value']}"
        year = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).year
        assert patient["gender"] == "male" and patient["birthDate"] == str(year - 40)
        assert patient["extension"] == [
            {"url": FEATURES, "valueString": "Áo khoác xanh, tìm thấy ở chợ Đồng Xuân"}
        ]
        desk_page = desk.get("/clinic").text
        nxt = re.search(r'id="next-patient"[^>]*href="/clinic/visits/([^"]+)"', desk_page)
        assert nxt is not None and nxt.group(1) == eid  # the emergency before the earlier one
        assert "Cấp cứu" in desk_page and ident["value"] in desk_page
        assert "Áo khoác xanh" in desk_page  # the list of people not yet identified
        assert f"/clinic/patients/{patient['id']}/identify" not in desk_page  # not the desk's job
        chart = desk.get(f"/clinic/patients/{patient['id']}").text
        assert "Hồ sơ tạm" in chart and 'id="identify"' not in chart
        # the desk sees who the person is and their visits; it is told clinical content is
        # not shown to it, never "no known allergies"
        assert 'id="not-clinical"' in chart and "Chưa ghi nhận dị ứng" not in chart
    with signed_in(world, "bs.an") as doctor:
        chart = doctor.get(f"/clinic/patients/{patient['id']}").text
        assert 'id="not-clinical"' not in chart and "Chưa ghi nhận dị ứng" in chart


@pytest.mark.parametrize(
    ("field", "value"),
    [("age", "bốn mươi"), ("age", "140"), ("sex", "robot"), ("room", "not-a-room")],
)
def test_a_bad_emergency_form_writes_nothing(world: World, field: str, value: str) -> None:
    with signed_in(world, "tieptan") as desk:
        before = (_count(world, "Patient"), _count(world, "Encounter"))
        csrf = csrf_of(desk.get("/clinic").text)
        data = {"csrf": csrf, "sex": "female", "age": "30", "room": world.rooms[0]}
        r = desk.post("/clinic/emergency", data={**data, field: value}, follow_redirects=False)
        assert r.status_code == 400 and "<html" in r.text
        assert (_count(world, "Patient"), _count(world, "Encounter")) == before


def _close(client: TestClient, eid: str) -> None:
    csrf = csrf_of(client.get("/clinic").text)
    form = {
        "csrf": csrf,
        "reason": "Bất tỉnh, được đưa đến từ chợ",
        "systolic": "90",
        "diastolic": "60",
        "pulse": "110",
        "dx0": "R55",
    }
    r = client.post(f"/clinic/visits/{eid}/close", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_a_doctor_identifies_the_patient_and_the_records_join(world: World) -> None:
    with signed_in(world, "bs.an") as doctor:
        eid = _register(world, doctor)
        temporary = _temporary_id(world, eid)
        _close(doctor, eid)
        chart = doctor.get(f"/clinic/patients/{temporary}").text
        assert 'id="identify"' in chart
        page = doctor.get(f"/clinic/patients/{temporary}/identify")
        assert page.status_code == 200 and "Xác định người bệnh" in page.text
        csrf = csrf_of(page.text)
        found = doctor.post(f"/clinic/patients/{temporary}/identify", data={"csrf": csrf, "q": QR})
        assert found.status_code == 200 and "Nguyễn Văn An" in found.text
        assert 'name="glass"' in found.text  # the person's record is not open to station A
        # without presence or an emergency reason the join is refused, and nothing changes
        url = f"/clinic/patients/{temporary}/identify/join"
        refused = doctor.post(url, data={"csrf": csrf, "person": world.patient_id})
        assert refused.status_code == 403
        assert (world.platform.read("Patient", temporary).content or {})["active"] is True
        short = doctor.post(url, data={"csrf": csrf, "person": world.patient_id, "glass": "gấp"})
        assert short.status_code == 422
        joined = doctor.post(
            url,
            data={
                "csrf": csrf,
                "person": world.patient_id,
                "reason": "Vợ mang căn cước đến",
                "glass": "Bệnh nhân bất tỉnh, cần tiền sử bệnh để cấp cứu",
            },
            follow_redirects=False,
        )
        assert joined.status_code == 303, joined.text
        assert joined.headers["location"] == f"/clinic/patients/{world.patient_id}"
        # the person's chart shows the emergency visit and the history from hospital B
        chart = doctor.get(f"/clinic/patients/{world.patient_id}").text
        assert "Bất tỉnh, được đưa đến từ chợ" in chart
        assert "Bệnh viện Đa khoa Đống Đa" in chart
        old = doctor.get(f"/clinic/patients/{temporary}").text
        assert 'id="merged"' in old and f'href="/clinic/patients/{world.patient_id}"' in old
        assert temporary not in doctor.get("/clinic").text  # identified: off the desk's list
    repo = world.platform
    source = repo.read("Patient", temporary).content or {}
    assert source["active"] is False
    assert source["link"] == [{"other": {"reference": "Patient/p-an"}, "type": "replaced-by"}]
    target = repo.read("Patient", world.patient_id).content or {}
    assert {"other": {"reference": f"Patient/{temporary}"}, "type": "replaces"} in target["link"]
    query = repo.parse_query("Provenance", [("target", f"Patient/{temporary}")])
    (merge,) = [m.content for m in repo.search(query).matches if m.content]
    assert merge["activity"]["coding"][0]["code"] == "merge"
    assert "Vợ mang căn cước đến" in merge["reason"][0]["text"]
    events, _ = world.app.state.auditor.for_patient([world.patient_id], 200)
    assert any(e["type"]["code"] == "rest" and "break-the-glass" in str(e) for e in events)


def test_only_a_doctor_joins_only_a_temporary_record(world: World) -> None:
    with signed_in(world, "tieptan") as desk:
        eid = _register(world, desk)
        temporary = _temporary_id(world, eid)
        assert desk.get(f"/clinic/patients/{temporary}/identify").status_code == 403
        csrf = csrf_of(desk.get("/clinic").text)
        r = desk.post(
            f"/clinic/patients/{temporary}/identify/join",
            data={"csrf": csrf, "person": world.patient_id, "glass": "x" * 20},
        )
        assert r.status_code == 403
    with signed_in(world, "bs.an") as doctor:
        csrf = csrf_of(doctor.get("/clinic").text)
        # a real person's record cannot be "identified" into another record
        real = doctor.get(f"/clinic/patients/{world.patient_id}/identify")
        assert real.status_code == 403
        # two unidentified people are not the same person
        other = _temporary_id(world, _register(world, doctor, sex="female", age="25"))
        r = doctor.post(
            f"/clinic/patients/{temporary}/identify/join",
            data={"csrf": csrf, "person": other},
        )
        assert r.status_code == 400
    with signed_in(world, "bs.b") as stranger:  # another facility's doctor
        csrf = csrf_of(stranger.get("/clinic").text)
        assert stranger.get(f"/clinic/patients/{temporary}/identify").status_code == 403
        r = stranger.post(
            f"/clinic/patients/{temporary}/identify/join",
            data={"csrf": csrf, "person": world.patient_id, "glass": "Cấp cứu, cần mở hồ sơ"},
        )
        assert r.status_code in (403, 404)
        assert temporary not in stranger.get("/clinic").text
    for pid in (temporary, other):
        content = world.platform.read("Patient", pid).content or {}
        assert content["active"] is True and "link" not in content
