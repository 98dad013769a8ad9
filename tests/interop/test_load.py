"""``sokhoe load``: worker processes change nothing but speed, and bad files change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.demo import write_demo
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import load_paths
from sokhoe.mpi.identifiers import BHYT, CCCD
from sokhoe.registry.sensitivity import ACT_CODE
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM
from sokhoe.store.ports import FhirStore
from sokhoe.store.sql import SqlStore
from tests.conftest import BASE


def _snapshot(store: FhirStore) -> list[tuple[str, str, int, str | None, str]]:
    """Every current resource with its compartment and content (the server's stamps left out;
    the labels the platform adds in ``meta.security`` kept)."""
    out = []
    for r in store.iter_all():
        content = dict(r.content or {})
        meta = {k: v for k, v in content.pop("meta", {}).items() if k not in STAMPS}
        if meta:
            content["meta"] = meta
        out.append(
            (r.resource_type, r.id, r.version_id, r.patient_id, json.dumps(content, sort_keys=True))
        )
    return out


def _search_ids(repo: FhirRepository, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    page = repo.search(repo.parse_query(rtype, params))
    return sorted(m.id for m in page.matches)


STAMPS = {"versionId", "lastUpdated"}

NORMALISED = [
    {
        "resourceType": "Patient",
        "id": "p-norm",
        "identifier": [
            {"system": CCCD, "value": "001 085 012345"},
            {"system": BHYT, "value": "dn4791234567890"},
        ],
        "name": [{"family": "Trần", "given": ["Thị", "Hoa"]}],
    },
    {
        "resourceType": "Condition",
        "id": "c-norm",
        "subject": {"reference": "Patient/p-norm"},
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": "F32.1"}]},
        "meta": {"security": [{"system": ACT_CODE, "code": "HIV"}]},
    },
    {
        "resourceType": "Observation",
        "id": "o-norm",
        "status": "final",
        "subject": {"reference": "Patient/p-norm"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "7917-8"}]},
    },
]
"""Resources the platform rules change in place: identifiers made canonical, sensitivity
labels added (beside one a facility set by hand)."""


def _write_normalised(folder: Path, fmt: str) -> None:
    if fmt == "ndjson":
        for r in NORMALISED:
            with (folder / f"{r['resourceType']}.ndjson").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    # a bundle's references to its own entries are rewritten by the writer after the workers
    # checked them
    linked = [
        {**r, "subject": {"reference": "urn:uuid:p-norm"}} if "subject" in r else r
        for r in NORMALISED
    ]
    entries = [
        {
            "fullUrl": f"urn:uuid:{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in linked
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    (folder / "normalised.json").write_text(json.dumps(bundle, ensure_ascii=False), "utf-8")


@pytest.mark.parametrize("fmt", ["bundles", "ndjson"])
def test_workers_give_the_same_store_as_inline(tmp_path: Path, fmt: str) -> None:
    """Worker processes run the validator and the platform rules; the writer then makes the
    workers' in-place changes on its own copy (``fhir.precheck``): the stored records must be
    those of a load that ran every rule in the writer."""
    data = tmp_path / "demo"
    write_demo(data, 60, 7, fmt)
    _write_normalised(data, fmt)
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
    for store in (a, b):
        held = {(r.resource_type, r.id): r.content or {} for r in store.iter_all()}
        values = [i["value"] for i in held[("Patient", "p-norm")]["identifier"]]
        assert values == ["001085012345", "DN4791234567890"]
        labels = {(r.resource_type, r.id): r.labels for r in store.iter_all()}
        assert labels[("Condition", "c-norm")] == "HIV,PSY"
        assert labels[("Observation", "o-norm")] == "HIV"
        security = held[("Condition", "c-norm")]["meta"]["security"]
        assert [s["code"] for s in security] == ["HIV", "PSY"]
    for rtype, params in [
        ("Patient", [("identifier", f"{CCCD}|001085012345")]),
        ("Condition", [("_security", f"{ACT_CODE}|PSY")]),
        ("Observation", [("_security", f"{ACT_CODE}|HIV")]),
        ("Condition", [("patient", "Patient/p-norm")]),
        ("Observation", [("subject", "Patient/p-norm")]),
    ]:
        assert _search_ids(repo_a, rtype, params) == _search_ids(repo_b, rtype, params)
        assert len(_search_ids(repo_b, rtype, params)) == 1
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
