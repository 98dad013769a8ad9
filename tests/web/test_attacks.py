"""Every way into a record the access issue found open, tried again as an attacker would.

Facility B registered Bình (with her phone, a lab result and an HIV diagnosis); facility A
registered An. Each attack is made, over HTTP, by four callers of facility A's side — its
connected system, one of its doctors, one of its pharmacists — and by the citizen An; none of
them has any reason to see or change Bình's record. Each attack asserts that it was refused or
had no effect, and that nothing in the store changed (every version of every resource), on
SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.accounts import ROLE_SCOPES, create_user
from sokhoe.access.audit import AuditLog
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.otp import citizen_principal, link_citizen
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.interop.hl7v2.processor import Hl7Processor
from sokhoe.mpi.identifiers import CCCD, FACILITY
from sokhoe.mpi.links import TASK_CODE, queue_review
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS, module_store

pytestmark = pytest.mark.xdist_group("attacks")

A, B = "79001", "01002"
CCCD_X = "001301004567"
BHYT_X = "DN4010123456789"
QR_X = f"{CCCD_X}|Trần Thị Bình|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022"
QR_Y = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"
PHONE_X, PHONE_Y = "0987000111", "0912345678"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
PASSWORD = "mật-khẩu-dài-2026"
Headers = dict[str, str]


@dataclass
class World:
    api: TestClient
    store: SqlStore
    platform: Headers
    b: Headers
    callers: dict[str, Headers]
    ids: dict[str, str]

    def snapshot(self) -> tuple[int, list[tuple[str, str, int]]]:
        """Every version of every resource: an attack that changes anything changes this."""
        with self.store.begin() as tx:
            found, total = tx.history(None, None, None, 100_000, 0)
        return total, sorted((r.resource_type, r.id, r.version_id) for r in found)

    def each(self, attack: Callable[[Headers], Any], refused: tuple[int, ...] = (403,)) -> None:
        """Make ``attack`` as every caller; each must be refused and change nothing."""
        wrong = []
        for name, headers in self.callers.items():
            before = self.snapshot()
            r = attack(headers)
            if r.status_code not in refused:
                wrong.append(f"{name}: {r.status_code} {r.text[:300]}")
            if self.snapshot() != before:
                wrong.append(f"{name}: the store changed")
        assert not wrong, "\n".join(wrong)


def _bundle(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _params(**values: Any) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        name = name.replace("_", "-")
        if isinstance(value, dict):
            out.append({"name": name, "valueReference": value})
        else:
            out.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


def _obs(pid: str, value: float = 72) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "unit": "/min"},
    }


def _org(code: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY, "value": code}],
        "name": name,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("attacks")
    store = module_store(request, tmp, "attacks")
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url="sqlite://", var_dir=tmp)
    app = create_app(settings, store)
    with TestClient(app, base_url=BASE) as api:
        tokens: TokenService = app.state.tokens

        def bearer(p: Principal) -> Headers:
            return {"Authorization": f"Bearer {tokens.issue(p)[0]}"}

        def client(facility: str | None) -> Headers:
            new = create_client(tokens.engine, f"HIS {facility}", ["system/*.cruds"], facility)
            return bearer(authenticate_client(tokens.engine, new.client_id, new.client_secret))

        def staff(role: str) -> Headers:
            username = f"{role}.{A}"
            create_user(tokens.engine, username, PASSWORD, role, role, A, hasher=FAST_HASHER)
            p = Principal("staff", username, role, role, A, scopes=ROLE_SCOPES[role])
            return bearer(p)

        platform, a, b = client(None), client(A), client(B)
        ids: dict[str, str] = {}
        for code, name in ((A, "Bệnh viện A"), (B, "Bệnh viện B")):
            made = api.post("/fhir/Organization", json=_org(code, name), headers=platform)
            assert made.status_code == 201, made.text
            ids[f"org_{code}"] = made.json()["id"]
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "qr", "valueString": QR_X},
                {"name": "bhyt", "valueString": BHYT_X},
            ],
        }
        x = api.post("/fhir/Patient/$check-in", json=body, headers=b).json()
        x["telecom"] = [{"system": "phone", "value": PHONE_X, "use": "mobile"}]
        assert api.put(f"/fhir/Patient/{x['id']}", json=x, headers=b).status_code == 200
        ids["x"] = x["id"]
        ids["obs_x"] = api.post("/fhir/Observation", json=_obs(x["id"]), headers=b).json()["id"]
        hiv = {
            "resourceType": "Condition",
            "code": {"coding": [{"system": ICD10, "code": "B20"}]},
            "subject": {"reference": f"Patient/{x['id']}"},
        }
        ids["hiv_x"] = api.post("/fhir/Condition", json=hiv, headers=b).json()["id"]
        y = api.post(
            "/fhir/Patient/$check-in",
            json={"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": QR_Y}]},
            headers=a,
        ).json()
        ids["y"] = y["id"]
        ids["obs_y"] = api.post("/fhir/Observation", json=_obs(y["id"]), headers=a).json()["id"]
        link_citizen(tokens.engine, PHONE_X, x["id"])
        link_citizen(tokens.engine, PHONE_Y, y["id"])
        callers = {
            "facility A's system": a,
            "doctor of A": staff("doctor"),
            "pharmacist of A": staff("pharmacist"),
            "citizen An": bearer(citizen_principal(PHONE_Y, y["id"])),
        }
        yield World(api, store, platform, b, callers, ids)
    store.close()


# -- transactions --------------------------------------------------------------------------
def test_a_full_url_naming_an_existing_patient_does_not_switch_off_the_check(
    world: World,
) -> None:
    """``fullUrl: urn:uuid:<Bình's id>`` on a new Patient once made the guard skip the check
    of an Encounter about Bình: written at A, it would have opened her record to A."""
    x, org_a = world.ids["x"], world.ids[f"org_{A}"]
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{x}"},
        "serviceProvider": {"reference": f"Organization/{org_a}"},
    }
    bundle = _bundle(
        {
            "fullUrl": f"urn:uuid:{x}",
            "resource": {"resourceType": "Patient", "name": [{"family": "Giả"}]},
            "request": {"method": "POST", "url": "Patient"},
        },
        {"resource": encounter, "request": {"method": "POST", "url": "Encounter"}},
    )
    world.each(lambda h: world.api.post("/fhir", json=bundle, headers=h))
    a = world.callers["facility A's system"]
    assert world.api.get(f"/fhir/Observation/{world.ids['obs_x']}", headers=a).status_code == 403


def test_conditional_and_slashed_entries_are_decided_on_what_they_change(world: World) -> None:
    obs_x, y = world.ids["obs_x"], world.ids["y"]
    repointed = {**_obs(y, 1), "id": obs_x}
    attacks = [
        {"request": {"method": "PUT", "url": f"Observation?_id={obs_x}"}, "resource": _obs(y)},
        {"request": {"method": "DELETE", "url": f"Observation?_id={obs_x}"}},
        {"request": {"method": "DELETE", "url": f"/Observation/{obs_x}"}},
        {"request": {"method": "PUT", "url": f"/Observation/{obs_x}"}, "resource": repointed},
        {"request": {"method": "PUT", "url": f"Observation/{obs_x}"}, "resource": repointed},
    ]
    for entry in attacks:
        world.each(lambda h, e=entry: world.api.post("/fhir", json=_bundle(e), headers=h))
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}

        def in_batch(h: Headers, b: dict[str, Any] = batch) -> Any:
            r = world.api.post("/fhir", json=b, headers=h)
            status = r.json()["entry"][0]["response"]["status"] if r.status_code == 200 else ""
            return _Status(403 if status.startswith("403") else r.status_code, r.text)

        world.each(in_batch)


@dataclass
class _Status:
    status_code: int
    text: str


def test_bundle_reads_and_searches_show_only_what_the_caller_may_see(world: World) -> None:
    x, obs_x = world.ids["x"], world.ids["obs_x"]
    read = _bundle({"request": {"method": "GET", "url": f"Observation/{obs_x}"}})
    world.each(lambda h: world.api.post("/fhir", json=read, headers=h))
    search = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Observation?patient={x}"}}],
    }
    for name, h in world.callers.items():
        r = world.api.post("/fhir", json=search, headers=h)
        answer = r.json()["entry"][0]
        if "resource" in answer:
            assert answer["resource"].get("total", 0) == 0, name
            assert not answer["resource"].get("entry"), name


# -- conditional interactions ------------------------------------------------------------------
def test_a_conditional_create_never_shows_what_it_matched(world: World) -> None:
    """``If-None-Exist: identifier=…cccd|…`` once answered with another facility's patient,
    name and phone included."""
    patient = {"resourceType": "Patient", "name": [{"family": "Trần"}]}
    query = f"identifier={CCCD}|{CCCD_X}"
    a = world.callers["facility A's system"]
    before = world.snapshot()
    r = world.api.post("/fhir/Patient", json=patient, headers={**a, "If-None-Exist": query})
    assert r.status_code == 200
    assert r.json()["resourceType"] == "OperationOutcome"
    assert PHONE_X not in r.text and "Bình" not in r.text and world.ids["x"] not in r.text
    assert "Location" not in r.headers
    assert world.snapshot() == before
    entry = {
        "resource": patient,
        "request": {"method": "POST", "url": "Patient", "ifNoneExist": query},
    }
    answer = world.api.post("/fhir", json=_bundle(entry), headers=a).json()["entry"][0]
    assert "resource" not in answer and PHONE_X not in str(answer)
    assert world.snapshot() == before


def test_a_conditional_update_that_matches_nothing_never_takes_the_body_id(world: World) -> None:
    """It once overwrote whatever id the body named: Bình's lab result, re-pointed."""
    obs_x, y = world.ids["obs_x"], world.ids["y"]
    a = world.callers["facility A's system"]
    body = {**_obs(y, 1), "id": obs_x}
    r = world.api.put("/fhir/Observation?identifier=urn:none|nothing", json=body, headers=a)
    assert r.status_code == 201 and r.json()["id"] != obs_x
    mine = r.json()["id"]
    with world.store.begin() as tx:
        kept = tx.read("Observation", obs_x)
    assert kept is not None and kept.version_id == 1
    assert (
        kept.content is not None
        and kept.content["subject"]["reference"] == f"Patient/{world.ids['x']}"
    )
    assert world.api.delete(f"/fhir/Observation/{mine}", headers=a).status_code == 204


