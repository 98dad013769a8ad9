"""Who may see what, end to end over HTTP: tokens, scopes, relationships, citizens,
break-the-glass, and the audit trail of it all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sokhoe.access.accounts import create_user
from sokhoe.access.audit import AuditLog
from sokhoe.access.otp import link_citizen
from sokhoe.access.tokens import TokenService
from sokhoe.cli import app as cli_app
from sokhoe.config import Settings
from sokhoe.store.ports import FhirStore
from sokhoe.web.app import create_app
from tests.api_helpers import check_in as _check_in
from tests.api_helpers import client_auth as _client_token
from tests.api_helpers import give_phone, prove_presence
from tests.api_helpers import observation as _obs
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS, platform_token

QR_AN = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"
QR_BINH = "001301004567|Trần Thị Bình|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022"
PASSWORD = "mật-khẩu-dài-2026"


@pytest.fixture
def api(store: FhirStore, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url="sqlite://", var_dir=tmp_path)
    with TestClient(create_app(settings, store), base_url=BASE) as c:
        yield c


def _tokens(api: TestClient) -> TokenService:
    tokens: TokenService = api.app.state.tokens  # type: ignore[attr-defined]
    return tokens


@pytest.fixture
def world(api: TestClient) -> dict[str, Any]:
    """Two facilities' systems; An registered at 79001, Bình at 01002, each with data."""
    hcm = _client_token(api, ["system/*.cruds"], "79001")
    hanoi = _client_token(api, ["system/*.cruds"], "01002")
    an = _check_in(api, hcm, QR_AN)
    binh = _check_in(api, hanoi, QR_BINH)
    give_phone(api, hcm, an, "0912345678")
    give_phone(api, hanoi, binh, "0987000111")
    obs_an = api.post("/fhir/Observation", json=_obs(an), headers=hcm).json()["id"]
    obs_binh = api.post("/fhir/Observation", json=_obs(binh), headers=hanoi).json()["id"]
    return {"hcm": hcm, "hanoi": hanoi, "an": an, "binh": binh, "oa": obs_an, "ob": obs_binh}


def test_anonymous_gets_401_and_metadata_stays_public(api: TestClient) -> None:
    for method, url in [("GET", "/fhir/Patient"), ("GET", "/fhir/Patient/x"), ("POST", "/fhir")]:
        r = api.request(method, url, json={})
        assert r.status_code == 401, url
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["issue"][0]["code"] == "login"
    bad = api.get("/fhir/Patient", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    assert api.get("/fhir/metadata").status_code == 200
    wrong = api.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": "c-x", "client_secret": "y"},
    )
    assert wrong.status_code == 401


