"""The clinic pages' demo (``make run``) on a small demo population: a commune station and a
regional centre with rooms, staff and today's list, each list seen over HTTP by its own
facility's staff only; a second start the same day adds nothing, a start on the next day makes
that day's list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from sokhoe.access.accounts import account
from sokhoe.access.guard import GuardedRepository
from sokhoe.bootstrap import demo_clinic, demo_portal
from sokhoe.clinic.bank import bank_account
from sokhoe.clinic.certificates import is_development, load_pkcs12
from sokhoe.clinic.demo import DEMO_BANK, HOSPITAL, SITES, STATION, ClinicDemo, ensure_clinic_demo
from sokhoe.config import Settings
from sokhoe.demo import write_demo
from sokhoe.fhir.references import reference_id
from sokhoe.interop.claims.sources import VIETNAM_TZ, encounters_on, find_facility
from sokhoe.interop.load import load_paths
from sokhoe.mpi.identifiers import BHYT
from sokhoe.prescribing.demo import PHARMACIST, ensure_pharmacy_demo
from sokhoe.registry.facilities import LEVEL_SYSTEM
from sokhoe.registry.places import ward_by_code
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.prescribing_schema import prescription_outbox
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS

PEOPLE, SEED = 60, 3


@dataclass
class Demo:
    app: FastAPI
    folder: Path
    text: str
    first: dict[str, int]
    """Each site's visits today after the first start."""
    again: ClinicDemo
    """The second start, the same day."""

    @property
    def platform(self) -> GuardedRepository:
        repo: GuardedRepository = self.app.state.repository
        return repo

    @property
    def password(self) -> str:
        return (self.folder / "demo-password.txt").read_text(encoding="utf-8").strip()

    def today(self) -> datetime:
        return self.platform.clock().astimezone(VIETNAM_TZ)

    def visits(self, code: str, day: datetime | None = None) -> list[dict[str, Any]]:
        facility = find_facility(self.platform, code)
        return encounters_on(self.platform, facility, (day or self.today()).date())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("clinic-demo")
    db = f"sqlite:///{folder / 'demo.db'}"
    store = SqlStore(db)
    app = create_app(
        Settings(**FAST_PASSWORDS, base_url=BASE, database_url=db, var_dir=folder), store
    )
    repo: GuardedRepository = app.state.repository
    write_demo(folder / "demo", PEOPLE, SEED, "bundles")
    assert load_paths(repo, [folder / "demo"], workers=0).errors == []
    engine = app.state.tokens.engine
    text = demo_clinic(repo, engine, BASE, folder, folder / "p12", hasher=FAST_HASHER)
    text += "\n" + demo_portal(repo, engine, BASE, folder)
    first = ensure_clinic_demo(
        repo, engine, "unused-password", hasher=FAST_HASHER
    )  # counts only: all made
    password = (folder / "demo-password.txt").read_text(encoding="utf-8").strip()
    again = ensure_clinic_demo(repo, engine, password, hasher=FAST_HASHER)
    yield Demo(app, folder, text, {s.site.key: s.queued for s in first.sites}, again)
    store.close()


def _code(demo: Demo, key: str) -> str:
    """The facility code of a site: the one its receptionist's account names."""
    site = next(s for s in SITES if s.key == key)
    staff = account(demo.app.state.tokens.engine, site.staff[0][0])
    assert staff is not None and staff.facility is not None
    return staff.facility


