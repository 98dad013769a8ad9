"""Sharing and privacy: a share code made in the portal is redeemed by a facility, then
withdrawn, and the facility loses access (the issue's Done-when, over HTTP end to end);
sensitive categories kept for the treating facility; every change audited through the door
and confirmed by SMS; and the attacks: no CSRF token, another citizen's consent, bad input."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.web.i18n import LOCAL_TIME
from tests.api_helpers import client_auth
from tests.clinic.clinic_world import PHONE, World, make_world
from tests.conftest import BASE
from tests.portal.portal_world import csrf_of, sign_in
from tests.portal.privacy_world import STRANGER, cards, link, main_of, person, staff

C = "01003"
"""Bệnh viện Tim Hà Nội: has never seen An."""


@pytest.fixture
def world(tmp_path: Path) -> World:
    made = make_world(tmp_path, BASE)
    link(made)
    return made


def _sms(world: World, phone: str = PHONE) -> list[str]:
    import json

    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
    return [json.loads(x)["text"] for x in lines if json.loads(x)["to"].endswith(phone[-9:])]


def _consents(world: World, status: str | None = None) -> list[dict[str, Any]]:
    params = [("patient", "Patient/p-an")] + ([("status", status)] if status else [])
    query = world.platform.parse_query("Consent", params)
    return [m.content or {} for m in world.platform.search(query).matches]


def _make_code(citizen: TestClient, days: int = 7) -> tuple[str, str]:
    page = citizen.get("/portal/sharing")
    made = citizen.post("/portal/sharing/code", data={"csrf": csrf_of(page.text), "days": days})
    assert made.status_code == 200, made.text
    code = re.search(r'id="share-code">([A-Z0-9]{4}-[A-Z0-9]{4})<', made.text)
    assert code is not None
    # a full QR code (21 modules and the quiet zone at least), never a Micro QR
    box = re.search(r'<svg[^>]*viewBox="0 0 (\d+) (\d+)"', made.text)
    assert box is not None and int(box.group(1)) >= 29
    return code.group(1), made.text


def _redeem(api: TestClient, auth: dict[str, str], code: str) -> Any:
    body = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]}
    return api.post("/fhir/Patient/$redeem-share", json=body, headers=auth)


def _withdraw(citizen: TestClient, consent_id: str) -> Any:
    csrf = csrf_of(citizen.get("/portal/sharing").text)
    return citizen.post(
        "/portal/sharing/withdraw",
        data={"csrf": csrf, "consent": consent_id},
        follow_redirects=False,
    )


def test_a_share_code_is_redeemed_then_withdrawn_and_the_facility_loses_access(
    world: World,
) -> None:
    citizen = sign_in(world, PHONE)
    api = TestClient(world.app, base_url=BASE)
    his = client_auth(api, ["system/*.cruds"], C)
    assert api.get("/fhir/Patient/p-an", headers=his).status_code == 403
    code, page = _make_code(citizen, 7)
    assert "Mã chia sẻ của bạn" in page and "15 phút" in page
    confirmed = _sms(world)[-1]
    assert "mã chia sẻ" in confirmed and "7 ngày" in confirmed and code not in confirmed
    redeemed = _redeem(api, his, code)
    assert redeemed.status_code == 200, redeemed.text
    consent_id = redeemed.json()["id"]
    assert api.get("/fhir/Patient/p-an", headers=his).status_code == 200
    assert api.get("/fhir/Observation/glu-b", headers=his).status_code == 200
    found = api.get("/fhir/Observation?patient=Patient/p-an", headers=his).json()
    assert found["total"] == 1
    # the citizen sees who holds the permission, until when, and why it read the record
    sharing = main_of(citizen.get("/portal/sharing").text)
    until = (datetime.now(LOCAL_TIME) + timedelta(days=7)).strftime("%d/%m/%Y")
    assert "Bệnh viện Tim Hà Nội" in sharing and f"Được xem hồ sơ đến ngày {until}" in sharing
    log = cards(citizen.get("/portal/access-log").text)
    [refused] = [c for c in log if "Tim Hà Nội" in c and "Bị từ chối" in c]
    assert "Bị từ chối, không xem được gì" in refused  # its try before the code
    read = [c for c in log if "Tim Hà Nội" in c and c != refused]
    assert any("Nhập mã chia sẻ của bạn" in c for c in read)
    assert any("Xem kết quả xét nghiệm, chỉ số sức khỏe" in c for c in read)
    assert all("Hệ thống của Bệnh viện Tim Hà Nội" in c for c in read)
    assert all("Mã chia sẻ của bạn" in c for c in read)
    # withdrawn in the portal: the facility is refused at once
    done = _withdraw(citizen, consent_id)
    assert done.status_code == 303 and done.headers["location"] == "/portal/sharing?done=withdrawn"
    assert "Đã thu hồi" in citizen.get(done.headers["location"]).text
    assert "thu hồi" in _sms(world)[-1]
    assert api.get("/fhir/Patient/p-an", headers=his).status_code == 403
    assert api.get("/fhir/Observation/glu-b", headers=his).status_code == 403
    search = api.get("/fhir/Observation?patient=Patient/p-an", headers=his)
    assert search.status_code == 200 and search.json()["total"] == 0
    assert _consents(world, "active") == []
    # the earlier reads keep their reason; the withdrawal itself is in the audit chain
    later = [c for c in cards(citizen.get("/portal/access-log").text) if "Tim Hà Nội" in c]
    after, before = later[: -len(read) - 1], later[-len(read) - 1 :]
    assert before == [*read, refused]
    assert len(after) >= 2 and all("Bị từ chối, không xem được gì" in c for c in after)
    events, _ = world.platform.auditor.for_patient(["p-an"], 200)
    withdrawals = [
        e
        for e in events
        if any((x.get("what") or {}).get("reference") == "revoke-consent" for x in e["entity"])
    ]
    assert len(withdrawals) == 1
    assert withdrawals[0]["agent"][0]["who"]["identifier"]["value"] == PHONE
    assert "Bệnh viện Tim Hà Nội" not in main_of(citizen.get("/portal/sharing").text)


def test_an_unused_code_withdrawn_cannot_be_redeemed(world: World) -> None:
    citizen = sign_in(world, PHONE)
    code, _ = _make_code(citizen, 1)
    [waiting] = _consents(world, "proposed")
    assert "Mã đang chờ cơ sở nhập" in citizen.get("/portal/sharing").text
    assert _withdraw(citizen, waiting["id"]).status_code == 303
    api = TestClient(world.app, base_url=BASE)
    his = client_auth(api, ["system/*.cruds"], C)
    refused = _redeem(api, his, code)
    assert refused.status_code == 409 and "withdrew" in refused.text
    assert api.get("/fhir/Patient/p-an", headers=his).status_code == 403


def test_forms_without_csrf_or_from_another_citizen_change_nothing(world: World) -> None:
    citizen = sign_in(world, PHONE)
    no_token = citizen.post("/portal/sharing/code", data={"days": "7"})
    assert no_token.status_code == 403 and _consents(world) == []
    _make_code(citizen)
    [mine] = _consents(world, "proposed")
    assert citizen.post("/portal/sharing/withdraw", data={"consent": mine["id"]}).status_code == 403
    # another citizen names An's consent, with their own valid token and a forged profile
    person(world, "p-binh", ("Trần", "Thị Bình"), "1990-02-02")
    link(world, STRANGER, "p-binh")
    stranger = sign_in(world, STRANGER)
    stranger.cookies.set("sokhoe_profile", "p-an", path="/portal")
    page = stranger.get("/portal/sharing").text
    assert mine["id"] not in page
    tried = stranger.post(
        "/portal/sharing/withdraw", data={"csrf": csrf_of(page), "consent": mine["id"]}
    )
    assert tried.status_code == 400 and "hãy tải lại trang" in tried.text
    for path, form in (
        ("/portal/sharing/keep", {"category": "HIV"}),
        ("/portal/sharing/open", {"category": "HIV"}),
    ):
        stranger.post(path, data={"csrf": csrf_of(page), **form})
    assert [c["status"] for c in _consents(world)] == ["proposed"]
    # bad input: a length not offered, a category that does not exist
    csrf = csrf_of(citizen.get("/portal/sharing").text)
    for days in ("0", "400", "bảy", ""):
        bad = citizen.post("/portal/sharing/code", data={"csrf": csrf, "days": days})
        assert bad.status_code == 400 and "Hãy chọn số ngày" in bad.text
    odd = citizen.post("/portal/sharing/keep", data={"csrf": csrf, "category": "XYZ"})
    assert odd.status_code == 400
    assert len(_consents(world)) == 1


def _depression(world: World) -> None:
    """A depression diagnosis written at hospital B (labelled mental health on write)."""
    condition = {
        "resourceType": "Condition",
        "id": "dep-b",
        "subject": {"reference": "Patient/p-an"},
        "encounter": {"reference": "Encounter/enc-b"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.1"}]},
    }
    staff(world, "bs.b").update(condition, "Condition", "dep-b")


def test_mental_health_records_kept_for_the_treating_facility(world: World) -> None:
    _depression(world)
    citizen = sign_in(world, PHONE)
    api = TestClient(world.app, base_url=BASE)
    his = client_auth(api, ["system/*.cruds"], C)
    code, _ = _make_code(citizen, 30)
    assert _redeem(api, his, code).status_code == 200
    assert api.get("/fhir/Condition/dep-b", headers=his).status_code == 200
    page = citizen.get("/portal/sharing").text
    assert "Sức khỏe tâm thần" in page and "Bệnh viện Đa khoa Đống Đa" in page
    csrf = csrf_of(page)
    # only facilities that cared for the person may be named
    wrong = citizen.post(
        "/portal/sharing/keep", data={"csrf": csrf, "category": "PSY", "facility": C}
    )
    assert wrong.status_code == 400 and "Hãy chọn trong các cơ sở" in wrong.text
    assert api.get("/fhir/Condition/dep-b", headers=his).status_code == 200
    kept = citizen.post(
        "/portal/sharing/keep",
        data={"csrf": csrf, "category": "PSY", "facility": "01002"},
        follow_redirects=False,
    )
    assert kept.status_code == 303
    assert api.get("/fhir/Condition/dep-b", headers=his).status_code == 403
    assert api.get("/fhir/Observation/glu-b", headers=his).status_code == 200  # the rest stays
    assert staff(world, "bs.b").read("Condition", "dep-b").content is not None
    sms = _sms(world)[-1]
    assert "giữ kín" in sms and "tâm thần" not in sms and "HIV" not in sms
    shown = main_of(citizen.get("/portal/sharing").text)
    assert "Đang giữ kín" in shown
    # changed again (no facility named): one restriction stays, the record never opened
    csrf = csrf_of(citizen.get("/portal/sharing").text)
    citizen.post("/portal/sharing/keep", data={"csrf": csrf, "category": "PSY"})
    denies = [c for c in _consents(world, "active") if c["provision"]["type"] == "deny"]
    assert len(denies) == 1 and "provision" not in denies[0]["provision"]
    assert api.get("/fhir/Condition/dep-b", headers=his).status_code == 403
    opened = citizen.post("/portal/sharing/open", data={"csrf": csrf, "category": "PSY"})
    assert opened.status_code == 200 and "không còn được giữ kín" in opened.text
    assert api.get("/fhir/Condition/dep-b", headers=his).status_code == 200