def test_a_facility_sees_only_its_patients(api: TestClient, world: dict[str, Any]) -> None:
    hcm, an, binh = world["hcm"], world["an"], world["binh"]
    assert api.get(f"/fhir/Patient/{an}", headers=hcm).status_code == 200
    denied = api.get(f"/fhir/Patient/{binh}", headers=hcm)
    assert denied.status_code == 403
    assert "relationship" in denied.json()["issue"][0]["diagnostics"]
    assert api.get(f"/fhir/Observation/{world['ob']}", headers=hcm).status_code == 403
    assert api.get(f"/fhir/Patient/{binh}/$everything", headers=hcm).status_code == 403
    people = api.get("/fhir/Patient", headers=hcm).json()
    assert {e["resource"]["id"] for e in people["entry"]} == {an}
    obs = api.get("/fhir/Observation", params={"_include": "Observation:subject"}, headers=hcm)
    assert {e["resource"]["id"] for e in obs.json()["entry"]} == {world["oa"], an}
    # writing data about someone else's patient is refused and writes nothing
    assert api.post("/fhir/Observation", json=_obs(binh), headers=hcm).status_code == 403
    platform = {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]
    assert api.get("/fhir/Observation", headers=platform).json()["total"] == 2
    # knowing her CCCD (the QR text) registers the visit at HCM, not her history there...
    r = api.post(
        "/fhir/Patient/$check-in",
        json={"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": QR_BINH}]},
        headers=hcm,
    )
    assert r.status_code == 200 and r.json()["id"] == binh
    assert r.json()["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert "telecom" not in r.json()  # the desk sees what the card says, not her phone
    assert api.get(f"/fhir/Observation/{world['ob']}", headers=hcm).status_code == 403
    mine = api.post("/fhir/Observation", json=_obs(binh), headers=hcm)
    assert mine.status_code == 201  # ...it may write the visit, and read back what it wrote
    assert api.get(f"/fhir/Observation/{mine.json()['id']}", headers=hcm).status_code == 200
    # ...and once she reads out the code sent to her phone, it may see the rest
    prove_presence(api, hcm, binh)
    assert api.get(f"/fhir/Observation/{world['ob']}", headers=hcm).status_code == 200


def test_scopes_limit_interactions(api: TestClient, world: dict[str, Any]) -> None:
    reader = _client_token(api, ["system/Patient.rs", "system/Observation.rs"], "79001")
    assert api.get(f"/fhir/Patient/{world['an']}", headers=reader).status_code == 200
    r = api.post("/fhir/Observation", json=_obs(world["an"]), headers=reader)
    assert r.status_code == 403
    assert "scopes" in r.json()["issue"][0]["diagnostics"]
    assert api.get("/fhir/Encounter", headers=reader).status_code == 403


def test_citizen_sees_own_record_only(api: TestClient, world: dict[str, Any]) -> None:
    engine = _tokens(api).engine
    link_citizen(engine, "0912345678", world["an"])
    sent = api.post("/auth/citizen/code", json={"phone": "+84 912 345 678"})
    assert sent.status_code == 202
    outbox = Path(api.app.state.settings.var_dir) / "sms-outbox.jsonl"  # type: ignore[attr-defined]
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    code = next(w for w in text.split() if w.isdigit() and len(w) == 6)
    r = api.post("/auth/citizen/verify", json={"phone": "0912345678", "code": code})
    assert r.status_code == 200, r.text
    me = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert api.get(f"/fhir/Patient/{world['an']}", headers=me).status_code == 200
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=me).status_code == 403
    mine = api.get("/fhir/Observation", headers=me).json()
    assert [e["resource"]["id"] for e in mine["entry"]] == [world["oa"]]
    assert api.get("/fhir/Patient", headers=me).json()["total"] == 1
    assert api.post("/fhir/Observation", json=_obs(world["an"]), headers=me).status_code == 403
    log = api.get(f"/fhir/Patient/{world['an']}/$access-log", headers=me).json()
    assert log["total"] >= 3
    agents = {e["resource"]["agent"][0]["who"]["display"] for e in log["entry"]}
    assert "HIS 79001" in agents  # the facility system that registered and wrote the record
    assert all(e["resource"]["resourceType"] == "AuditEvent" for e in log["entry"])
    other = api.get(f"/fhir/Patient/{world['binh']}/$access-log", headers=me)
    assert other.status_code == 403
    assert api.get("/fhir/Patient/$review-queue", headers=me).status_code == 403


def test_break_the_glass_is_allowed_with_a_reason_and_audited(
    api: TestClient, world: dict[str, Any]
) -> None:
    engine = _tokens(api).engine
    create_user(
        engine, "bs.an", PASSWORD, "doctor", "BS. Lê An", facility="79001", hasher=FAST_HASHER
    )
    create_user(engine, "analyst", PASSWORD, "analyst", "Phân tích viên", hasher=FAST_HASHER)
    doctor = api.post("/auth/staff/sign-in", json={"username": "bs.an", "password": PASSWORD})
    assert doctor.status_code == 200, doctor.text
    auth = {"Authorization": f"Bearer {doctor.json()['access_token']}"}
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=auth).status_code == 403
    glass = {**auth, "X-Break-The-Glass": quote("bất tỉnh, cấp cứu (unconscious, emergency)")}
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=glass).status_code == 200
    analyst = api.post("/auth/staff/sign-in", json={"username": "analyst", "password": PASSWORD})
    a_auth = {"Authorization": f"Bearer {analyst.json()['access_token']}"}
    assert api.get(f"/fhir/Patient/{world['an']}", headers=a_auth).status_code == 403
    bad = api.post("/auth/staff/sign-in", json={"username": "bs.an", "password": "sai"})
    assert bad.status_code == 401
    auditor: AuditLog = api.app.state.auditor  # type: ignore[attr-defined]
    events, total = auditor.for_patient([world["binh"]], count=100)
    assert total >= 3
    kinds = [e["type"]["code"] for e in events]
    assert "110113" in kinds  # the break-the-glass security alert
    outcomes = {e["outcome"] for e in events}
    assert {"0", "4"} <= outcomes  # allowed and denied accesses are both on record
    assert auditor.verify().ok


