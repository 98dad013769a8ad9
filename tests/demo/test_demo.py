"""The synthetic population: reproducible, valid FHIR R4, plausibly Vietnamese."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer

from sokhoe.demo import DemoSummary, write_demo
from sokhoe.demo.command import demo_command
from sokhoe.fhir.validation import find_issues
from sokhoe.mpi.identifiers import BHYT, CCCD, cccd_sex_and_year, validate_bhyt, validate_cccd
from sokhoe.registry.places import provinces


def _digest(summary: DemoSummary) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in summary.files}


def _resources(summary: DemoSummary) -> Iterator[dict[str, Any]]:
    for path in summary.files:
        if path.suffix == ".ndjson":
            for line in path.read_bytes().splitlines():
                yield orjson.loads(line)
        else:
            bundle = orjson.loads(path.read_bytes())
            assert bundle["type"] == "transaction"
            for entry in bundle["entry"]:
                resource = entry["resource"]
                assert entry["request"] == {
                    "method": "PUT",
                    "url": f"{resource['resourceType']}/{resource['id']}",
                }
                yield resource


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return write_demo(tmp_path_factory.mktemp("b"), 200, 7, "bundles")


@pytest.fixture(scope="module")
def ndjson(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return write_demo(tmp_path_factory.mktemp("n"), 200, 7, "ndjson")


@pytest.fixture(scope="module")
def patients(bundles: DemoSummary) -> list[dict[str, Any]]:
    return [r for r in _resources(bundles) if r["resourceType"] == "Patient"]


def test_reproducible(tmp_path: Path, bundles: DemoSummary) -> None:
    again = write_demo(tmp_path / "same", 200, 7, "bundles")
    assert _digest(again) == _digest(bundles)
    other = write_demo(tmp_path / "other", 200, 8, "bundles")
    assert _digest(other) != _digest(bundles)


def test_person_stable_when_population_grows(
    tmp_path: Path, patients: list[dict[str, Any]]
) -> None:
    small = write_demo(tmp_path / "small", 20, 7, "ndjson")
    first = [r for r in _resources(small) if r["resourceType"] == "Patient"]
    assert first == patients[:20]


def test_summary_and_files(bundles: DemoSummary, ndjson: DemoSummary) -> None:
    assert bundles.patients == 200
    assert [p.name for p in bundles.files][:2] == ["facilities.json", "patients-0001.json"]
    assert len(bundles.files) == 1 + 4
    assert {p.name for p in ndjson.files} == {f"{t}.ndjson" for t in ndjson.by_type}
    assert bundles.by_type == ndjson.by_type
    assert bundles.resources == sum(bundles.by_type.values())
    for rtype in [
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "Immunization",
    ]:
        assert bundles.by_type[rtype] > 0, rtype


def test_resources_per_person(tmp_path: Path) -> None:
    summary = write_demo(tmp_path, 300, 3, "ndjson")
    shared = ("Organization", "Location", "Practitioner", "PractitionerRole")
    facilities = sum(summary.by_type[t] for t in shared)
    per_person = (summary.resources - facilities) / 300
    assert 5 <= per_person <= 15


@pytest.mark.parametrize("fmt", ["bundles", "ndjson"])
def test_every_resource_valid(fmt: str, bundles: DemoSummary, ndjson: DemoSummary) -> None:
    summary = bundles if fmt == "bundles" else ndjson
    seen: Counter[str] = Counter()
    for resource in _resources(summary):
        issues = find_issues(resource)
        assert not issues, (resource["resourceType"], resource["id"], issues[:3])
        seen[resource["resourceType"]] += 1
    assert dict(seen) == summary.by_type


def test_bundle_files_valid(bundles: DemoSummary) -> None:
    for path in bundles.files[:2]:
        assert find_issues(orjson.loads(path.read_bytes())) == []


def test_identifiers_consistent(patients: list[dict[str, Any]]) -> None:
    with_card = 0
    for patient in patients:
        ids = {i["system"]: i["value"] for i in patient["identifier"]}
        sex, year = cccd_sex_and_year(validate_cccd(ids[CCCD]))
        assert sex == patient["gender"]
        assert year == date.fromisoformat(patient["birthDate"]).year
        if BHYT in ids:
            with_card += 1
            card = validate_bhyt(ids[BHYT])
            age = 2026 - year
            if age <= 4:
                assert card.startswith("TE")
        for telecom in patient.get("telecom", []):
            assert len(telecom["value"]) == 10
            assert telecom["value"][:2] in {"03", "05", "07", "08", "09"}
    assert 0.8 < with_card / len(patients) < 0.99


def test_addresses_are_real(patients: list[dict[str, Any]]) -> None:
    wards = {(p.name, w.name) for p in provinces() for w in p.wards}
    for patient in patients:
        address = patient["address"][0]
        assert (address["state"], address["city"]) in wards
        assert address["country"] == "VN"


def test_names(patients: list[dict[str, Any]]) -> None:
    families = Counter(p["name"][0]["family"] for p in patients)
    assert families.most_common(1)[0][0] == "Nguyễn"
    texts = [p["name"][0]["text"] for p in patients]
    accented = sum(unicodedata.normalize("NFD", t) != t for t in texts)
    assert accented > 0.9 * len(texts)
    assert all(unicodedata.is_normalized("NFC", t) for t in texts)


def test_dengue_season(tmp_path: Path) -> None:
    summary = write_demo(tmp_path, 400, 11, "ndjson")
    months: Counter[int] = Counter()
    for resource in _resources(summary):
        if resource["resourceType"] == "Encounter":
            codes = {c["code"] for c in resource["reasonCode"][0]["coding"]}
            if codes & {"A90", "A91"}:
                months[int(resource["period"]["start"][5:7])] += 1
    in_season = sum(n for m, n in months.items() if 6 <= m <= 11)
    assert sum(months.values()) >= 10
    assert in_season > 0.7 * sum(months.values())


def test_children_immunised(bundles: DemoSummary, patients: list[dict[str, Any]]) -> None:
    born = {p["id"]: p["birthDate"] for p in patients}
    for resource in _resources(bundles):
        if resource["resourceType"] == "Immunization":
            pid = resource["patient"]["reference"].removeprefix("Patient/")
            assert resource["occurrenceDateTime"][:10] >= born[pid]


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo_command(patients=5, seed=1, out=tmp_path, fmt="ndjson")
    assert "5 people" in capsys.readouterr().out
    with pytest.raises(typer.BadParameter):
        demo_command(patients=5, seed=1, out=tmp_path, fmt="xml")
    with pytest.raises(ValueError, match="unknown demo format"):
        write_demo(tmp_path, 1, 1, "csv")


@pytest.mark.parametrize("fmt", ["bundles", "ndjson"])
def test_loads_into_store(tmp_path: Path, fmt: str) -> None:
    from sokhoe.access.guard import platform_repository
    from sokhoe.interop.load import load_paths
    from sokhoe.store.sql import SqlStore

    summary = write_demo(tmp_path / "out", 20, 5, fmt)
    repo = platform_repository(SqlStore(f"sqlite:///{tmp_path / 'demo.db'}"), "http://test/fhir")
    # in this process: the worker processes are held to the same store in tests/interop/test_load.py
    report = load_paths(repo, [tmp_path / "out"], workers=0)
    assert report.errors == []
    assert report.resources == summary.resources