def signed_in(demo: Demo, username: str) -> TestClient:
    c = TestClient(demo.app, base_url=BASE)
    r = c.post(
        "/clinic/sign-in",
        data={"username": username, "password": demo.password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _rooms_on_page(html: str) -> dict[str, set[str]]:
    """Encounter ids listed under each room heading of the queue page."""
    queue = html[html.index('id="queue-title"') :]
    sections = re.split(r"<h2>([^<]+)</h2>", queue)[1:]
    return {
        name.strip(): set(re.findall(r'href="/clinic/visits/([^"]+)"', body))
        for name, body in zip(sections[::2], sections[1::2], strict=True)
    }


def _room_names(demo: Demo, visits: list[dict[str, Any]]) -> dict[str, str]:
    """Encounter id -> the name of its room."""
    out = {}
    for enc in visits:
        room = reference_id(enc["location"][0]["location"], "Location")
        out[str(enc["id"])] = str(demo.platform.read("Location", str(room)).content["name"])  # type: ignore[index]
    return out


def test_the_printed_text_says_where_and_how_to_sign_in(demo: Demo) -> None:
    assert f"{BASE}/clinic" in demo.text and demo.password in demo.text
    for site in SITES:
        facility = find_facility(demo.platform, _code(demo, site.key))
        assert facility.name in demo.text
        for username, role, name in site.staff:
            assert re.search(rf"{re.escape(username)}\s+{role}\s+{re.escape(name)}", demo.text)
    assert "authenticator" in demo.text and "sokhoe user totp" in demo.text


def test_a_station_and_a_regional_centre_each_with_rooms_and_a_list_of_today(
    demo: Demo,
) -> None:
    for site in SITES:
        code = _code(demo, site.key)
        org = demo.platform.read("Organization", find_facility(demo.platform, code).id).content
        levels = [
            c["code"] for t in org["type"] for c in t["coding"] if c["system"] == LEVEL_SYSTEM
        ]  # type: ignore[index]
        assert levels == [site.level]
        visits = demo.visits(code)
        assert 6 <= len(visits) <= 8, site.key
        assert {v["status"] for v in visits} == {"arrived", "in-progress"}
        rooms = _room_names(demo, visits)
        assert set(rooms.values()) <= set(site.rooms) and len(set(rooms.values())) >= 2
        for enc in visits:  # the payer is what the person's card says
            patient = demo.platform.read("Patient", str(reference_id(enc["subject"], "Patient")))
            day = demo.today().date().isoformat()
            insured = any(
                i["system"] == BHYT and i["period"]["start"] <= day <= i["period"]["end"]
                for i in (patient.content or {})["identifier"]
                if "period" in i
            )
            payer = enc["extension"][0]["valueCode"]
            assert payer == ("insurance" if insured else "self-pay")
            assert enc["subject"]["display"] and enc.get("reasonCode")
    station = {reference_id(v["subject"], "Patient") for v in demo.visits(_code(demo, "tram"))}
    centre = {reference_id(v["subject"], "Patient") for v in demo.visits(_code(demo, "khuvuc"))}
    assert not station & centre  # nobody is in both lists


def test_a_second_start_the_same_day_adds_nothing(demo: Demo) -> None:
    assert all(s.added == 0 for s in demo.again.sites)
    assert {s.site.key: s.queued for s in demo.again.sites} == demo.first


def test_the_station_desk_and_the_centre_doctor_see_their_own_list(demo: Demo) -> None:
    station = demo.visits(_code(demo, STATION.key))
    centre = demo.visits(_code(demo, HOSPITAL.key))
    for username, mine, other in (
        (STATION.staff[0][0], station, centre),  # the receptionist
        (HOSPITAL.staff[-1][0], centre, station),  # the doctor
    ):
        with signed_in(demo, username) as c:
            page = c.get("/clinic")
            assert page.status_code == 200, page.text
            shown = _rooms_on_page(page.text)
            expected: dict[str, set[str]] = {}
            for eid, room in _room_names(demo, mine).items():
                expected.setdefault(room, set()).add(eid)
            assert shown == expected
            for enc in mine:
                assert enc["subject"]["display"] in page.text
            assert not {str(e["id"]) for e in other} & set().union(*shown.values())
            assert c.get(f"/clinic/visits/{other[0]['id']}").status_code == 404


def test_the_station_staff_do_not_see_the_centre_list(demo: Demo) -> None:
    centre = {str(e["id"]) for e in demo.visits(_code(demo, HOSPITAL.key))}
    centre_name = find_facility(demo.platform, _code(demo, HOSPITAL.key)).name
    for username, _, _ in STATION.staff:
        with signed_in(demo, username) as c:
            page = c.get("/clinic").text
            assert not any(eid in page for eid in centre)
            assert centre_name not in page


def test_the_desk_checks_a_walk_in_in_and_the_demo_leaves_the_list_alone(demo: Demo) -> None:
    """The receptionist's own check-in works with the role's scopes; a restart then adds
    nothing on top."""
    code = _code(demo, STATION.key)
    before = demo.visits(code)
    in_list = {reference_id(v["subject"], "Patient") for v in before}
    walk_in = next(
        p.content
        for p in demo.platform.search(
            demo.platform.parse_query("Patient", [("_count", "50")])
        ).matches
        if p.content is not None and p.id not in in_list and not p.content.get("link")
    )
    cccd = next(i["value"] for i in walk_in["identifier"] if i["system"].endswith("/cccd"))
    with signed_in(demo, STATION.staff[0][0]) as c:
        csrf = _csrf(c.get("/clinic").text)
        found = c.post("/clinic/check-in", data={"q": cccd, "csrf": csrf})
        assert found.status_code == 200, found.text
        form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', found.text))
        room = re.search(r'<option value="([^"]+)">', found.text)
        assert room is not None and form["patient"] == walk_in["id"]
        started = c.post(
            "/clinic/visits",
            data={**form, "payer": "self-pay", "room": room.group(1)},
            follow_redirects=False,
        )
        assert started.status_code == 303, started.text
    assert len(demo.visits(code)) == len(before) + 1
    again = ensure_clinic_demo(
        demo.platform, demo.app.state.tokens.engine, demo.password, hasher=FAST_HASHER
    )
    assert sum(s.added for s in again.sites) == 0
    assert len(demo.visits(code)) == len(before) + 1


def test_a_start_on_the_next_day_makes_that_day_s_list(demo: Demo) -> None:
    today = {s.site.key: s.queued for s in demo.again.sites}
    tomorrow = (demo.today() + timedelta(days=1)).replace(hour=9, minute=30)
    engine = demo.app.state.tokens.engine
    first = ensure_clinic_demo(
        demo.platform, engine, demo.password, now=tomorrow, hasher=FAST_HASHER
    )
    assert first.day == tomorrow.date()
    for made in first.sites:
        assert 6 <= made.added == made.queued <= 8
        visits = demo.visits(made.facility.code, tomorrow)
        assert all(
            datetime.fromisoformat(v["period"]["start"].replace("Z", "+00:00")) < tomorrow
            for v in visits
        )
    second = ensure_clinic_demo(
        demo.platform, engine, demo.password, now=tomorrow, hasher=FAST_HASHER
    )
    assert [s.queued for s in second.sites] == [s.queued for s in first.sites]
    assert all(s.added == 0 for s in second.sites)
    for key, count in today.items():  # today's lists are as they were
        assert len(demo.visits(_code(demo, key))) >= count


def test_demo_signers_have_development_certificates_and_facilities_a_bank_account(
    demo: Demo,
) -> None:
    made = sorted(p.stem for p in (demo.folder / "p12").glob("*.p12"))
    assert made == ["bs.khuvuc", "bs.tram", "dd.khuvuc", "dd.tram"]
    credential = load_pkcs12(demo.folder / "p12" / "bs.tram.p12", demo.password)
    assert is_development(credential.certificate)
    for key in ("tram", "khuvuc"):
        org = find_facility(demo.platform, _code(demo, key))
        assert bank_account(demo.platform.read("Organization", org.id).content) == DEMO_BANK


def test_a_pharmacy_near_the_station_with_prescriptions_to_dispense(demo: Demo) -> None:
    assert "/pharmacy" in demo.text and PHARMACIST[0] in demo.text
    codes = re.findall(r"\b\d{5}[0-9a-z]{7}-[CNH]\b", demo.text)
    assert codes, demo.text  # the day's prescriptions, printed to try at the counter
    station = _code(demo, "tram")
    assert all(c.startswith(station) for c in codes)
    again = ensure_pharmacy_demo(
        demo.platform,
        demo.app.state.tokens.engine,
        demo.password,
        find_facility(demo.platform, station),
        STATION.staff[-1][0],
        demo.today(),
        hasher=FAST_HASHER,
    )
    assert sorted(again.prescriptions) == sorted(codes)  # a second start issues nothing new
    # the demo doctor is a Practitioner with a practising certificate: what they prescribe is
    # queued for the national prescription system under their name
    with demo.app.state.tokens.engine.connect() as conn:
        queued = conn.execute(
            select(prescription_outbox.c.code, prescription_outbox.c.practitioner)
        ).all()
    assert {c.upper() for c in codes} <= {row.code.upper() for row in queued}
    assert all(row.practitioner and row.practitioner.endswith("-CCHN") for row in queued)
    with TestClient(demo.app, base_url=BASE) as ds:
        r = ds.post(
            "/clinic/sign-in",
            data={"username": PHARMACIST[0], "password": demo.password},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/pharmacy"
        page = ds.get("/pharmacy", params={"code": codes[0]})
        assert page.status_code == 200 and "Chưa bán" in page.text


def test_the_portal_demo_prints_a_ward_qr_and_a_parent_who_sees_their_child(demo: Demo) -> None:
    """``make run``'s portal lines: the ward of the demo station, the outbox, and a parent's
    phone that signs in and finds their child among the profiles (and no one else does)."""
    ward = re.search(rf"{re.escape(BASE)}/portal/w/(\d{{5}})", demo.text)
    assert ward is not None, demo.text
    station = find_facility(demo.platform, _code(demo, STATION.key))
    org = demo.platform.read("Organization", station.id).content or {}
    unit = ward_by_code(ward.group(1))
    assert unit is not None and unit[0].name == org["address"][0]["city"]
    assert f"sokhoe portal ward-qr --ward {ward.group(1)}" in demo.text
    outbox = demo.folder / "sms-outbox.jsonl"
    assert f"read them in {outbox}" in demo.text
    found = re.search(r"a parent: (.+?), phone (\d{10}):.*their child (.+?) \(born", demo.text)
    assert found is not None, demo.text
    parent, phone, child = found.groups()
    with TestClient(demo.app, base_url=BASE) as c:
        landing = c.get(ward.group(0).replace(BASE, ""))
        assert landing.status_code == 200 and unit[0].name in landing.text
        home = _portal_sign_in(c, demo, phone)
        assert parent in home and child in home  # their own book and the child's to switch to
        kid = re.search(r'name="patient" value="([^"]+)"[^>]*>' + re.escape(child), home)
        assert kid is not None
        csrf = re.search(r'name="csrf" value="([^"]+)"', home)
        assert csrf is not None
        switched = c.post("/portal/profile", data={"csrf": csrf.group(1), "patient": kid.group(1)})
        assert switched.status_code == 200 and f"<h1>{child}</h1>" in switched.text
    with TestClient(demo.app, base_url=BASE) as stranger:  # another phone: no such child
        other = _portal_sign_in(stranger, demo, "0987000111")
        assert child not in other
        stranger.cookies.set("sokhoe_profile", kid.group(1), path="/portal")
        assert child not in stranger.get("/portal").text
    again = demo_portal(demo.platform, demo.app.state.tokens.engine, BASE, demo.folder)
    assert again in demo.text  # a second start makes no second child nor link
    related = demo.platform.search(demo.platform.parse_query("RelatedPerson", []))
    assert len(related.matches) == 1


def _portal_sign_in(client: TestClient, demo: Demo, phone: str) -> str:
    """Sign ``phone`` in through the portal's pages, reading the code from the SMS outbox;
    the home page's HTML."""
    page = client.post("/portal/sign-in", data={"phone": phone, "next": "/portal"})
    challenge = re.search(r'name="challenge" value="([^"]*)"', page.text)
    assert page.status_code == 200 and challenge is not None, page.text
    sent = (demo.folder / "sms-outbox.jsonl").read_text(encoding="utf-8").splitlines()
    code = re.search(r"\b(\d{6})\b", json.loads(sent[-1])["text"])
    assert code is not None and json.loads(sent[-1])["to"].endswith(phone[-9:])
    form = {"phone": phone, "code": code.group(1), "challenge": challenge.group(1)}
    home = client.post("/portal/verify", data=form)
    assert home.status_code == 200, home.text
    return home.text