def test_cli_creates_a_client_that_gets_a_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    out = CliRunner().invoke(
        cli_app,
        [
            "client",
            "create",
            "--name",
            "HIS",
            "--facility",
            "79001",
            "--scope",
            "system/Patient.rs",
            "--db",
            db,
        ],
    )
    assert out.exit_code == 0, out.output
    creds = json.loads(out.output)
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url=db, var_dir=tmp_path)
    with TestClient(create_app(settings), base_url=BASE) as c:
        r = c.post("/auth/token", data={"grant_type": "client_credentials", **creds})
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == "system/Patient.rs"
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert c.get("/fhir/Patient", headers=auth).status_code == 200
        c.app.state.store.close()  # type: ignore[attr-defined]
    bad = CliRunner().invoke(
        cli_app, ["client", "create", "--name", "x", "--scope", "patient/*.rs", "--db", db]
    )
    assert bad.exit_code == 2


def test_bundles_pass_through_the_same_door(api: TestClient, world: dict[str, Any]) -> None:
    hcm = world["hcm"]

    def txn(*entries: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}

    post = {"resource": _obs(world["binh"]), "request": {"method": "POST", "url": "Observation"}}
    assert api.post("/fhir", json=txn(post), headers=hcm).status_code == 403
    by_cccd = _obs("x")
    by_cccd["subject"] = {
        "reference": "Patient?identifier=https://fhir.sokhoe.vn/sid/cccd|001301004567"
    }
    conditional = {"resource": by_cccd, "request": {"method": "POST", "url": "Observation"}}
    # a conditional reference finds only what the caller may see: nothing, as for a stranger
    assert api.post("/fhir", json=txn(conditional), headers=hcm).status_code == 404
    read = {"request": {"method": "GET", "url": f"Patient/{world['binh']}"}}
    assert api.post("/fhir", json=txn(read), headers=hcm).status_code == 403
    delete = {"request": {"method": "DELETE", "url": f"Observation/{world['ob']}"}}
    assert api.post("/fhir", json=txn(delete), headers=hcm).status_code == 403
    own = {"resource": _obs(world["an"]), "request": {"method": "POST", "url": "Observation"}}
    assert api.post("/fhir", json=txn(own), headers=hcm).status_code == 200
    platform = {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]
    assert api.get("/fhir/Observation", headers=platform).json()["total"] == 3


def _citizen(api: TestClient, phone: str, patient_id: str) -> dict[str, str]:
    link_citizen(_tokens(api).engine, phone, patient_id)
    assert api.post("/auth/citizen/code", json={"phone": phone}).status_code == 202
    outbox = Path(api.app.state.settings.var_dir) / "sms-outbox.jsonl"  # type: ignore[attr-defined]
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    code = next(w for w in text.split() if w.isdigit() and len(w) == 6)
    r = api.post("/auth/citizen/verify", json={"phone": phone, "code": code})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_share_code_lets_one_facility_in(api: TestClient, world: dict[str, Any]) -> None:
    hcm, binh = world["hcm"], world["binh"]
    assert api.get(f"/fhir/Patient/{binh}", headers=hcm).status_code == 403
    me = _citizen(api, "0987654321", binh)
    assert api.post(f"/fhir/Patient/{world['an']}/$share", headers=me).status_code == 403
    assert api.post(f"/fhir/Patient/{binh}/$share", headers=hcm).status_code == 403
    made = api.post(f"/fhir/Patient/{binh}/$share", headers=me)
    assert made.status_code == 200, made.text
    code = made.json()["parameter"][0]["valueString"]
    assert len(code) == 9 and code[4] == "-"

    def redeem(c: str) -> Any:
        body = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": c}]}
        return api.post("/fhir/Patient/$redeem-share", json=body, headers=hcm)

    assert redeem("ZZZZ-ZZZZ").status_code == 404
    granted = redeem(code.lower())
    assert granted.status_code == 200, granted.text
    consent = granted.json()
    assert consent["status"] == "active"
    assert consent["provision"]["actor"][0]["reference"]["identifier"]["value"] == "79001"
    assert api.get(f"/fhir/Patient/{binh}", headers=hcm).status_code == 200
    assert api.get(f"/fhir/Observation/{world['ob']}", headers=hcm).status_code == 200
    assert redeem(code).status_code == 409  # one use only
    other = _client_token(api, ["system/*.cruds"], "48001")
    assert api.get(f"/fhir/Patient/{binh}", headers=other).status_code == 403


