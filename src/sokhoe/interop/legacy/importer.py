"""Import a legacy export: each row found or created by its business identifiers, through the
access door, in per-row or whole-file transactions, or as a dry run.

**Idempotent.** Every resource is keyed by an identifier of the facility: the Patient by the
facility's record number (or, the first time, by CCCD: the person registered elsewhere gains
the record number), the Encounter by the visit number, each Condition by visit number + ICD-10
code. Rows are written as conditional creates/updates on those keys, and the content depends
only on the row and the stored record, so an unchanged row makes no new version: running an
import twice creates nothing twice and the second report says ``unchanged``.

**Transactions.** By default each row is its own transaction: a bad row is reported and the
others go on. ``all_or_nothing`` makes the file one transaction, committed only when every row
is good. A dry run validates every row exactly as an import would (mapping, parsing, FHIR and
identifier validation, look-ups, access) inside one transaction that is always rolled back,
so a visit of a patient created earlier in the same dry run is found; nothing is written.

**Access.** The import acts as a connected system of the facility and runs as the
``legacy-import`` operation of the access door, audited in its transactions (a dry run's are
rolled back with it). Registering people makes them the facility's patients; a person found
by CCCD alone (first seen elsewhere) gains the facility's record number as at a check-in by
number, which lets the facility write their visits but not read what other facilities wrote
(knowing a number is not presence), and must still agree with the row on birth date and
family name. A visit needs a relationship between the facility and its patient.

The Encounter and Conditions of a visit refer to each other, so their ids are resolved (or
assigned) first, in the row's transaction; a new one is then written under the id assigned
(a conditional update that matches nothing takes an id of the server's choosing), an existing
one with a conditional update on its identifier, which refuses a key that has become
ambiguous meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sokhoe.access.care import OWN, WINDOW, grant
from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import FhirError, InvalidRequest
from sokhoe.fhir.repository import Outcome, validated
from sokhoe.fhir.resources import new_id, same_content
from sokhoe.interop.legacy import lookup, records
from sokhoe.interop.legacy.access import import_principal
from sokhoe.interop.legacy.fields import RowError, RowFields
from sokhoe.interop.legacy.mapping import BoundMapping, Mapping
from sokhoe.interop.legacy.reader import Cell, cell_text, open_table
from sokhoe.interop.legacy.report import ImportReport, RowResult, Status
from sokhoe.mpi.identifiers import CCCD, FACILITY, PRACTITIONER, mrn_system
from sokhoe.search.parse import escape_value
from sokhoe.store.ports import StoredResource, StoreSession

Progress = Callable[[Iterable[tuple[int, list[Cell]]]], Iterable[tuple[int, list[Cell]]]]


@dataclass(frozen=True)
class Job:
    """One file to import with its (facility-bound) mapping."""

    path: Path
    mapping: Mapping


class _Rollback(Exception):
    """Ends a dry run or a failed all-or-nothing import: the transaction is dropped."""


@dataclass
class _Written:
    """What one row did, for its report line and its audit event."""

    status: Status
    resources: list[str]
    patient_id: str


class LegacyImporter:
    """Imports the exports of one facility (see the module docstring)."""

    def __init__(
        self,
        door: GuardedRepository,
        facility: str,
        *,
        today: date | None = None,
        source: str | None = None,
    ) -> None:
        self.facility = facility
        self.today = today or door.clock().date()
        self.organization = self._organization(door.for_caller(import_principal(facility)))
        name = (self.organization.content or {}).get("name")
        self.principal = import_principal(facility, name)
        self.repo = door.for_caller(self.principal, source=source, audit_reads=True)
        self.source = source
        self._created: set[str] = set()
        """Patients created by this importer (also inside a dry run that is rolled back)."""

    def _session(self) -> Any:
        """One transaction of the import, as its operation of the door."""
        return self.repo.operation("legacy-import", reason=self.source)

    def _organization(self, guard: GuardedRepository) -> StoredResource:
        query = guard.parse_query(
            "Organization", [("identifier", f"{FACILITY}|{self.facility}")], strict=True
        )
        found = guard.search(query).matches
        if not found or found[0].content is None:
            raise InvalidRequest(
                f"Facility {self.facility} is not in the registry (no Organization with "
                f"identifier {FACILITY}|{self.facility})",
                "facility",
            )
        return found[0]

    # -- running -----------------------------------------------------------------------
    def run(
        self,
        jobs: Sequence[Job],
        *,
        dry_run: bool = False,
        all_or_nothing: bool = False,
        progress: Progress | None = None,
    ) -> list[ImportReport]:
        """Import the files in order (patients before their visits); one report per file.

        With ``dry_run`` or ``all_or_nothing`` all the files share one transaction.
        """
        reports = [
            ImportReport(str(j.path), j.mapping.kind, self.facility, dry_run, all_or_nothing)
            for j in jobs
        ]
        show = progress or (lambda rows: rows)
        if not (dry_run or all_or_nothing):
            for job, report in zip(jobs, reports, strict=True):
                self._per_row(job, report, show)
            return reports
        for job in jobs:
            self._authorise(job.mapping.kind)
        try:
            with self._session() as tx:
                for job, report in zip(jobs, reports, strict=True):
                    for result, _written in self._rows(job, report, show, tx):
                        report.rows.append(result)
                if dry_run or any(r.failed for r in reports):
                    raise _Rollback
        except _Rollback:
            # nothing was written, and the audit rows of the writes went with them
            self._created.clear()
            return reports
        for report in reports:
            report.committed = True
        return reports

    def _per_row(self, job: Job, report: ImportReport, show: Progress) -> None:
        opened = self._table_rows(job, report)
        if opened is None:
            return
        bound, rows = opened
        for number, cells in show(rows):
            try:
                with self._session() as tx:
                    result, _written = self._row(job.mapping.kind, bound, number, cells, tx)
            except (RowError, FhirError) as exc:
                result = _error(number, bound, cells, exc)
            report.rows.append(result)
        report.committed = True

    def _rows(
        self, job: Job, report: ImportReport, show: Progress, tx: StoreSession
    ) -> Iterator[tuple[RowResult, _Written | None]]:
        opened = self._table_rows(job, report)
        if opened is None:
            return
        bound, rows = opened
        for number, cells in show(rows):
            try:
                yield self._row(job.mapping.kind, bound, number, cells, tx)
            except (RowError, FhirError) as exc:
                yield _error(number, bound, cells, exc), None

    def _table_rows(
        self, job: Job, report: ImportReport
    ) -> tuple[BoundMapping, Iterator[tuple[int, list[Cell]]]] | None:
        """The bound mapping and the data rows of the file, or None (and ``report.fatal``)
        when it cannot be read.

        The table stays open while the generator is consumed; the generator closes it."""
        m = job.mapping
        try:
            self._authorise(m.kind)
            stack = ExitStack()
            table = stack.enter_context(
                open_table(
                    job.path,
                    header_row=m.header_row,
                    sheet=m.sheet,
                    encoding=m.encoding,
                    delimiter=m.delimiter,
                )
            )
            try:
                bound = m.bind(table.header)
            except BaseException:
                stack.close()
                raise
        except FhirError as exc:
            report.fatal = str(exc)
            return None
        report.encoding, report.delimiter = table.encoding, table.delimiter

        def rows() -> Iterator[tuple[int, list[Cell]]]:
            with stack:
                yield from table.rows

        return bound, rows()

    def _authorise(self, kind: str) -> None:
        for rtype in ("Patient",) if kind == "patients" else ("Encounter", "Condition"):
            self.repo.require_scope(rtype, "create")
            self.repo.require_scope(rtype, "update")

    def _row(
        self, kind: str, bound: BoundMapping, number: int, cells: list[Cell], tx: StoreSession
    ) -> tuple[RowResult, _Written]:
        fields = RowFields(bound, cells, self.today)
        if kind == "patients":
            prow = records.read_patient(fields)
            written = self._patient(tx, prow)
            key = prow.mrn
        else:
            vrow = records.read_visit(fields)
            written = self._visit(tx, vrow)
            key = vrow.visit_number
        result = RowResult(number, written.status, key, written.resources, [], fields.warnings)
        return result, written

    # -- patients ----------------------------------------------------------------------
    def _patient(self, tx: StoreSession, row: records.PatientRow) -> _Written:
        mrn_sys = mrn_system(self.facility)
        by_mrn = lookup.find_patient(self.repo, tx, mrn_sys, row.mrn)
        by_cccd = lookup.find_patient(self.repo, tx, CCCD, row.cccd) if row.cccd else None
        if by_mrn and by_cccd and by_mrn.id != by_cccd.id:
            raise RowError(
                [
                    f"record number {row.mrn} is Patient/{by_mrn.id} but CCCD {row.cccd} is "
                    f"Patient/{by_cccd.id}; merge them in the review queue first"
                ]
            )
        found = by_mrn or by_cccd
        if by_mrn is None and by_cccd is not None:
            other = records.current_identifier(by_cccd.content or {}, mrn_sys)
            if other is not None and other != row.mrn:
                raise RowError(
                    [
                        f"CCCD {row.cccd} already has record number {other} at this facility "
                        f"(Patient/{by_cccd.id}); is {row.mrn} a duplicate in the old system?"
                    ]
                )
            differences = records.demographic_conflicts(by_cccd.content or {}, row)
            if differences:
                raise RowError(
                    [
                        f"CCCD {row.cccd} is registered to a person whose "
                        + " and ".join(differences)
                        + "; check the number (a mistyped ID would give this facility "
                        "another person's record)"
                    ]
                )
        content = records.patient_content(
            found.content if found else None,
            row,
            self.facility,
            self.today,
            authoritative=by_mrn is not None or found is None,
        )
        validated(content, "Patient")
        if found is None:
            query = urlencode({"identifier": f"{mrn_sys}|{escape_value(row.mrn)}"})
            outcome = self.repo.create(content, "Patient", if_none_exist=query, tx=tx)
            self._created.add(outcome.resource.id)
        else:
            outcome = self.repo.update(content, "Patient", found.id, tx=tx)
            if by_mrn is None and self.repo.standing(tx, found.id) is None:
                now = self.repo.clock()  # knowing a number is not presence (module docstring)
                grant(
                    tx,
                    found.id,
                    f"facility:{self.facility}",
                    "import",
                    now,
                    level=OWN,
                    proven=False,
                    until=now + WINDOW,
                )
        status = _status(outcome, found)
        return _Written(status, [f"Patient/{outcome.resource.id}"], outcome.resource.id)

    # -- visits ------------------------------------------------------------------------
    def _visit(self, tx: StoreSession, row: records.VisitRow) -> _Written:
        patient = lookup.find_patient(self.repo, tx, mrn_system(self.facility), row.mrn)
        if patient is None:
            raise RowError(
                [
                    f"no patient has record number {row.mrn} at facility {self.facility}; "
                    "import the patient list first"
                ]
            )
        if patient.id not in self._created and self.repo.access is not None:
            if self.repo.standing(tx, patient.id) is None:
                raise RowError(
                    [f"Patient/{patient.id} has no relationship with facility {self.facility}"]
                )
        visit_sys = records.visit_system(self.facility)
        existing = lookup.find_one(self.repo, tx, "Encounter", visit_sys, row.visit_number)
        if existing is not None:
            subject = ((existing.content or {}).get("subject") or {}).get("reference")
            if subject != f"Patient/{patient.id}":
                raise RowError(
                    [
                        f"visit {row.visit_number} is already recorded for {subject}, not for "
                        f"record number {row.mrn} (Patient/{patient.id})"
                    ]
                )
        encounter_id = existing.id if existing else new_id()
        dx_sys = records.visit_diagnosis_system(self.facility)
        keys = [f"{row.visit_number}/{code}" for code in row.diagnoses]
        previous = lookup.previous_diagnoses(self.repo, tx, dx_sys, keys, existing)
        conditions: dict[str, StoredResource | None] = {
            code: previous.pop(f"{row.visit_number}/{code}", None) for code in row.diagnoses
        }
        condition_ids = {code: c.id if c else new_id() for code, c in conditions.items()}
        doctor = None
        if row.doctor:
            found = lookup.find_one(self.repo, tx, "Practitioner", PRACTITIONER, row.doctor)
            doctor = records.practitioner_reference(row.doctor, found.id if found else None)
        encounter = records.encounter_content(
            row,
            self.facility,
            encounter_id=encounter_id,
            patient_id=patient.id,
            organization_id=self.organization.id,
            condition_ids=condition_ids,
            doctor=doctor,
            existing=existing.content if existing else None,
        )
        planned: list[tuple[str, dict[str, Any], str, StoredResource | None]] = [
            ("Encounter", encounter, f"{visit_sys}|{row.visit_number}", existing)
        ]
        for code, before in conditions.items():
            content = records.condition_content(
                row,
                self.facility,
                code,
                condition_id=condition_ids[code],
                encounter_id=encounter_id,
                patient_id=patient.id,
            )
            planned.append(("Condition", content, f"{dx_sys}|{row.visit_number}/{code}", before))
        for value, before in sorted(previous.items()):  # no longer on the row: withdrawn
            content = records.withdrawn(before.content or {})
            planned.append(("Condition", content, f"{dx_sys}|{value}", before))
        problems: list[str] = []
        for rtype, content, key, _ in planned:  # validate all before writing any
            try:
                validated(content, rtype)
            except FhirError as exc:
                problems += [f"{rtype} {key.split('|', 1)[1]}: {m}" for m in _messages(exc)]
        if problems:
            raise RowError(problems)
        statuses: list[Status] = []
        refs: list[str] = []
        for rtype, content, key, before in planned:
            if before is not None and same_content(before.content or {}, content):
                # what the repository would decide anyway (no new version), without the
                # conditional search: re-importing an unchanged file is then mostly reads
                statuses.append("unchanged")
                refs.append(f"{rtype}/{before.id}")
                continue
            system, value = key.split("|", 1)
            query = urlencode({"identifier": f"{system}|{escape_value(value)}"})
            if before is None:  # new: the id the row's other resources already refer to
                if self.repo.conditional_matches(tx, rtype, query):
                    raise RowError([f"{rtype} {value} was recorded meanwhile; import again"])
                outcome = self.repo.update(content, rtype, content["id"], tx=tx)
            else:  # refuses a key that has become ambiguous meanwhile
                outcome = self.repo.conditional_update(content, rtype, query, tx=tx)
            statuses.append(_status(outcome, before))
            refs.append(f"{rtype}/{outcome.resource.id}")
        status: Status = (
            "created"
            if statuses[0] == "created"
            else "updated"
            if any(s != "unchanged" for s in statuses)
            else "unchanged"
        )
        return _Written(status, refs, patient.id)


def _status(outcome: Outcome, before: StoredResource | None) -> Status:
    if outcome.status == 201 or before is None:
        return "created"
    return "updated" if outcome.resource.version_id != before.version_id else "unchanged"


def _messages(exc: Exception) -> list[str]:
    if isinstance(exc, RowError):
        return exc.messages
    if isinstance(exc, FhirError) and exc.issues:
        return [
            f"{i.diagnostics} ({i.expression})" if i.expression else i.diagnostics
            for i in exc.issues
        ]
    return [str(exc)]


def _error(number: int, bound: BoundMapping, cells: list[Cell], exc: Exception) -> RowResult:
    key = ""
    for target in ("visit_number", "mrn"):
        if target in bound.columns:
            index = bound.columns[target][0]
            key = cell_text(cells[index]) if index < len(cells) else ""
            break
    return RowResult(number, "error", key, [], _messages(exc))