def test_conditional_updates_and_deletes_of_what_one_may_not_see_are_refused(
    world: World,
) -> None:
    obs_x, y = world.ids["obs_x"], world.ids["y"]
    world.each(lambda h: world.api.put(f"/fhir/Observation?_id={obs_x}", json=_obs(y), headers=h))
    world.each(lambda h: world.api.delete(f"/fhir/Observation?_id={obs_x}", headers=h))


# -- single interactions as a non-platform caller -----------------------------------------------
def test_another_facility_s_records_are_neither_read_nor_changed(world: World) -> None:
    x, obs_x = world.ids["x"], world.ids["obs_x"]
    world.each(lambda h: world.api.get(f"/fhir/Observation/{obs_x}", headers=h))
    world.each(lambda h: world.api.get(f"/fhir/Observation/{obs_x}/_history/1", headers=h))
    world.each(lambda h: world.api.get(f"/fhir/Observation/{obs_x}/_history", headers=h))
    world.each(lambda h: world.api.get(f"/fhir/Patient/{x}/$everything", headers=h))
    world.each(
        lambda h: world.api.put(
            f"/fhir/Observation/{obs_x}", json={**_obs(x, 99), "id": obs_x}, headers=h
        )
    )
    world.each(lambda h: world.api.delete(f"/fhir/Observation/{obs_x}", headers=h))
    world.each(lambda h: world.api.post("/fhir/Observation", json=_obs(x), headers=h))
    # one's own result re-pointed at someone else's record
    obs_y = world.ids["obs_y"]
    world.each(
        lambda h: world.api.put(
            f"/fhir/Observation/{obs_y}", json={**_obs(x), "id": obs_y}, headers=h
        )
    )