def test_an_old_share_code_has_expired(api: TestClient, world: dict[str, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    from sokhoe.access.consent import create_share
    from sokhoe.access.guard import GuardedRepository
    from sokhoe.access.otp import citizen_principal

    platform: GuardedRepository = api.app.state.repository  # type: ignore[attr-defined]
    binh = citizen_principal("0912000111", world["binh"])
    past = platform.for_caller(binh, clock=lambda: datetime.now(UTC) - timedelta(minutes=20))
    made = create_share(past, world["binh"])
    body = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": made.code}]}
    r = api.post("/fhir/Patient/$redeem-share", json=body, headers=world["hcm"])
    assert r.status_code == 409
    assert "expired" in r.json()["issue"][0]["diagnostics"]
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=world["hcm"]).status_code == 403


def test_a_commune_health_worker_sees_residents(api: TestClient, world: dict[str, Any]) -> None:
    from sokhoe.registry.places import find_ward, resolve_province

    province = resolve_province("Thành phố Hồ Chí Minh")
    assert province is not None
    ward = find_ward(province, "Phường Bến Thành")
    assert ward is not None
    platform = {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]
    resident = {
        "resourceType": "Patient",
        "name": [{"family": "Võ", "given": ["Thị", "Mai"]}],
        "address": [{"use": "home", "city": "Phường Bến Thành", "state": province.name}],
    }
    pid = api.post("/fhir/Patient", json=resident, headers=platform).json()["id"]
    create_user(
        _tokens(api).engine,
        "yte.xa",
        PASSWORD,
        "commune-health-worker",
        "Y tế xã",
        commune=ward.code,
        hasher=FAST_HASHER,
    )
    r = api.post("/auth/staff/sign-in", json={"username": "yte.xa", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert api.get(f"/fhir/Patient/{pid}", headers=auth).status_code == 200
    assert api.get(f"/fhir/Patient/{world['an']}", headers=auth).status_code == 403


def test_a_parent_sees_their_child_not_an_adult(api: TestClient, world: dict[str, Any]) -> None:
    platform = {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]

    def person(born: str) -> str:
        p = {"resourceType": "Patient", "name": [{"family": "Đỗ", "given": ["Minh"]}]}
        return str(
            api.post("/fhir/Patient", json={**p, "birthDate": born}, headers=platform).json()["id"]
        )

    def parent_of(pid: str, phone: str) -> str:
        rp = {
            "resourceType": "RelatedPerson",
            "patient": {"reference": f"Patient/{pid}"},
            "relationship": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                            "code": "MTH",
                        }
                    ]
                }
            ],
            "telecom": [{"system": "phone", "value": phone}],
        }
        made = api.post("/fhir/RelatedPerson", json=rp, headers=platform)
        assert made.status_code == 201
        return str(made.json()["id"])

    child, grown = person("2019-06-01"), person("1990-01-01")
    child_rp = parent_of(child, "0911222333")
    grown_rp = parent_of(grown, "0911222333")
    # anyone who may write a child's record can write a RelatedPerson: that proves nothing
    unconfirmed = _citizen(api, "0911222333", world["an"])
    assert api.get(f"/fhir/Patient/{child}", headers=unconfirmed).status_code == 403
    confirm = api.post(f"/fhir/RelatedPerson/{child_rp}/$confirm-guardian", headers=platform)
    assert confirm.status_code == 200, confirm.text
    refused = api.post(f"/fhir/RelatedPerson/{grown_rp}/$confirm-guardian", headers=platform)
    assert refused.status_code == 409  # an adult has no guardian to confirm
    # a facility that has no relationship with the child cannot confirm anyone for it
    hanoi_rp = api.post(f"/fhir/RelatedPerson/{child_rp}/$confirm-guardian", headers=world["hanoi"])
    assert hanoi_rp.status_code == 403
    mother = _citizen(api, "0911222333", world["an"])
    assert api.get(f"/fhir/Patient/{child}", headers=mother).status_code == 200
    assert api.get(f"/fhir/Patient/{grown}", headers=mother).status_code == 403


