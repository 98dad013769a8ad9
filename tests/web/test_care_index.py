"""The care-relationship index over HTTP: merges spread only proven relationships, referrals
open the record to the facility they name, and the index is rebuilt from the records.

Facility B registered Bình, with a lab result; facility A knows her CCCD and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sokhoe.access.index import rebuild
from sokhoe.config import Settings
from sokhoe.mpi.identifiers import CCCD, FACILITY
from sokhoe.store.ports import FhirStore
from sokhoe.web.app import create_app
from tests.api_helpers import client_auth, give_phone, observation, prove_presence
from tests.conftest import BASE, platform_token

A, B = "79001", "01002"
CCCD_X = "001301004567"
QR_X = f"{CCCD_X}|Trần Thị Bình|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022"


@pytest.fixture
def world(store: FhirStore, tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings(base_url=BASE, database_url="sqlite://", var_dir=tmp_path)
    with TestClient(create_app(settings, store), base_url=BASE) as api:
        platform = {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]
        a, b = client_auth(api, ["system/*.cruds"], A), client_auth(api, ["system/*.cruds"], B)
        orgs = {}
        for code in (A, B):
            org = {
                "resourceType": "Organization",
                "identifier": [{"system": FACILITY, "value": code}],
            }
            orgs[code] = api.post("/fhir/Organization", json=org, headers=platform).json()["id"]
        body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": QR_X}]}
        x = api.post("/fhir/Patient/$check-in", json=body, headers=b).json()["id"]
        give_phone(api, b, x, "0987000111")
        obs = api.post("/fhir/Observation", json=observation(x), headers=b).json()["id"]
        yield {"api": api, "platform": platform, "a": a, "b": b, "x": x, "obs": obs, "orgs": orgs}


def _merge(w: dict[str, Any], source: str, target: str) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
            {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
            {"name": "reason", "valueString": "the same CCCD"},
            {"name": "performer", "valueString": "registry officer"},
        ],
    }
    r = w["api"].post("/fhir/Patient/$merge", json=body, headers=w["platform"])
    assert r.status_code == 200, r.text


def test_a_record_made_from_a_known_number_opens_nothing_once_merged(
    world: dict[str, Any],
) -> None:
    """A registers a new record with Bình's CCCD (no proof she was there) and waits for the
    patient index to merge it into her real one: A still reads only what it wrote."""
    api, a, x, obs = world["api"], world["a"], world["x"], world["obs"]
    twin = {
        "resourceType": "Patient",
        "identifier": [{"system": CCCD, "value": CCCD_X}],
        "name": [{"family": "Trần", "given": ["Thị", "Bình"]}],
    }
    made = api.post("/fhir/Patient", json=twin, headers=a)
    assert made.status_code == 201
    p2 = made.json()["id"]
    mine = api.post("/fhir/Observation", json=observation(p2), headers=a).json()["id"]
    _merge(world, p2, x)
    assert api.get(f"/fhir/Observation/{obs}", headers=a).status_code == 403
    assert api.get(f"/fhir/Patient/{x}", headers=a).status_code == 403
    assert api.get(f"/fhir/Patient/{x}/$everything", headers=a).status_code == 403
    found = api.get("/fhir/Observation", params={"patient": x}, headers=a).json()
    assert {e["resource"]["id"] for e in found.get("entry", [])} == {mine}  # its own only
    # B registered Bình from her card too: no more proof than A had, so B does not see what A
    # wrote on the other record either...
    b = world["b"]
    everything = api.get(f"/fhir/Patient/{x}/$everything", headers=b).json()
    seen = {e["resource"]["id"] for e in everything["entry"]}
    assert {obs, x} <= seen and mine not in seen
    # ...until she reads out the code sent to her phone: then the whole person opens
    prove_presence(api, b, x)
    everything = api.get(f"/fhir/Patient/{x}/$everything", headers=b).json()
    assert {obs, mine, x, p2} <= {e["resource"]["id"] for e in everything["entry"]}
    prove_presence(api, a, x)
    assert api.get(f"/fhir/Observation/{obs}", headers=a).status_code == 200


def test_a_referral_opens_the_record_to_the_facility_it_names(world: dict[str, Any]) -> None:
    api, a, b, x, obs = world["api"], world["a"], world["b"], world["x"], world["obs"]
    referral = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
        "subject": {"reference": f"Patient/{x}"},
        "performer": [{"reference": f"Organization/{world['orgs'][A]}"}],
    }
    # A, with no relationship, cannot refer her anywhere (nor to itself)
    assert api.post("/fhir/ServiceRequest", json=referral, headers=a).status_code == 403
    assert api.get(f"/fhir/Observation/{obs}", headers=a).status_code == 403
    made = api.post("/fhir/ServiceRequest", json=referral, headers=b)
    assert made.status_code == 201, made.text
    assert api.get(f"/fhir/Observation/{obs}", headers=a).status_code == 200
    # revoked, the door closes again
    revoked = {**made.json(), "status": "revoked"}
    revoked.pop("meta")
    assert (
        api.put(f"/fhir/ServiceRequest/{revoked['id']}", json=revoked, headers=b).status_code == 200
    )
    assert api.get(f"/fhir/Observation/{obs}", headers=a).status_code == 403


def test_the_index_is_rebuilt_from_the_records(world: dict[str, Any], store: FhirStore) -> None:
    """A database written before the index existed gets it derived from its records: the
    registering facility's record number, as the platform had loaded them, and her home
    commune (the card's "Xã Đông Anh, Hà Nội", coded 00454 at check-in) for its health
    worker."""
    api, b, x, obs = world["api"], world["b"], world["x"], world["obs"]
    with store.begin(write=True) as tx:
        tx.unrelate(tx.care([x]))
    assert api.get(f"/fhir/Observation/{obs}", headers=b).status_code == 200  # its own, still
    assert api.get(f"/fhir/Patient/{x}", headers=b).status_code == 200  # created it: owner
    assert api.get(f"/fhir/Observation/{obs}", headers=world["a"]).status_code == 403
    rebuild(store)
    with store.begin() as tx:
        rows = tx.care([x])
    assert {(r.grantee, r.source, r.proven) for r in rows} == {
        (f"facility:{B}", "mrn", True),
        ("commune:00454", "address", True),
    }
    assert api.get(f"/fhir/Observation/{obs}", headers=world["a"]).status_code == 403