def test_match_never_answers_with_someone_the_caller_may_not_see(world: World) -> None:
    probe = {
        "resourceType": "Patient",
        "identifier": [{"system": CCCD, "value": CCCD_X}],
        "name": [{"family": "Trần", "given": ["Thị", "Bình"]}],
        "birthDate": "2001-11-05",
        "gender": "female",
    }
    body = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": probe}]}
    for name, h in world.callers.items():
        r = world.api.post("/fhir/Patient/$match", json=body, headers=h)
        assert r.status_code in (200, 403), name
        assert world.ids["x"] not in r.text, name
    found = world.api.post("/fhir/Patient/$match", json=body, headers=world.platform).json()
    assert world.ids["x"] in str(found)  # the platform does find her: the match is real


# -- counts ------------------------------------------------------------------------------------
def _answers(world: World, asks: list[tuple[str, Any]]) -> Iterator[tuple[str, str, Any, Any]]:
    """(caller, path, params, page) of every search each caller may make (403: not allowed)."""
    for name, h in world.callers.items():
        for path, params in asks:
            r = world.api.get(path, params=params, headers=h)
            if r.status_code == 403:  # the scopes do not allow the search at all
                continue
            assert r.status_code == 200, (name, path, params, r.text)
            yield name, path, params, r.json()