def test_an_insurance_appraiser_sees_claims_only(api: TestClient, world: dict[str, Any]) -> None:
    claim = {
        "resourceType": "Claim",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "institutional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": f"Patient/{world['binh']}"},
        "created": "2026-11-20",
        "provider": {"reference": "Organization/bv-01002"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "BHYT"}}],
    }
    made = api.post("/fhir/Claim", json=claim, headers=world["hanoi"])
    assert made.status_code == 201, made.text
    create_user(
        _tokens(api).engine,
        "giamdinh",
        PASSWORD,
        "insurance-appraiser",
        "Giám định",
        hasher=FAST_HASHER,
    )
    r = api.post("/auth/staff/sign-in", json={"username": "giamdinh", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert api.get(f"/fhir/Claim/{made.json()['id']}", headers=auth).status_code == 200
    assert api.get("/fhir/Claim", headers=auth).json()["total"] == 1
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=auth).status_code == 403
    assert api.get(f"/fhir/Observation/{world['ob']}", headers=auth).status_code == 403


def test_sensitive_codes_are_labelled_on_write_and_the_restriction_covers_them(
    api: TestClient, world: dict[str, Any]
) -> None:
    """Nobody ticks "sensitive": an F32 diagnosis and an HIV test are labelled from their
    codes, so the patient's restriction hides them from the other facility."""
    hcm, hanoi, binh = world["hcm"], world["hanoi"], world["binh"]
    _check_in(api, hcm, QR_BINH)
    prove_presence(api, hcm, binh)
    icd10 = "http://hl7.org/fhir/sid/icd-10"
    depression = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": icd10, "code": "F32.1"}]},
        "subject": {"reference": f"Patient/{binh}"},
    }
    made = api.post("/fhir/Condition", json=depression, headers=hanoi).json()
    assert [s["code"] for s in made["meta"]["security"]] == ["PSY"]
    hiv_test = _obs(binh)
    hiv_test["code"] = {"coding": [{"system": "http://loinc.org", "code": "56888-1"}]}
    hiv = api.post("/fhir/Observation", json=hiv_test, headers=hanoi).json()
    assert [s["code"] for s in hiv["meta"]["security"]] == ["HIV"]
    labelled = api.get("/fhir/Condition", params={"_security": "PSY"}, headers=hanoi).json()
    assert [e["resource"]["id"] for e in labelled["entry"]] == [made["id"]]
    me = _citizen(api, "0987000111", binh)
    for category in ("PSY", "HIV"):
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "category", "valueCode": category},
                {"name": "facility", "valueString": "01002"},
            ],
        }
        assert api.post(f"/fhir/Patient/{binh}/$restrict", json=body, headers=me).status_code == 200
    assert api.get(f"/fhir/Condition/{made['id']}", headers=hcm).status_code == 403
    assert api.get(f"/fhir/Observation/{hiv['id']}", headers=hcm).status_code == 403
    assert api.get(f"/fhir/Observation/{world['ob']}", headers=hcm).status_code == 200
    assert api.get(f"/fhir/Condition/{made['id']}", headers=hanoi).status_code == 200


