"""Retention on every backend: a deleted record is destroyed only after its period (10, 20 or
30 years by what it is about); live records never; a dry run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.guard import platform_repository
from sokhoe.access.retention import purge_expired, retention_of
from sokhoe.cli import app
from sokhoe.fhir.repository import FhirRepository
from sokhoe.store import FhirStore
from sokhoe.store.ports import StoredResource
from sokhoe.store.sql import SqlStore
from tests.store_layouts import store_on_every_layout  # noqa: F401 (store)

ICD10 = "http://hl7.org/fhir/sid/icd-10"
NOW = datetime(2026, 11, 23, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2004, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _condition(pid: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "code": {"coding": [{"system": ICD10, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }


def _at(clock: Clock, year: int) -> None:
    clock.now = datetime(year, 6, 1, tzinfo=UTC)


def _world(repo: FhirRepository, clock: Clock) -> dict[str, str]:
    """Records made in 2004 and deleted at various dates."""
    ids: dict[str, str] = {}
    lan = repo.create({"resourceType": "Patient", "name": [{"text": "Lan"}]}, "Patient")
    pid = lan.resource.id
    dead = repo.create({"resourceType": "Patient", "deceasedBoolean": True}, "Patient")
    for key, patient, code in [
        ("flu", pid, "J11.1"),  # 10 years
        ("live", pid, "J11.1"),  # never deleted
        ("psych", pid, "F32.1"),  # 20 years
        ("crash", pid, "V43.5"),  # 20 years (accident)
        ("fracture", pid, "S72.0"),  # 20 years (injury)
        ("donor", pid, "Z52.4"),  # 30 years
        ("died", dead.resource.id, "J11.1"),  # 30 years: the patient died
        ("recent", pid, "J11.1"),  # deleted too recently
    ]:
        ids[key] = repo.create(_condition(patient, code), "Condition").resource.id
    for key, year in [
        ("flu", 2012),
        ("psych", 2010),
        ("crash", 2005),
        ("fracture", 2008),
        ("donor", 2005),
        ("died", 2005),
        ("recent", 2020),
    ]:
        _at(clock, year)
        repo.delete("Condition", ids[key])
    return ids


@pytest.fixture
def setup(store: FhirStore) -> tuple[FhirRepository, AuditLog, dict[str, str]]:
    clock = Clock()
    repo = platform_repository(store, "http://test/fhir", clock=clock)
    return repo, AuditLog(access_engine(store)), _world(repo, clock)


def _versions(store: FhirStore, rid: str) -> list[StoredResource]:
    with store.begin() as tx:
        return tx.history("Condition", rid, None, 100, 0)[0]


def test_dry_run_reports_and_changes_nothing(
    store: FhirStore, setup: tuple[FhirRepository, AuditLog, dict[str, str]]
) -> None:
    _, audit, ids = setup
    before = audit.verify().checked  # the setup's own writes, audited as they were made
    report = purge_expired(store, audit, now=NOW)
    assert {rid for _, rid, _ in report.purged} == {ids["flu"], ids["crash"]}
    assert report.checked == 6  # deleted more than 10 years before NOW
    assert report.kept == 4 and report.versions_removed == 0
    assert len(_versions(store, ids["flu"])) == 2
    assert audit.verify().checked == before


def test_purge_honours_each_period_and_is_audited(
    store: FhirStore, setup: tuple[FhirRepository, AuditLog, dict[str, str]]
) -> None:
    _, audit, ids = setup
    report = purge_expired(store, audit, now=NOW, apply=True)
    gone = {rid: rule for _, rid, rule in report.purged}
    assert set(gone) == {ids["flu"], ids["crash"]}
    assert gone[ids["flu"]].years == 10 and gone[ids["crash"]].years == 20
    assert report.versions_removed == 4
    for key in ("flu", "crash"):
        assert _versions(store, ids[key]) == []
        with store.begin() as tx:
            assert tx.read("Condition", ids[key]) is None
    for key in ("psych", "fracture", "donor", "died", "recent"):
        assert len(_versions(store, ids[key])) == 2, key
    with store.begin() as tx:
        live = tx.read("Condition", ids["live"])
    assert live is not None and not live.deleted
    # the audit log says what went, and why
    events, _ = audit.for_patient([_patient(store, ids["psych"])])
    reasons = sorted(
        e["outcomeDesc"] for e in events if e.get("outcomeDesc", "").startswith("purged")
    )
    assert reasons == [
        "purged after the 10-year retention (medical record)",
        "purged after the 20-year retention (accident or occupational)",
    ]
    assert audit.verify().ok
    # by 2031 the psychiatric (2010 + 20) and injury (2008 + 20) records have expired too
    later = datetime(2031, 1, 1, tzinfo=UTC)
    again = purge_expired(store, audit, now=later, apply=True)
    assert {rid for _, rid, _ in again.purged} == {ids["psych"], ids["fracture"], ids["recent"]}
    assert len(_versions(store, ids["donor"])) == len(_versions(store, ids["died"])) == 2


def _patient(store: FhirStore, rid: str) -> str:
    found = [v.patient_id for v in _versions(store, rid) if v.patient_id]
    assert found
    return found[0]


def test_retention_rules() -> None:
    def version(rtype: str, content: dict[str, Any]) -> StoredResource:
        return StoredResource(rtype, "x", 1, NOW, False, content, None)

    assert retention_of([version("Condition", _condition("p", "I10"))], False).years == 10
    assert retention_of([version("Condition", _condition("p", "I10"))], True).years == 30
    assert retention_of([version("Condition", _condition("p", "F20"))], False).years == 20
    assert retention_of([version("Condition", _condition("p", "Z94.0"))], False).years == 30
    assert retention_of([version("Condition", _condition("p", "Z57.1"))], False).years == 20
    assert retention_of([version("Patient", {"deceasedDateTime": "2001"})], False).years == 30


def test_retention_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = SqlStore(url)
    try:
        clock = Clock()
        ids = _world(platform_repository(store, "http://test/fhir", clock=clock), clock)
    finally:
        store.close()
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "purge", "--db", url])
    assert dry.exit_code == 0, dry.output
    assert "would purge 2" in dry.output and "dry run" in dry.output
    done = runner.invoke(app, ["retention", "purge", "--db", url, "--apply"])
    assert done.exit_code == 0, done.output
    assert "purged 2" in done.output
    store = SqlStore(url)
    try:
        assert _versions(store, ids["flu"]) == []
        assert len(_versions(store, ids["psych"])) == 2
    finally:
        store.close()