def test_counts_and_totals_say_nothing_about_records_one_may_not_see(world: World) -> None:
    """``_summary=count`` once told an unrelated facility that Bình has an HIV diagnosis."""
    x = world.ids["x"]
    asks = [
        ("/fhir/Condition", {"patient": x, "code": f"{ICD10}|B20", "_summary": "count"}),
        ("/fhir/Condition", {"patient": x, "code": "B20", "_count": "0"}),
        ("/fhir/Condition", {"code": "B20", "_total": "accurate"}),
        ("/fhir/Patient", {"identifier": f"{CCCD}|{CCCD_X}", "_summary": "count"}),
        ("/fhir/Patient", {"_has:Condition:patient:code": "B20", "_summary": "count"}),
        ("/fhir", {"_type": "Patient,Condition", "_has:Condition:patient:code": "B20"}),
        ("/fhir/Observation", {"subject:Patient.identifier": CCCD_X, "_summary": "count"}),
        ("/fhir/Patient", {"_id": x, "_revinclude": "Condition:patient"}),
    ]
    platform = world.api.get(asks[0][0], params=asks[0][1], headers=world.platform).json()
    assert platform["total"] == 1  # the fact exists: the platform counts it
    for name, path, params, page in _answers(world, asks):
        assert page.get("total", 0) == 0, (name, path, params)
        assert not [
            e
            for e in page.get("entry", [])
            if "resource" in e and e["resource"].get("resourceType") != "OperationOutcome"
        ], (name, params)


def test_searches_answered_off_the_index_rows_are_confined_too(world: World) -> None:
    """``_lastUpdated`` is searched in the resource row, ``phonetic`` through ``name``'s rows,
    a two-sided birth-date range as one scan, of two criteria one drives while the other is
    probed per candidate (``store/sql/search.py``), and ``match-key`` is computed by the patient
    index (``mpi/keys.py``): each is a new piece of SQL, and each must
    still find, and count, only what the caller may see."""
    x = world.ids["x"]
    NAME = ("phonetic", "binh")
    asks = [
        ("/fhir/Patient", [("phonetic", "binh"), ("_summary", "count")]),
        ("/fhir/Patient", [("birthdate", "ge2001-11-01"), ("birthdate", "le2001-11-30")]),
        ("/fhir/Patient", [("_lastUpdated", "ge2000"), ("_lastUpdated", "le2100"), NAME]),
        # two criteria on index rows: one drives, the other is probed per candidate
        ("/fhir/Patient", [("name", "binh"), ("birthdate", "2001-11"), ("_total", "accurate")]),
        ("/fhir/Patient", [NAME, ("birthdate", "ge2001-11-01"), ("birthdate", "le2001-11-30")]),
        ("/fhir/Patient", [("_has:Observation:patient:_lastUpdated", "ge2000"), NAME]),
        ("/fhir/Observation", [("subject:Patient._lastUpdated", "ge2000"), ("_total", "accurate")]),
        ("/fhir/Condition", [("patient", x), ("_lastUpdated", "gt2000-01-01T00:00:00.000Z")]),
        # the patient index's blocking keys, computed in Python rather than by FHIRPath
        (
            "/fhir/Patient",
            [("match-key", "nm/2001-11/binh,nd/2001-11-05/tr"), ("_total", "accurate")],
        ),
        ("/fhir/Patient", [("match-key:missing", "false"), NAME, ("_summary", "count")]),
    ]
    for path, params in [*asks[:5], asks[-2]]:
        found = world.api.get(path, params=params, headers=world.platform).json()
        assert found["total"] >= 1, params  # the facts exist: the platform finds them
    for name, path, params, page in _answers(world, asks):
        ids = {e["resource"].get("id") for e in page.get("entry", []) if "resource" in e}
        assert x not in ids and world.ids["obs_x"] not in ids, (name, params)
        assert world.ids["hiv_x"] not in ids, (name, params)
        assert ids <= {world.ids["y"], world.ids["obs_y"]}, (name, params, ids)
        if path == "/fhir/Patient":  # each names Bình alone: nothing to count either
            assert page.get("total", 0) == 0, (name, params)