def test_a_restricted_sensitive_record_stays_with_the_treating_facility(
    api: TestClient, world: dict[str, Any]
) -> None:
    hcm, hanoi, binh = world["hcm"], world["hanoi"], world["binh"]
    _check_in(api, hcm, QR_BINH)
    prove_presence(api, hcm, binh)  # Bình is now a patient of both facilities
    psych = _obs(binh)
    psych["meta"] = {
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]
    }
    psy_id = api.post("/fhir/Observation", json=psych, headers=hanoi).json()["id"]
    assert api.get(f"/fhir/Observation/{psy_id}", headers=hcm).status_code == 200
    me = _citizen(api, "0987000111", binh)
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "category", "valueCode": "PSY"},
            {"name": "facility", "valueString": "01002"},
        ],
    }
    assert api.post(f"/fhir/Patient/{binh}/$restrict", json=body, headers=hcm).status_code == 403
    made = api.post(f"/fhir/Patient/{binh}/$restrict", json=body, headers=me)
    assert made.status_code == 200, made.text
    assert made.json()["provision"]["type"] == "deny"
    # the other facility no longer sees it, nor finds it; the treating one and the patient do
    assert api.get(f"/fhir/Observation/{psy_id}", headers=hcm).status_code == 403
    found = api.get("/fhir/Observation", params={"patient": binh}, headers=hcm).json()
    assert psy_id not in {e["resource"]["id"] for e in found.get("entry", [])}
    assert world["ob"] in {e["resource"]["id"] for e in found.get("entry", [])}
    everything = api.get(f"/fhir/Patient/{binh}/$everything", headers=hcm).json()
    in_everything = {e["resource"]["id"] for e in everything.get("entry", [])}
    assert psy_id not in in_everything and world["ob"] in in_everything
    treating = api.get(f"/fhir/Patient/{binh}/$everything", headers=hanoi).json()
    assert psy_id in {e["resource"]["id"] for e in treating.get("entry", [])}
    assert api.get(f"/fhir/Observation/{psy_id}", headers=hanoi).status_code == 200
    assert api.get(f"/fhir/Observation/{psy_id}", headers=me).status_code == 200
    bad = {"resourceType": "Parameters", "parameter": [{"name": "category", "valueCode": "XYZ"}]}
    assert api.post(f"/fhir/Patient/{binh}/$restrict", json=bad, headers=me).status_code == 400
    # an emergency still opens it, on the record
    create_user(
        _tokens(api).engine,
        "bs.hcm",
        PASSWORD,
        "doctor",
        "BS. HCM",
        facility="79001",
        hasher=FAST_HASHER,
    )
    signed = api.post("/auth/staff/sign-in", json={"username": "bs.hcm", "password": PASSWORD})
    doctor = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    assert api.get(f"/fhir/Observation/{psy_id}", headers=doctor).status_code == 403
    glass = {**doctor, "X-Break-The-Glass": quote("tự sát, cấp cứu")}
    assert api.get(f"/fhir/Observation/{psy_id}", headers=glass).status_code == 200


def _pages(api: TestClient, url: str, auth: dict[str, str]) -> tuple[set[str], int]:
    """Every resource id met following ``next`` links, and the number of pages."""
    seen: set[str] = set()
    pages = 0
    next_url: str | None = url
    while next_url:
        page = api.get(next_url, headers=auth).json()
        pages += 1
        seen |= {e["resource"]["id"] for e in page.get("entry", []) if "resource" in e}
        next_url = next(
            (link["url"].replace(BASE, "") for link in page["link"] if link["relation"] == "next"),
            None,
        )
    return seen, pages


