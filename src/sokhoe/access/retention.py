"""Retention: how long a deleted record must still be kept, and the purge that honours it.

Deleting through the API is logical: it adds a "deleted" version and keeps every earlier one,
so the record can still be produced for a court, an insurer or the patient. The law sets how
long (Circular 33/2025 with Circular 13/2025/TT-BYT on electronic medical records): at least
10 years; 20 for psychiatric, occupational-disease and accident records (traffic and work
accidents); 30 for deaths and for organ donation or transplant. Only after that may a deleted
record be destroyed, and the purge here is the one physical delete in the platform.

The period runs from the deletion, which is never earlier than the end of the care the record
describes; counting from it errs on the side of keeping. The category is read from every
version's codes (ICD-10), and a death anywhere in the patient's record (``Patient.deceased``)
gives all of that patient's records 30 years. A live record is never purged: the lifelong
health record keeps what has not been deleted. Each purge writes an AuditEvent (the audit log
itself is never purged).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection

from sokhoe.access.audit import AuditLog
from sokhoe.access.principal import system_principal
from sokhoe.registry.sensitivity import codings, icd10_category, in_icd10_ranges
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM
from sokhoe.store.ports import FhirStore, StoredResource, StoreSession

DEFAULT_YEARS: Final = 10

_ICD10_30Y: Final = (("Z52", "Z52"), ("Z94", "Z94"))
"""Organ or tissue donors; transplanted organ status."""
_ICD10_20Y: Final = (("V01", "X59"), ("S00", "T98"), ("Z57", "Z57"), ("Y96", "Y96"))
"""Accidents (external causes V01–X59) and injuries; occupational exposure; work-related."""

PURGER: Final = system_principal("retention-purge", "Retention purge", frozenset())


@dataclass(frozen=True)
class Retention:
    years: int
    reason: str


@dataclass
class PurgeReport:
    checked: int = 0
    purged: list[tuple[str, str, Retention]] = field(default_factory=list)
    kept: int = 0
    """Deleted records still inside their retention period."""
    versions_removed: int = 0


def _deceased(content: dict[str, Any] | None) -> bool:
    if not content:
        return False
    return bool(content.get("deceasedBoolean")) or "deceasedDateTime" in content


def retention_of(versions: list[StoredResource], patient_died: bool) -> Retention:
    """The retention period of a record, from every version of it and whether its patient
    died (see the module docstring)."""
    codes = [c for v in versions for s, c in codings(v.content) if s == ICD10_SYSTEM]
    if patient_died or any(_deceased(v.content) for v in versions if v.resource_type == "Patient"):
        return Retention(30, "death")
    if any(in_icd10_ranges(c, _ICD10_30Y) for c in codes):
        return Retention(30, "organ donation or transplant")
    if any(icd10_category(c) == "PSY" for c in codes):
        return Retention(20, "psychiatric")
    if any(in_icd10_ranges(c, _ICD10_20Y) for c in codes):
        return Retention(20, "accident or occupational")
    return Retention(DEFAULT_YEARS, "medical record")


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def _all_versions(tx: StoreSession, res: StoredResource) -> list[StoredResource]:
    versions, _ = tx.history(res.resource_type, res.id, None, 10_000, 0)
    return versions


def _patient_died(tx: StoreSession, patient_id: str | None) -> bool:
    if patient_id is None:
        return False
    versions, _ = tx.history("Patient", patient_id, None, 10_000, 0)
    return any(_deceased(v.content) for v in versions)


def _audit(
    audit: AuditLog,
    tx: StoreSession,
    res: StoredResource,
    patient: str | None,
    rule: Retention,
) -> None:
    """Record the purge in the purge's own transaction, so the record is never gone without
    its audit row."""
    details: dict[str, Any] = {
        "patient_ids": [patient] if patient else [],
        "entities": [f"{res.resource_type}/{res.id}"],
        "reason": f"purged after the {rule.years}-year retention ({rule.reason})",
    }

    def record(conn: Connection) -> int:
        return audit.record_in(conn, PURGER, "delete", "success", **details)

    tx.side_tables(record)


def purge_expired(
    store: FhirStore,
    audit: AuditLog | None,
    *,
    now: datetime | None = None,
    apply: bool = False,
    batch: int = 500,
    progress: Callable[[int], object] | None = None,
) -> PurgeReport:
    """Find deleted records past their retention period; destroy them when ``apply``.

    Without ``apply`` nothing changes (a dry run reports what would go). Each record is
    decided and purged in its own short write transaction, re-reading it there, so a record
    restored (updated) meanwhile is left alone.
    """
    at = (now or datetime.now(UTC)).astimezone(UTC)
    report = PurgeReport()
    cutoff = _years_before(at, DEFAULT_YEARS)  # nothing younger can have expired
    with store.begin() as tx:
        candidates = tx.deleted_before(cutoff, 1_000_000)
    for start in range(0, len(candidates), batch):
        for res in candidates[start : start + batch]:
            report.checked += 1
            with store.begin(write=apply) as tx:
                current = tx.read(res.resource_type, res.id)
                if current is None or not current.deleted:
                    continue
                versions = _all_versions(tx, current)
                patient = next((v.patient_id for v in versions if v.patient_id), None)
                rule = retention_of(versions, _patient_died(tx, patient))
                if current.last_updated > _years_before(at, rule.years):
                    report.kept += 1
                    continue
                report.purged.append((res.resource_type, res.id, rule))
                if apply:
                    report.versions_removed += tx.purge(res.resource_type, res.id)
                    if audit is not None:
                        _audit(audit, tx, res, patient, rule)
        if progress:
            progress(min(batch, len(candidates) - start))
    return report


__all__ = ["PurgeReport", "Retention", "purge_expired", "retention_of"]