def test_a_conditional_reference_resolves_only_among_what_the_caller_may_see(
    world: World,
) -> None:
    """A transaction's entries are checked before it opens and their references rewritten
    after (``fhir/precheck.py``): an Observation pointed at Bình by her CCCD must not find her,
    and nothing may be written."""
    obs = _obs("placeholder")
    obs["subject"] = {"reference": f"Patient?identifier={CCCD}|{CCCD_X}"}
    bundle = _bundle({"resource": obs, "request": {"method": "POST", "url": "Observation"}})
    world.each(lambda h: world.api.post("/fhir", json=bundle, headers=h), refused=(403, 404))
    linked = _bundle(
        {
            "fullUrl": "urn:uuid:b1",
            "resource": {"resourceType": "Patient", "id": world.ids["x"], "gender": "male"},
            "request": {"method": "PUT", "url": f"Patient/{world.ids['x']}"},
        },
        {
            "resource": {**_obs("placeholder"), "subject": {"reference": "urn:uuid:b1"}},
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    world.each(lambda h: world.api.post("/fhir", json=linked, headers=h))


def test_a_restriction_leaves_nothing_to_count(world: World) -> None:
    """Even the patient's treating facility B, once Bình keeps HIV for nobody but herself,
    counts no HIV diagnosis; she still sees hers."""
    x, b = world.ids["x"], world.b
    me = _citizen(world, x)
    body = {"resourceType": "Parameters", "parameter": [{"name": "category", "valueCode": "HIV"}]}
    r = world.api.post(f"/fhir/Patient/{x}/$restrict", json=body, headers=me)
    assert r.status_code == 200, r.text
    params = {"patient": x, "code": "B20", "_summary": "count"}
    # B wrote the diagnosis itself: its own records stay its own
    assert world.api.get("/fhir/Condition", params=params, headers=b).json()["total"] == 1
    mine = world.api.get("/fhir/Condition", params=params, headers=me).json()
    assert mine["total"] == 1
    for name, h in world.callers.items():
        r = world.api.get("/fhir/Condition", params=params, headers=h)
        assert r.status_code == 403 or r.json()["total"] == 0, name
    log = world.api.get(f"/fhir/Patient/{x}/$access-log", headers=me).json()
    consent = [e for e in log["entry"] if "$restrict" in str(e["resource"])]
    assert consent, "the restriction is audited on her own log"


# -- registries ---------------------------------------------------------------------------------
def test_a_facility_cannot_edit_the_registry(world: World) -> None:
    """Adding its code to another facility's Organization once claimed that facility's
    patients (and made the HL7 listener take it for that facility)."""
    org_b = world.ids[f"org_{B}"]
    with world.store.begin() as tx:
        found = tx.read("Organization", org_b)
    assert found is not None and found.content is not None
    claimed = dict(found.content)
    claimed["identifier"] = [*claimed["identifier"], {"system": FACILITY, "value": A}]
    claimed.pop("meta", None)
    world.each(lambda h: world.api.put(f"/fhir/Organization/{org_b}", json=claimed, headers=h))
    world.each(lambda h: world.api.post("/fhir/Organization", json=_org(B, "Giả"), headers=h))
    entry = {"resource": _org(B, "Giả"), "request": {"method": "POST", "url": "Organization"}}
    world.each(lambda h: world.api.post("/fhir", json=_bundle(entry), headers=h))


# -- patient operations ---------------------------------------------------------------------------
def test_merges_and_reviews_need_both_records(world: World) -> None:
    x, y = world.ids["x"], world.ids["y"]
    for source, target in ((x, y), (f"Patient/{x}", y), (y, x)):
        body = _params(
            source_patient={"reference": source} if "/" in source else source,
            target_patient={"reference": f"Patient/{target}"},
            reason="the same person",
            performer="attacker",
        )
        world.each(lambda h, b=body: world.api.post("/fhir/Patient/$merge", json=b, headers=h))
    task = queue_review(world.api.app.state.repository, y, x, 0.99, "probable")  # type: ignore[attr-defined]
    assert task is not None
    accept = _params(decision="accept", reason="looks alike", performer="attacker")
    world.each(
        lambda h: world.api.post(f"/fhir/Task/{task['id']}/$resolve-review", json=accept, headers=h)
    )
    forged = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "proposal",
        "code": {"coding": [{"system": TASK_CODE, "code": "review-match"}]},
        "focus": {"reference": f"Patient/{y}"},
        "for": {"reference": f"Patient/{x}"},
    }
    world.each(lambda h: world.api.post("/fhir/Task", json=forged, headers=h))
    with world.store.begin() as tx:
        mine = tx.read("Patient", y)
    assert mine is not None and mine.content is not None
    linked = {
        **mine.content,
        "link": [{"other": {"reference": f"Patient/{x}"}, "type": "replaced-by"}],
    }
    linked.pop("meta", None)
    world.each(lambda h: world.api.put(f"/fhir/Patient/{y}", json=linked, headers=h))


def test_privacy_consents_are_written_by_their_operations_only(world: World) -> None:
    """A related facility once deleted a citizen's restriction, or wrote itself a permanent
    permit; now neither B (who treats Bình) nor anyone at A may write one."""
    x = world.ids["x"]
    permit = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{x}"},
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {"coding": [{"code": "IRCP"}]},
                    "reference": {"identifier": {"system": FACILITY, "value": A}},
                }
            ],
        },
    }
    world.each(lambda h: world.api.post("/fhir/Consent", json=permit, headers=h))
    before = world.snapshot()
    assert world.api.post("/fhir/Consent", json=permit, headers=world.b).status_code == 403
    found = world.api.get("/fhir/Consent", params={"patient": x}, headers=world.platform).json()
    for entry in found.get("entry", []):
        cid = entry["resource"]["id"]
        assert world.api.delete(f"/fhir/Consent/{cid}", headers=world.b).status_code == 403
    assert world.snapshot() == before