def test_a_facility_s_pages_and_totals_hold_only_its_patients(
    api: TestClient, world: dict[str, Any]
) -> None:
    """The caller's rights are part of the query: a facility with 3 patients among 43 gets
    full pages, an exact total and a count of only what it may see (no page is empty while a
    later one has results)."""
    hcm, hanoi = world["hcm"], world["hanoi"]
    mine = {world["an"]}
    for i in range(6):
        qr = f"00109500{i:04d}|Người Hà Nội {i}|01011995|Nam|Hà Nội|01012020"
        _check_in(api, hanoi, qr)
    for i in range(2):
        qr = f"07919500{i:04d}|Người Sài Gòn {i}|01011995|Nữ|TP Hồ Chí Minh|01012020"
        mine.add(_check_in(api, hcm, qr))
    platform = {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]
    others = [
        {
            "resource": {
                "resourceType": "Patient",
                "name": [{"family": "Khác", "given": [str(i)]}],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
        for i in range(33)
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": others}
    assert api.post("/fhir", json=bundle, headers=platform).status_code == 200
    everyone = api.get("/fhir/Patient", params={"_count": "0"}, headers=platform).json()
    assert everyone["total"] == 43  # the facility's 3 among 43
    first = api.get("/fhir/Patient", params={"_count": "2"}, headers=hcm).json()
    assert len(first["entry"]) == 2 and first["total"] == 3
    found, pages = _pages(api, "/fhir/Patient?_count=2", hcm)
    assert found == mine and pages == 2
    count = api.get("/fhir/Patient", params={"_summary": "count"}, headers=hcm).json()
    assert count["total"] == 3 and not count.get("entry")
    zero = api.get("/fhir/Patient", params={"_count": "0"}, headers=hcm).json()
    assert zero["total"] == 3
    history, _ = _pages(api, "/fhir/Patient/_history?_count=2", hcm)
    assert history == mine


def test_one_read_decides_audits_and_leaks_nothing(
    api: TestClient, world: dict[str, Any], store: FhirStore
) -> None:
    """A read is one query that finds the resource and whether the caller may see it, with
    the caller's condition kept for the second (``store/sql/confine.py``). Another facility
    is refused (and audited) on every try, a deleted record of someone else's answers 403
    not 410, a care relationship made within the same second opens the record at once, and
    a revoked token is refused at once although its signing key is kept in memory."""
    hanoi, hcm, an, oa = world["hanoi"], world["hcm"], world["an"], world["oa"]
    auditor = AuditLog(_tokens(api).engine)
    before = len(auditor.for_patient([an], count=500)[0])
    for _ in range(3):  # the same caller, the same second: the kept condition
        assert api.get(f"/fhir/Observation/{oa}", headers=hanoi).status_code == 403
        assert api.get(f"/fhir/Patient/{an}", headers=hanoi).status_code == 403
    events = auditor.for_patient([an], count=500)[0]
    denied = [e for e in events[: len(events) - before] if e["outcome"] != "0"]
    assert len(denied) == 6  # each refusal in An's log
    assert api.get("/fhir/Observation/no-such", headers=hanoi).status_code == 404
    assert api.delete(f"/fhir/Observation/{oa}", headers=hcm).status_code in (200, 204)
    assert api.get(f"/fhir/Observation/{oa}", headers=hcm).status_code == 410
    gone = api.get(f"/fhir/Observation/{oa}", headers=hanoi)
    assert gone.status_code == 403  # not 410: a refusal says nothing of the record's state
    assert _check_in(api, hanoi, QR_AN) == an  # An at the Hanoi desk, with their phone:
    prove_presence(api, hanoi, an)  # a care relationship, made now
    assert api.get(f"/fhir/Patient/{an}", headers=hanoi).status_code == 200
    # a citizen's token for Bình reads An's record no more than before
    link_citizen(_tokens(api).engine, "0987000111", world["binh"])
    api.post("/auth/citizen/code", json={"phone": "0987000111"})
    outbox = Path(api.app.state.settings.var_dir) / "sms-outbox.jsonl"  # type: ignore[attr-defined]
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    code = next(w for w in text.split() if w.isdigit() and len(w) == 6)
    token = api.post("/auth/citizen/verify", json={"phone": "0987000111", "code": code})
    binh = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=binh).status_code == 200
    assert api.get(f"/fhir/Patient/{an}", headers=binh).status_code == 403
    _tokens(api).revoke(token.json()["access_token"])
    assert api.get(f"/fhir/Patient/{world['binh']}", headers=binh).status_code == 401
