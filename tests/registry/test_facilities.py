"""The facility and health-worker registries: valid FHIR, reproducible, complete."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from sokhoe.fhir.validation import find_issues
from sokhoe.mpi.identifiers import FACILITY, PRACTITIONER
from sokhoe.registry.facilities import (
    EMR_EXTENSION,
    LEVELS,
    OWNERSHIPS,
    FacilityRegistry,
    build_registry,
)
from sokhoe.registry.places import provinces
from sokhoe.registry.practitioners import Workforce, build_workforce


@pytest.fixture(scope="module")
def registry() -> FacilityRegistry:
    return build_registry(7)


@pytest.fixture(scope="module")
def workforce(registry: FacilityRegistry) -> Workforce:
    return build_workforce(registry)


def test_reproducible(registry: FacilityRegistry, workforce: Workforce) -> None:
    again = build_registry(7)
    assert again == registry
    assert again.resources() == registry.resources()
    assert build_workforce(again).resources() == workforce.resources()
    assert build_registry(8).resources() != registry.resources()


def test_coverage(registry: FacilityRegistry) -> None:
    assert 800 <= len(registry.facilities) <= 1300
    assert {f.province_code for f in registry.facilities} == {p.code for p in provinces()}
    assert {f.level for f in registry.facilities} == set(LEVELS)
    assert {f.ownership for f in registry.facilities} == set(OWNERSHIPS)
    per_province = Counter((f.province_code, f.level) for f in registry.facilities)
    for p in provinces():
        assert per_province[(p.code, "provincial")] == 1
        for level in ["regional", "commune", "private-clinic", "pharmacy"]:
            assert per_province[(p.code, level)] >= 2, (p.code, level)
    central = {f.province_code for f in registry.facilities if f.level == "central"}
    assert central == {"01", "46", "79"}


def test_codes(registry: FacilityRegistry) -> None:
    codes = [f.code for f in registry.facilities]
    assert len(set(codes)) == len(codes)
    for f in registry.facilities:
        assert re.fullmatch(r"\d{5}", f.code)
        assert f.code[:2] == f.province_code
    ids = [f.id for f in registry.facilities] + [a.id for a in registry.authorities]
    assert len(set(ids)) == len(ids)


def test_authorities(registry: FacilityRegistry) -> None:
    codes = {a.code for a in registry.authorities}
    assert {"BYT", "BQP", "BCA"} <= codes
    assert {f"SYT{p.code}" for p in provinces()} <= codes
    for f in registry.facilities:
        if f.level != "central":
            assert f.authority == f"SYT{f.province_code}"


def test_every_resource_valid(registry: FacilityRegistry, workforce: Workforce) -> None:
    resources = registry.resources() + workforce.resources()
    seen: Counter[str] = Counter()
    for r in resources:
        assert find_issues(r) == [], (r["resourceType"], r["id"], find_issues(r)[:3])
        seen[r["resourceType"]] += 1
    n = len(registry.facilities)
    assert seen["Organization"] == n + len(registry.authorities)
    assert seen["Location"] == n
    assert seen["Practitioner"] == seen["PractitionerRole"] == len(workforce.workers)


def _by_id(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


def test_references_resolve(registry: FacilityRegistry, workforce: Workforce) -> None:
    resources = registry.resources() + workforce.resources()
    index = _by_id(resources)
    for r in resources:
        for key in ["partOf", "managingOrganization", "practitioner", "organization"]:
            if key in r:
                assert r[key]["reference"] in index, (r["id"], key)


def test_organization_shape(registry: FacilityRegistry) -> None:
    f = next(f for f in registry.facilities if f.emr_status != "none")
    org = _by_id(registry.resources())[f"Organization/{f.id}"]
    assert org["identifier"][0] == {"use": "official", "system": FACILITY, "value": f.code}
    ext = next(e for e in org["extension"] if e["url"] == EMR_EXTENSION)
    parts = {e["url"]: e for e in ext["extension"]}
    assert parts["status"]["valueCoding"]["code"] == f.emr_status
    assert f.emr_go_live is not None
    assert parts["goLive"]["valueDate"] == f.emr_go_live.isoformat()
    assert org["partOf"]["reference"] == f"Organization/authority-{f.authority.lower()}"
    location = _by_id(registry.resources())[f"Location/{f.location_id}"]
    assert location["managingOrganization"]["reference"] == f"Organization/{f.id}"


def test_workforce(registry: FacilityRegistry, workforce: Workforce) -> None:
    numbers = [w.cchn for w in workforce.workers]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"\d{6}/[A-Z]{2,3}-CCHN", n) for n in numbers)
    staffed = {w.facility_code for w in workforce.workers}
    assert staffed == {f.code for f in registry.facilities}
    assert {w.role for w in workforce.workers} == {"doctor", "nurse", "midwife", "pharmacist"}
    first = workforce.resources()[0]
    assert first["identifier"][0]["system"] == PRACTITIONER