# -- helpers -----------------------------------------------------------------------------------
def _citizen(world: World, x: str) -> Headers:
    """Bình herself, signed in."""
    tokens: TokenService = world.api.app.state.tokens  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {tokens.issue(citizen_principal(PHONE_X, x))[0]}"}


def _content(world: World, rtype: str, rid: str) -> dict[str, Any]:
    with world.store.begin() as tx:
        found = tx.read(rtype, rid)
    assert found is not None and found.content is not None
    return dict(found.content)


# -- audit -------------------------------------------------------------------------------------
def test_every_change_is_on_the_patient_s_access_log(world: World) -> None:
    """Bundles, writes and deletes name the patient they touched, so the citizen sees them."""
    y = world.ids["y"]
    a = world.callers["facility A's system"]
    made = world.api.post(
        "/fhir",
        json=_bundle(
            {"resource": _obs(y, 80), "request": {"method": "POST", "url": "Observation"}}
        ),
        headers=a,
    )
    assert made.status_code == 200
    oid = made.json()["entry"][0]["response"]["location"].split("/")[1]
    assert world.api.delete(f"/fhir/Observation/{oid}", headers=a).status_code == 204
    me = world.callers["citizen An"]
    log = world.api.get(f"/fhir/Patient/{y}/$access-log", headers=me).json()
    seen = {
        (e["resource"]["action"], ent["what"]["reference"])
        for e in log["entry"]
        for ent in e["resource"].get("entity", [])
        if "what" in ent
    }
    assert ("C", f"Observation/{oid}") in seen and ("D", f"Observation/{oid}") in seen


