"""The catalogue in the store: the reference list on start, imports as versions, atomicity.

Every test runs on memory, SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import pytest

from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.bootstrap import publish_registry
from sokhoe.prescribing import (
    CatalogueEntry,
    Ingredient,
    catalogue_versions,
    classes_of,
    current_entries,
    current_medications,
    entry_at,
    import_catalogue,
    reference_entries,
)
from sokhoe.store import FhirStore

BASE = "http://testserver/fhir"


def repo_on(store: FhirStore) -> GuardedRepository:
    return platform_repository(store, BASE)


def drug(code: str, name: str, strength: str = "500mg", **flags: bool) -> CatalogueEntry:
    return CatalogueEntry(code, name, (Ingredient(name.split()[0], strength),), "Viên", **flags)


def test_empty_store_gets_the_reference_list_and_a_restart_changes_nothing(
    store: FhirStore,
) -> None:
    repo = repo_on(store)
    assert publish_registry(repo) > 300
    stored = current_medications(repo)
    assert len(stored) == len(reference_entries())
    by_code = {m["code"]["coding"][0]["code"]: m for m in stored}
    for entry in reference_entries():  # every N/H medicine carries its flag in FHIR
        flags = classes_of(by_code[entry.code])
        assert ("narcotic" in flags) == entry.narcotic, entry.code
        assert ("psychotropic-precursor" in flags) == entry.psychotropic, entry.code
        if entry.narcotic or entry.psychotropic:
            assert "prescription-only" in flags
    assert repo.read("NamingSystem", "so-dang-ky").content is not None

    assert publish_registry(repo) == 0  # the second start
    assert [v.version for v in catalogue_versions(repo, "sokhoe")] == [1]
    assert repo.read("Medication", "sokhoe-PARACETAMOL-500").version_id == 1
    assert repo.read("ValueSet", "drug-catalogue-sokhoe").version_id == 1


def test_an_import_is_a_new_version_and_earlier_versions_stay_readable(store: FhirStore) -> None:
    repo = repo_on(store)
    first = [
        drug("P1", "Paracetamol 500mg"),
        drug("A1", "Amoxicilin 500mg", prescription_only=True),
    ]
    report = import_catalogue(repo, "byt", first, label="list-1.csv")
    assert (report.version, report.created, report.new_version) == (1, 2, True)

    second = [
        drug("P1", "Paracetamol 500mg"),  # unchanged
        drug("D1", "Diazepam 5mg", "5mg", prescription_only=True, psychotropic=True),  # new
    ]
    report = import_catalogue(repo, "byt", second, label="list-2.xlsx")
    assert (report.version, report.created, report.retired, report.unchanged) == (2, 1, 1, 1)
    changed = [drug("P1", "Paracetamol 500mg viên sủi"), second[1]]
    report = import_catalogue(repo, "byt", changed, label="list-3.csv")
    assert (report.version, report.changed, report.unchanged) == (3, 1, 1)

    again = import_catalogue(repo, "byt", changed, label="list-3 again")
    assert (again.version, again.new_version, again.unchanged) == (3, False, 2)
    versions = catalogue_versions(repo, "byt")
    assert [v.version for v in versions] == [1, 2, 3]
    assert "list-2.xlsx" in versions[1].description

    assert [e.code for e in current_entries(repo, "byt")] == ["D1", "P1"]
    assert repo.read("Medication", "byt-A1").content["status"] == "inactive"  # type: ignore[index]
    assert repo.read("Medication", "byt-D1").version_id == 1  # untouched by version 3
    v1 = entry_at(repo, "byt", "A1", 1)
    assert v1 is not None and v1["code"]["text"] == "Amoxicilin 500mg"
    assert entry_at(repo, "byt", "A1", 2) is None  # withdrawn in version 2
    assert entry_at(repo, "byt", "D1", 1) is None  # not there yet
    old, new = entry_at(repo, "byt", "P1", 2), entry_at(repo, "byt", "P1")
    assert old is not None and old["code"]["text"] == "Paracetamol 500mg"
    assert new is not None and new["code"]["text"] == "Paracetamol 500mg viên sủi"
    # one source's import leaves the others alone
    import_catalogue(repo, "01001", [drug("X", "Xuyên tâm liên")], label="facility list")
    assert len(current_entries(repo)) == 3
    assert [e.code for e in current_entries(repo, "byt")] == ["D1", "P1"]


def test_an_import_that_fails_half_way_changes_nothing(store: FhirStore) -> None:
    repo = repo_on(store)
    import_catalogue(repo, "byt", [drug("P1", "Paracetamol 500mg")], label="v1")
    seen: list[int] = []

    def fail_on_third(n: int) -> None:
        seen.append(n)
        if len(seen) == 3:
            raise RuntimeError("disk full")

    bigger = [drug(f"N{i}", f"Thuốc {i}") for i in range(5)]
    with pytest.raises(RuntimeError, match="disk full"):
        import_catalogue(repo, "byt", bigger, label="v2", progress=fail_on_third)
    assert [e.code for e in current_entries(repo, "byt")] == ["P1"]
    assert [v.version for v in catalogue_versions(repo, "byt")] == [1]
    assert entry_at(repo, "byt", "N0") is None
