"""The authorisation matrix: every kind of caller × every endpoint family, allowed or denied,
with the reason. One table states what the rules of the issue mean; the test runs each cell
over HTTP against a real SQLite store and reports every cell that disagrees, not just the first.

The world: facility A (79001) registered An and holds her observation, encounter and claim;
facility B (01002) registered Bình; Cường is known to the platform but to no facility; Mai
lives in the commune of the commune health worker. Every caller acts for facility A unless
the row says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from sokhoe.access.accounts import ROLE_SCOPES, create_user
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.otp import citizen_principal
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.mpi.identifiers import mrn_system
from sokhoe.mpi.links import queue_review
from sokhoe.registry.places import find_ward, resolve_province
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS

A, B = "79001", "01002"
QR_AN = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"
QR_BINH = "001301004567|Trần Thị Bình|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022"
QR_NEW = "079195007777|Lê Thị Hoa|01011995|Nữ|3 Hai Bà Trưng, TP Hồ Chí Minh|02022022"

ALLOW, DENY, ANON = "allow", "deny", "401"


@dataclass(frozen=True)
class Family:
    """One endpoint family: how to call it, and how to tell allowed from denied."""

    name: str
    call: Callable[[TestClient, dict[str, str], dict[str, str]], httpx.Response]
    shows: Callable[[httpx.Response, dict[str, str]], bool] | None = None
    """For searches, which answer 200 with what the caller may see: allowed means the
    target is in the results, denied that it is filtered out (or 403)."""


def _entry_ids(r: httpx.Response) -> set[str]:
    return {e["resource"]["id"] for e in r.json().get("entry", []) if "id" in e["resource"]}


def _obs(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 72, "unit": "/min"},
    }


def _check_in(qr: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": qr}]}


FAMILIES = [
    Family("read Patient", lambda c, h, w: c.get(f"/fhir/Patient/{w['an']}", headers=h)),
    Family("read Observation", lambda c, h, w: c.get(f"/fhir/Observation/{w['obs']}", headers=h)),
    Family(
        "search Observation",
        lambda c, h, w: c.get("/fhir/Observation", params={"patient": w["an"]}, headers=h),
        lambda r, w: w["obs"] in _entry_ids(r),
    ),
    Family(
        "search Patient by CCCD",
        lambda c, h, w: c.get("/fhir/Patient", params={"identifier": "079090001234"}, headers=h),
        lambda r, w: w["an"] in _entry_ids(r),
    ),
    Family(
        "$everything",
        lambda c, h, w: c.get(f"/fhir/Patient/{w['an']}/$everything", headers=h),
        lambda r, w: w["obs"] in _entry_ids(r),
    ),
    Family("history", lambda c, h, w: c.get(f"/fhir/Observation/{w['obs']}/_history", headers=h)),
    Family(
        "create Observation",
        lambda c, h, w: c.post("/fhir/Observation", json=_obs(w["an"]), headers=h),
    ),
    Family("read Claim", lambda c, h, w: c.get(f"/fhir/Claim/{w['claim']}", headers=h)),
    Family("access log", lambda c, h, w: c.get(f"/fhir/Patient/{w['an']}/$access-log", headers=h)),
    Family("read unrelated", lambda c, h, w: c.get(f"/fhir/Patient/{w['cuong']}", headers=h)),
    Family(
        "break the glass",
        lambda c, h, w: c.get(
            f"/fhir/Patient/{w['cuong']}",
            headers={**h, "X-Break-The-Glass": quote("cấp cứu, bất tỉnh")},
        ),
    ),
    Family("read commune resident", lambda c, h, w: c.get(f"/fhir/Patient/{w['mai']}", headers=h)),
    Family(
        "check-in",
        lambda c, h, w: c.post("/fhir/Patient/$check-in", json=_check_in(QR_NEW), headers=h),
    ),
    Family(
        "review queue",
        lambda c, h, w: c.get("/fhir/Patient/$review-queue", headers=h),
        lambda r, w: w["task"] in _entry_ids(r),
    ),
    Family(
        "search facilities",
        lambda c, h, w: c.get("/fhir/Organization", params={"_count": "1"}, headers=h),
        lambda r, w: bool(r.json().get("entry")),
    ),
]
NAMES = [f.name for f in FAMILIES]


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _row(default: str, **overrides: str) -> dict[str, str]:
    """A row of the matrix: ``default`` everywhere but the named families (keyword names
    are the family names without spaces and punctuation, e.g. ``check_in``)."""
    by_key = {_key(n): n for n in NAMES}
    row = dict.fromkeys(NAMES, default)
    for key, value in overrides.items():
        row[by_key[_key(key)]] = value  # KeyError: a typo in the table, not a silent skip
    return row


_RELATED_CLINICAL = dict.fromkeys(["read unrelated", "read commune resident"], DENY)

MATRIX: dict[str, tuple[dict[str, str], str]] = {
    "anonymous": (_row(ANON), "no token: 401 before anything is read"),
    "platform system": (_row(ALLOW), "a connected system of the platform (no facility) sees all"),
    "system-admin": (_row(ALLOW), "a system administrator acts for the platform"),
    "facility system": (
        _row(ALLOW, **_RELATED_CLINICAL, break_the_glass=DENY, review_queue=DENY),
        "A's HIS sees A's patients only; systems cannot break the glass nor merge",
    ),
    "facility-admin": (
        _row(ALLOW, **_RELATED_CLINICAL, break_the_glass=DENY),
        "A's patients; merges records; not a clinician, so no break-the-glass",
    ),
    "doctor": (
        _row(ALLOW, **_RELATED_CLINICAL),
        "A's patients, and anyone in an emergency with a reason",
    ),
    "nurse": (
        _row(ALLOW, **_RELATED_CLINICAL, review_queue=DENY),
        "as a doctor, but does not merge patient records",
    ),
    "receptionist": (
        _row(
            DENY,
            read_Patient=ALLOW,
            search_Patient_by_CCCD=ALLOW,
            access_log=ALLOW,
            check_in=ALLOW,
            search_facilities=ALLOW,
        ),
        "registers and finds A's patients; no clinical data (scopes); reads the registries "
        "(its facility, rooms) for the desk",
    ),
    "pharmacist": (
        _row(
            DENY,
            read_Patient=ALLOW,
            search_Patient_by_CCCD=ALLOW,
            access_log=ALLOW,
            search_facilities=ALLOW,
        ),
        "reads A's patients and prescriptions; no observations, no registration; the registries",
    ),
    "commune-health-worker": (
        _row(
            DENY,
            read_commune_resident=ALLOW,
            check_in=ALLOW,
            search_facilities=ALLOW,
        ),
        "residents of their commune only (An lives elsewhere)",
    ),
    "analyst": (_row(DENY), "warehouse aggregates only: no record, not even a facility list"),
    "insurance-appraiser": (
        _row(DENY, read_Claim=ALLOW),
        "claims data only",
    ),
    "doctor of facility B": (
        _row(DENY, break_the_glass=ALLOW, search_facilities=ALLOW, check_in=ALLOW),
        "An (and her queued twin) are not B's patients; the glass opens Cường in an emergency",
    ),
    "citizen An": (
        _row(
            ALLOW,
            create_Observation=DENY,
            read_unrelated=DENY,
            break_the_glass=DENY,
            read_commune_resident=DENY,
            check_in=DENY,
            review_queue=DENY,
        ),
        "her own record, read-only; nobody else's",
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("matrix")
    store = SqlStore(f"sqlite:///{tmp / 'matrix.db'}")
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url="sqlite://", var_dir=tmp)
    app = create_app(settings, store)
    with TestClient(app, base_url=BASE) as api:
        tokens: TokenService = app.state.tokens

        def bearer(p: Principal) -> dict[str, str]:
            return {"Authorization": f"Bearer {tokens.issue(p)[0]}"}

        def client(facility: str | None) -> dict[str, str]:
            new = create_client(tokens.engine, f"HIS {facility}", ["system/*.cruds"], facility)
            return bearer(authenticate_client(tokens.engine, new.client_id, new.client_secret))

        def staff(
            role: str, facility: str | None = A, commune: str | None = None
        ) -> dict[str, str]:
            username = f"{role}.{facility}"  # tokens are good only while the account is active
            create_user(
                tokens.engine,
                username,
                "mật-khẩu-dài-2026",
                role,
                role,
                facility,
                commune,
                hasher=FAST_HASHER,
            )
            return bearer(
                Principal(
                    kind="staff",
                    subject=username,
                    display=role,
                    role=role,
                    facility=facility,
                    commune=commune,
                    scopes=ROLE_SCOPES[role],
                )
            )

        platform, at_a, at_b = client(None), client(A), client(B)
        w: dict[str, str] = {}
        w["an"] = api.post("/fhir/Patient/$check-in", json=_check_in(QR_AN), headers=at_a).json()[
            "id"
        ]
        api.post("/fhir/Patient/$check-in", json=_check_in(QR_BINH), headers=at_b)
        w["obs"] = api.post("/fhir/Observation", json=_obs(w["an"]), headers=at_a).json()["id"]
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
            "patient": {"reference": f"Patient/{w['an']}"},
            "created": "2026-11-20",
            "provider": {"display": "Bệnh viện A"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "BHYT"}}],
        }
        w["claim"] = api.post("/fhir/Claim", json=claim, headers=at_a).json()["id"]
        twin = {
            "resourceType": "Patient",
            "identifier": [{"system": mrn_system(A), "value": "BN-0002"}],
            "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        }
        twin_id = api.post("/fhir/Patient", json=twin, headers=at_a).json()["id"]
        task = queue_review(app.state.repository, w["an"], twin_id, 0.9, "probable")
        assert task is not None
        w["task"] = task["id"]
        cuong = {"resourceType": "Patient", "name": [{"family": "Đỗ", "given": ["Văn", "Cường"]}]}
        w["cuong"] = api.post("/fhir/Patient", json=cuong, headers=platform).json()["id"]
        province = resolve_province("Thành phố Hồ Chí Minh")
        assert province is not None
        ward = find_ward(province, "Phường Bến Thành")
        assert ward is not None
        mai = {
            "resourceType": "Patient",
            "name": [{"family": "Võ", "given": ["Thị", "Mai"]}],
            "address": [{"use": "home", "city": "Phường Bến Thành", "state": province.name}],
        }
        w["mai"] = api.post("/fhir/Patient", json=mai, headers=platform).json()["id"]
        api.post(
            "/fhir/Organization",
            json={"resourceType": "Organization", "name": "Bệnh viện A"},
            headers=platform,
        )
        callers: dict[str, dict[str, str]] = {
            "anonymous": {},
            "platform system": platform,
            "system-admin": staff("system-admin", None),
            "facility system": at_a,
            "doctor of facility B": staff("doctor", B),
            "commune-health-worker": staff("commune-health-worker", None, ward.code),
            "citizen An": bearer(citizen_principal("0987000111", w["an"])),
        }
        for role in ("facility-admin", "doctor", "nurse", "receptionist", "pharmacist"):
            callers[role] = staff(role)
        for role in ("analyst", "insurance-appraiser"):
            callers[role] = staff(role, None)
        assert set(callers) == set(MATRIX)
        w["callers"] = callers  # type: ignore[assignment]
        yield api, w
    store.close()


def _outcome(family: Family, r: httpx.Response, w: dict[str, str]) -> str:
    if r.status_code == 401:
        return ANON
    if r.status_code == 403:
        return DENY
    if r.status_code >= 500:
        return f"error {r.status_code}"
    if r.status_code not in (200, 201):
        return f"unexpected {r.status_code}: {r.text[:200]}"
    if family.shows is not None and not family.shows(r, w):
        return DENY
    return ALLOW


def test_the_matrix(world: tuple[TestClient, dict[str, Any]]) -> None:
    api, w = world
    wrong = []
    for caller, (expected, reason) in MATRIX.items():
        headers = w["callers"][caller]
        for family in FAMILIES:
            got = _outcome(family, family.call(api, headers, w), w)
            if got != expected[family.name]:
                wrong.append(
                    f"{caller} × {family.name}: expected {expected[family.name]}, got {got} "
                    f"({reason})"
                )
    assert not wrong, "\n".join(wrong)


def test_every_denial_says_why(world: tuple[TestClient, dict[str, Any]]) -> None:
    """A 403 is an OperationOutcome naming the rule, never an empty body."""
    api, w = world
    for caller in ("doctor of facility B", "analyst", "insurance-appraiser", "receptionist"):
        r = api.get(f"/fhir/Observation/{w['obs']}", headers=w["callers"][caller])
        assert r.status_code == 403
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["diagnostics"], caller
