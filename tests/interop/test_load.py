"""``sokhoe load``: worker processes change nothing but speed, and bad files change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.demo import write_demo
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import load_paths
from sokhoe.store.ports import FhirStore
from sokhoe.store.sql import SqlStore
from tests.conftest import BASE


def _snapshot(store: FhirStore) -> list[tuple[str, str, int, str | None, str]]:
    """Every current resource with its compartment and content (meta excluded)."""
    out = []
    for r in store.iter_all():
        content = dict(r.content or {})
        content.pop("meta", None)
        out.append(
            (r.resource_type, r.id, r.version_id, r.patient_id, json.dumps(content, sort_keys=True))
        )
    return out


def _search_ids(repo: FhirRepository, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    page = repo.search(repo.parse_query(rtype, params))
    return sorted(m.id for m in page.matches)


@pytest.mark.parametrize("fmt", ["bundles", "ndjson"])
def test_workers_give_the_same_store_as_inline(tmp_path: Path, fmt: str) -> None:
    data = tmp_path / "demo"
    write_demo(data, 60, 7, fmt)
    stores = []
    for workers in (0, 2):
        store = SqlStore(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        repo = platform_repository(store, f"{BASE}/fhir")
        report = load_paths(repo, [data], workers=workers)
        assert report.errors == []
        stores.append((store, repo))
    (a, repo_a), (b, repo_b) = stores
    assert _snapshot(a) == _snapshot(b)
    assert len(_snapshot(a)) > 300
    patient = next(a.iter_all("Patient"))
    queries = [
        ("Observation", [("patient", patient.id)]),
        ("Encounter", [("_lastUpdated", "gt2000-01-01")]),
        ("Patient", [("_id", patient.id)]),
        ("Condition", [("code", "I10")]),
    ]
    for rtype, params in queries:
        assert _search_ids(repo_a, rtype, params) == _search_ids(repo_b, rtype, params)
    assert _search_ids(repo_a, "Patient", [("_id", patient.id)]) == [patient.id]
    for s, _ in stores:
        s.close()


def test_a_bad_ndjson_batch_is_reported_and_changes_nothing(
    store: FhirStore, tmp_path: Path
) -> None:
    repo = platform_repository(store, f"{BASE}/fhir")
    good = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    bad = {"resourceType": "Patient", "id": "p2", "gender": "nữ"}
    (tmp_path / "Patient.ndjson").write_text(
        json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8"
    )
    (tmp_path / "Broken.ndjson").write_text('{"resourceType": "Patient", "id": "p3"\n')
    report = load_paths(repo, [tmp_path], workers=0)
    assert len(report.errors) == 2
    assert any("Patient.ndjson" in e and "gender" in e for e in report.errors)
    assert any("Broken.ndjson:1" in e and "not valid JSON" in e for e in report.errors)
    assert list(store.iter_all()) == []


def test_a_bad_bundle_file_is_reported_and_the_others_load(
    store: FhirStore, tmp_path: Path
) -> None:
    repo = platform_repository(store, f"{BASE}/fhir")

    def bundle(gender: str, pid: str) -> dict[str, object]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {"resourceType": "Patient", "id": pid, "gender": gender},
                    "request": {"method": "PUT", "url": f"Patient/{pid}"},
                }
            ],
        }

    (tmp_path / "a.json").write_text(json.dumps(bundle("male", "a")))
    (tmp_path / "b.json").write_text(json.dumps(bundle("nam", "b")))
    (tmp_path / "c.json").write_text("{")
    report = load_paths(repo, [tmp_path], workers=0)
    assert report.files == 3
    assert len(report.errors) == 2
    assert [r.id for r in store.iter_all()] == ["a"]
