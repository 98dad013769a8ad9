"""Export one facility-day of encounters as signed appraisal XML files.

For each encounter of the facility whose period starts on the day (local time): gather the
record through the access door, build the tables, validate them, run the appraiser-style
checks, and write ``<out>/<CODE>/<YYYY-MM-DD>/<MACSKCB>_<YYYYMMDD>_<MA_LK>.xml`` (plus the
check-in under ``checkin/`` when one is due) only if no error was found. ``report.json`` in the
same folder lists every file, every problem and warning, and the batch totals.

Files are reproducible: the same record, price list, certificate and creation date give the
same bytes (``MA_LK`` is the Encounter id, the signature is deterministic), so running the
export twice rewrites identical files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.policy import Policy
from sokhoe.access.principal import system_principal
from sokhoe.interop.claims.build import Claim, build_claim
from sokhoe.interop.claims.catalogue import Catalogue, demo_catalogue
from sokhoe.interop.claims.checks import DEFAULT_WINDOW, overlapping_prescriptions, repeated_tests
from sokhoe.interop.claims.envelope import checkin_document, claim_document, signed_bytes
from sokhoe.interop.claims.signing import SigningKey
from sokhoe.interop.claims.sources import (
    VIETNAM_TZ,
    encounters_on,
    find_facility,
    gather,
)
from sokhoe.interop.claims.validate import Problem, errors, validate_claim
from sokhoe.store.ports import FhirStore

EXPORT_PRINCIPAL = system_principal("claims-export", "claims export", frozenset({"system/*.rs"}))
"""The platform's export job: reads every facility's data (the checks need the shared record),
writes nothing."""


def export_repository(store: FhirStore, base_url: str) -> GuardedRepository:
    """The guarded, audited repository the export reads through (no ``source``: the audit's
    source is a network address, and a local batch job has no peer)."""
    return GuardedRepository(
        store,
        EXPORT_PRINCIPAL,
        Policy(store),
        AuditLog(access_engine(store)),
        base_url=base_url,
    )


@dataclass
class ExportOptions:
    facility: str
    day: date
    out: Path
    key: SigningKey
    catalogue: Catalogue = field(default_factory=demo_catalogue)
    window: timedelta = DEFAULT_WINDOW
    created: date | None = None
    """``NGAYLAP``; default: today in Vietnam."""


@dataclass
class EncounterResult:
    """What happened to one encounter."""

    ma_lk: str
    patient_id: str
    insured: bool
    file: Path | None
    checkin: Path | None
    problems: list[Problem]
    total: Decimal = Decimal(0)
    insurance: Decimal = Decimal(0)

    @property
    def withheld(self) -> bool:
        return self.file is None


@dataclass
class ExportReport:
    facility: str
    day: date
    folder: Path
    results: list[EncounterResult] = field(default_factory=list)
    certificate: str = ""

    @property
    def written(self) -> list[EncounterResult]:
        return [r for r in self.results if not r.withheld]

    @property
    def withheld(self) -> list[EncounterResult]:
        return [r for r in self.results if r.withheld]

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self.results for p in r.problems]

    def as_json(self) -> dict[str, Any]:
        written = self.written
        return {
            "facility": self.facility,
            "date": self.day.isoformat(),
            "certificate": self.certificate,
            "summary": {
                "encounters": len(self.results),
                "written": len(written),
                "withheld": len(self.withheld),
                "insured": sum(1 for r in written if r.insured),
                "errors": sum(1 for p in self.problems if p.severity == "error"),
                "warnings": sum(1 for p in self.problems if p.severity == "warning"),
                "T_TONGCHI_BV": str(sum((r.total for r in written), Decimal(0))),
                "T_BHTT": str(sum((r.insurance for r in written), Decimal(0))),
            },
            "encounters": [
                {
                    "MA_LK": r.ma_lk,
                    "patient": f"Patient/{r.patient_id}",
                    "insured": r.insured,
                    "file": r.file.name if r.file else None,
                    "checkin": f"checkin/{r.checkin.name}" if r.checkin else None,
                    "withheld": r.withheld,
                    "T_TONGCHI_BV": str(r.total),
                    "T_BHTT": str(r.insurance),
                }
                for r in self.results
            ],
            "problems": [p.as_dict() for p in self.problems],
        }


def file_name(facility: str, day: date, ma_lk: str) -> str:
    """``<MACSKCB>_<YYYYMMDD>_<MA_LK>.xml``."""
    return f"{facility}_{day.strftime('%Y%m%d')}_{ma_lk}.xml"


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary name so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def export_day(
    repo: GuardedRepository,
    options: ExportOptions,
    progress: Callable[[int], object] | None = None,
    on_total: Callable[[int], object] | None = None,
) -> ExportReport:
    """Export every encounter of ``options.facility`` on ``options.day`` (module docstring)."""
    facility = find_facility(repo, options.facility)
    folder = options.out / options.facility / options.day.isoformat()
    created = options.created or datetime.now(VIETNAM_TZ).date()
    report = ExportReport(options.facility, options.day, folder)
    report.certificate = options.key.certificate.subject.rfc4514_string()
    encounters = encounters_on(repo, facility, options.day)
    if on_total:
        on_total(len(encounters))
    for encounter in encounters:
        record = gather(repo, facility, encounter)
        claim = build_claim(record, options.catalogue)
        problems = [*claim.problems, *validate_claim(claim.ma_lk, _all_tables(claim))]
        problems += repeated_tests(repo, record, options.catalogue, options.window)
        problems += overlapping_prescriptions(repo, record, options.catalogue)
        result = EncounterResult(claim.ma_lk, claim.patient_id, claim.insured, None, None, problems)
        name = file_name(options.facility, options.day, claim.ma_lk)
        if errors(problems):
            for stale in (folder / name, folder / "checkin" / name):
                stale.unlink(missing_ok=True)  # an earlier run's file is no longer valid
            _audit(repo, claim, "error", f"withheld: {len(errors(problems))} errors")
        else:
            document = claim_document(options.facility, created, claim.tables)
            result.file = folder / name
            _write(result.file, signed_bytes(document, options.key))
            if claim.checkin:
                result.checkin = folder / "checkin" / name
                _write(result.checkin, signed_bytes(checkin_document(claim.checkin), options.key))
            summary = claim.tables["XML1"][0]
            result.total = Decimal(summary["T_TONGCHI_BV"])
            result.insurance = Decimal(summary["T_BHTT"])
            _audit(repo, claim, "success", None)
        report.results.append(result)
        if progress:
            progress(1)
    folder.mkdir(parents=True, exist_ok=True)
    _write(
        folder / "report.json",
        json.dumps(report.as_json(), ensure_ascii=False, indent=2).encode("utf-8"),
    )
    return report


def _all_tables(claim: Claim) -> dict[str, list[dict[str, str]]]:
    tables = dict(claim.tables)
    if claim.checkin:
        tables["XML0"] = claim.checkin
    return tables


def _audit(repo: GuardedRepository, claim: Claim, outcome: str, reason: str | None) -> None:
    """One ``export`` AuditEvent per encounter (the citizen sees who sent their visit out)."""
    if repo.auditor is None:
        return
    repo.auditor.record(
        repo.principal,
        "export",
        outcome,
        patient_ids=[claim.patient_id] if claim.patient_id else [],
        entities=[f"Encounter/{claim.ma_lk}"],
        reason=reason,
        source=repo.source,
    )