def test_a_write_whose_audit_row_fails_is_not_made(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit row is written in the write's own transaction: when it cannot be written,
    the write is rolled back with it (nothing answered that is not audited)."""
    y = world.ids["y"]
    a = world.callers["facility A's system"]

    def broken(*_args: Any, **_kwargs: Any) -> int:
        raise RuntimeError("the audit table is full")

    monkeypatch.setattr(AuditLog, "record_in", broken)
    before = world.snapshot()
    quiet = TestClient(world.api.app, base_url=BASE, raise_server_exceptions=False)
    r = quiet.post("/fhir/Observation", json=_obs(y, 66), headers=a)
    assert r.status_code == 500 and "audit table" not in r.text  # no internals in errors
    entry = {"resource": _obs(y, 67), "request": {"method": "POST", "url": "Observation"}}
    assert quiet.post("/fhir", json=_bundle(entry), headers=a).status_code == 500
    assert world.snapshot() == before
    monkeypatch.undo()
    assert world.api.post("/fhir/Observation", json=_obs(y, 66), headers=a).status_code == 201


# -- last: these leave facility A a relationship with Bình (what they test) --------------
def test_an_adt_from_a_facility_without_a_relationship_goes_to_review(world: World) -> None:
    """An ADT^A08 naming Bình's CCCD from A's interface once overwrote her name and phone."""
    x = world.ids["x"]
    message = "\r".join(
        [
            f"MSH|^~\\&|HIS|{A}|SOKHOE|MOH|20261120083000||ADT^A08^ADT_A01|A08-ATTACK|P|2.5",
            "EVN|A08|20261120083000",
            f"PID|1||{CCCD_X}^^^CCCD^NNVNM||Kẻ^Mạo^Danh||20011105|F|||1 Đường Giả^^Hà Nội^^^VN||"
            "^PRN^CP^^^^^^^^^0909999999",
        ]
    ).encode()
    processor = Hl7Processor(world.store, f"{BASE}/fhir")
    before = {
        k: v for k, v in _content(world, "Patient", x).items() if k not in ("meta", "identifier")
    }
    ack = processor.handle(message, source="10.0.0.1")
    assert "|AA|" in ack or "MSA|AA" in ack, ack
    after = _content(world, "Patient", x)
    assert {k: v for k, v in after.items() if k not in ("meta", "identifier")} == before
    tasks = world.api.get(
        "/fhir/Task", params={"focus": f"Patient/{x}"}, headers=world.platform
    ).json()
    proposed = [
        t
        for t in tasks.get("entry", [])
        if t["resource"]["code"]["coding"][0]["code"] == "review-demographics"
    ]
    assert proposed and "0909999999" in str(proposed[0]["resource"]["input"])


def test_a_number_alone_registers_the_visit_but_opens_no_history(world: World) -> None:
    x, obs_x = world.ids["x"], world.ids["obs_x"]
    a = world.callers["facility A's system"]
    for body in (
        {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": QR_X}]},
        {"resourceType": "Parameters", "parameter": [{"name": "bhyt", "valueString": BHYT_X}]},
    ):
        r = world.api.post("/fhir/Patient/$check-in", json=body, headers=a)
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["id"] == x and view["meta"]["tag"][0]["code"] == "SUBSETTED"
        assert PHONE_X not in r.text and "telecom" not in view and "address" not in view
        assert world.api.get(f"/fhir/Observation/{obs_x}", headers=a).status_code == 403
        assert world.api.get(f"/fhir/Patient/{x}", headers=a).status_code == 403
        assert world.api.get(f"/fhir/Patient/{x}/$everything", headers=a).status_code == 403
        found = world.api.get("/fhir/Observation", params={"patient": x}, headers=a).json()
        assert found["total"] == 0
    # the wrong code opens nothing; the code sent to her phone does
    sent = world.api.post(f"/fhir/Patient/{x}/$presence-code", headers=a)
    assert sent.status_code == 202 and PHONE_X not in sent.text
    wrong = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": "000000"}]}
    assert (
        world.api.post(f"/fhir/Patient/{x}/$confirm-presence", json=wrong, headers=a).status_code
        == 401
    )
    assert world.api.get(f"/fhir/Observation/{obs_x}", headers=a).status_code == 403


def test_break_the_glass_is_per_clinician_and_logged(world: World) -> None:
    x, obs_x = world.ids["x"], world.ids["obs_x"]
    doctor = world.callers["doctor of A"]
    pharmacist = world.callers["pharmacist of A"]
    glass = {"X-Break-The-Glass": quote("bất tỉnh, cấp cứu")}
    assert world.api.get(f"/fhir/Patient/{x}", headers={**pharmacist, **glass}).status_code == 403
    assert world.api.get(f"/fhir/Patient/{x}", headers={**doctor, **glass}).status_code == 200
    # the same doctor keeps the record open for the shift; the facility's system does not
    assert world.api.get(f"/fhir/Patient/{x}", headers=doctor).status_code == 200
    a = world.callers["facility A's system"]
    assert world.api.get(f"/fhir/Observation/{obs_x}", headers=a).status_code == 403
    log = world.api.get(f"/fhir/Patient/{x}/$access-log", headers=_citizen(world, x)).json()
    reasons = [e["resource"].get("outcomeDesc", "") for e in log["entry"]]
    assert any("cấp cứu" in r for r in reasons)
