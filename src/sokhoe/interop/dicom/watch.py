"""Follow a facility's Orthanc PACS and put each stable study in its patient's record.

Why polling: Orthanc's change log (``/changes``) is durable and numbered, so a follower that
saves the last sequence number it handled survives restarts of either side and needs nothing
installed in the PACS (no Lua script or plugin, which hospital PACS administrators rarely
allow), and any number of platform processes can share the watermark in the database. A push
(Orthanc's Lua ``OnStableStudy`` calling us) would lose studies while the platform is down.
The cost is a delay of at most the poll interval after ``StableAge``.

Writes go through the access door as the PACS itself: a connected system of its facility
(:func:`pacs_principal`). The policy lets a facility write only for patients who have a
relationship with it (its record number on the Patient, or a recent Encounter there), and
the PACS does not get to create one: a study whose Patient ID names a person unknown to the
facility is *held* (logged, counted, kept in the watermark's ``pending`` list and retried on
every poll) until reception registers or checks the person in. A PACS can receive studies
from anywhere (outside CDs, other sites, a mistyped ID at the modality), so letting a study
open a 365-day window on a citizen's whole record would turn a DICOM tag into an access grant.

A study is tied to the patient's visit (Encounter) at the facility on the study's day when
there is exactly one, so the claims export bills it with that visit.

Run one watcher per PACS: two processes following the same PACS would only redo each other's
work, except that two first-time writes of the same study racing each other could both
create it (conditional create is not atomic across processes in the store).

The watermark is saved after the writes it covers (after each page of changes). A crash in
between only means the same studies are processed again, which is harmless: the ImagingStudy
is upserted by its Study Instance UID and an unchanged study writes nothing, and the Endpoint
is a conditional create.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.principal import Principal, system_principal
from sokhoe.errors import FhirError, Forbidden, InvalidResource
from sokhoe.fhir.resources import same_content
from sokhoe.interop.dicom.imaging import (
    UnusableStudy,
    endpoint_system,
    imaging_study,
    pacs_endpoint,
    patient_keys,
    read_study,
    study_identifier,
)
from sokhoe.interop.dicom.orthanc import STABLE_STUDY, OrthancClient, OrthancError
from sokhoe.interop.watermark import read_watermark, save_watermark
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.store.ports import FhirStore

log = logging.getLogger(__name__)

PACS_SCOPES = frozenset(
    {
        "system/ImagingStudy.crus",
        "system/Endpoint.crs",
        "system/Patient.rs",
        "system/Encounter.rs",
        "system/Organization.rs",
    }
)
"""What a PACS may do: find its patients and the visit a study belongs to (by the visit's
facility, an Organization of the registry), upsert their imaging studies (a conditional
update is a search then a write, hence ``s``), and register its own Endpoint. Every read is
confined to these types: a search cannot reach a type the token may not read, chains
included."""


def pacs_principal(facility: str, name: str | None = None) -> Principal:
    """The PACS of ``facility`` as a connected system of that facility."""
    return system_principal(f"pacs:{facility}", name or f"PACS {facility}", PACS_SCOPES, facility)


StudyOutcome = Literal["written", "unchanged", "held", "rejected", "gone"]
"""What became of one study (see :meth:`PacsWatcher._process`)."""


@dataclass
class WatchState:
    """The watermark: the last Orthanc change handled and the studies held back (Orthanc
    study id → why), kept together so they commit together."""

    since: int = 0
    pending: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"since": self.since, "pending": self.pending}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> WatchState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(int(data.get("since", 0)), {str(k): str(v) for k, v in data["pending"].items()})


@dataclass
class PollReport:
    """What one poll did (``pending`` is the number of studies held after it)."""

    stable_studies: int = 0
    written: int = 0
    unchanged: int = 0
    held: int = 0
    rejected: int = 0
    gone: int = 0
    pending: int = 0
    since: int = 0

    def count(self, outcome: StudyOutcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


class PacsWatcher:
    """Polls one Orthanc for stable studies and upserts their ImagingStudy resources.

    ``dicomweb_url`` is the DICOMweb root viewers should use (often behind the facility's
    proxy); by default ``{orthanc}/dicom-web``.
    """

    def __init__(
        self,
        store: FhirStore,
        client: OrthancClient,
        facility: str,
        *,
        base_url: str,
        dicomweb_url: str | None = None,
        engine: Engine | None = None,
        page_size: int = 100,
        name: str | None = None,
    ) -> None:
        if not (len(facility) == 5 and facility.isalnum() and facility.isascii()):
            raise ValueError(f"A facility code has 5 letters or digits, not {facility!r}")
        self.client = client
        self.facility = facility.upper()
        self.dicomweb_url = (dicomweb_url or f"{client.url}/dicom-web").rstrip("/")
        self.engine = engine if engine is not None else access_engine(store)
        self.page_size = page_size
        self.principal = pacs_principal(self.facility, name)
        self._source = urlsplit(client.url).hostname or client.url
        """The PACS's address, as the audit records a caller's network address."""
        self._door = platform_repository(
            store, base_url, name="sokhoe-pacs", auditor=AuditLog(self.engine)
        )
        self.repo = self._guarded()
        self.watermark = _watermark_name(self.facility, client.url)
        self._endpoint_id: str | None = None
        self._saved: str | None = None

    def _guarded(self) -> GuardedRepository:
        """A fresh door per poll: the guard remembers its decisions, and a patient refused
        in one poll may have been checked in at the facility by the next."""
        return self._door.for_caller(self.principal, source=self._source, audit_reads=True)

    # -- state -------------------------------------------------------------------------
    def state(self) -> WatchState:
        """The saved watermark (read from the database: another process may have moved it)."""
        state = WatchState.from_json(read_watermark(self.engine, self.watermark))
        self._saved = state.to_json()
        return state

    def _save(self, state: WatchState) -> None:
        value = state.to_json()
        if value == self._saved:
            return
        with self.engine.begin() as conn:
            save_watermark(conn, self.watermark, value)
        self._saved = value

    # -- polling -----------------------------------------------------------------------
    def run_once(self) -> PollReport:
        """Retry the held studies, then handle every change since the watermark.

        Raises :class:`OrthancError` when the PACS cannot be reached (progress made until
        then is saved).
        """
        self.repo = self._guarded()
        state = self.state()
        report = PollReport()
        for orthanc_id in sorted(state.pending):
            self._handle(orthanc_id, state, report)
        self._save(state)
        restarted = False
        while True:
            page = self.client.changes(state.since, self.page_size)
            if page.last < state.since and not restarted:
                log.warning(
                    "Orthanc %s restarted its change log (last %d < watermark %d): "
                    "reading it again from the start",
                    self.client.url,
                    page.last,
                    state.since,
                )
                state.since, restarted = 0, True
                continue
            for change in page.changes:
                if change.change_type == STABLE_STUDY:
                    report.stable_studies += 1
                    self._handle(change.resource_id, state, report)
                state.since = max(state.since, change.seq)
            state.since = max(state.since, page.last)
            self._save(state)
            if page.done or not page.changes:
                break
        report.pending = len(state.pending)
        report.since = state.since
        return report

    def run(self, interval: float, stop: threading.Event | None = None) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set; an unreachable PACS is
        logged and tried again at the next interval."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                report = self.run_once()
                log.info("PACS %s poll: %s", self.facility, report)
            except OrthancError as exc:
                log.warning("PACS %s poll failed: %s", self.facility, exc)
            stop.wait(interval)

    # -- one study ---------------------------------------------------------------------
    def _handle(self, orthanc_id: str, state: WatchState, report: PollReport) -> None:
        result, reason = self._process(orthanc_id)
        report.count(result)
        if result == "held":
            if orthanc_id not in state.pending:
                log.warning("Holding study %s until its patient is known: %s", orthanc_id, reason)
            state.pending[orthanc_id] = reason
            return
        state.pending.pop(orthanc_id, None)
        if result == "rejected":
            log.error("Study %s cannot be recorded: %s", orthanc_id, reason)

    def _process(self, orthanc_id: str) -> tuple[StudyOutcome, str]:
        """(outcome, reason): ``written``, ``unchanged``, ``held`` (no single patient
        of this facility: held and retried), ``rejected`` (bad DICOM data: logged, dropped
        from the watch, the study stays in the PACS) or ``gone`` (deleted from the PACS)."""
        study = read_study(self.client, orthanc_id)
        if study is None:
            return "gone", "deleted from the PACS"
        keys = patient_keys(study.patient_id, study.issuer, self.facility)
        shown = _masked(study.patient_id)
        if not keys:
            return "held", f"Patient ID {shown!r} is not a usable identifier"
        patients = self._patients(keys)
        if not patients:
            return "held", (
                f"no patient of facility {self.facility} has identifier {shown} "
                "(not registered or checked in there yet)"
            )
        if len(patients) > 1:
            return "held", f"Patient ID {shown} names {len(patients)} different patients"
        try:
            encounter = self._encounter(patients[0], study.date)
            resource = imaging_study(study, patients[0], self._endpoint(), self.facility, encounter)
            return self._upsert(resource, study.uid)
        except UnusableStudy as exc:
            return "rejected", str(exc)
        except InvalidResource as exc:
            return "rejected", f"not a valid ImagingStudy: {exc}"
        except Forbidden as exc:
            return "held", f"refused by the access policy: {exc}"
        except FhirError as exc:  # e.g. two Endpoints match: a setup problem, not the study's
            log.error("Study %s could not be written: %s", orthanc_id, exc)
            return "held", f"{type(exc).__name__}: {exc}"

    def _patients(self, keys: list[tuple[str, str]]) -> list[str]:
        found: list[str] = []
        for system, value in keys:
            query = self.repo.parse_query(
                "Patient", [("identifier", f"{system}|{value}")], strict=True
            )
            for match in self.repo.search(query).matches:
                if match.id not in found:
                    found.append(match.id)
        return found

    def _encounter(self, patient_id: str, date: str | None) -> str | None:
        """The patient's one visit at this facility on the study's day, if there is exactly
        one (several the same day, or none recorded yet: the study is not tied to a visit)."""
        if not date or not re.fullmatch(r"\d{8}", date):
            return None
        day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
        query = self.repo.parse_query(
            "Encounter",
            [
                ("patient", f"Patient/{patient_id}"),
                ("service-provider:Organization.identifier", f"{FACILITY}|{self.facility}"),
                ("date", f"ge{day}"),
                ("date", f"le{day}"),
            ],
            strict=True,
        )
        found = self.repo.search(query).matches
        return found[0].id if len(found) == 1 else None

    def _upsert(self, resource: dict[str, Any], uid: str) -> tuple[StudyOutcome, str]:
        criteria = urlencode({"identifier": study_identifier(uid)})
        query = self.repo.parse_query(
            "ImagingStudy", [("identifier", study_identifier(uid))], strict=True
        )
        existing = self.repo.search(query).matches
        if len(existing) == 1 and existing[0].content is not None:
            if same_content(existing[0].content, {**resource, "id": existing[0].id}):
                return "unchanged", ""
        outcome = self.repo.conditional_update(resource, "ImagingStudy", criteria)
        return "written", f"ImagingStudy/{outcome.resource.id}"

    def _endpoint(self) -> str:
        """The id of this PACS's Endpoint, registered on first use (conditional create)."""
        if self._endpoint_id is None:
            criteria = urlencode(
                {"identifier": f"{endpoint_system(self.facility)}|{self.dicomweb_url}"}
            )
            outcome = self.repo.create(
                pacs_endpoint(self.facility, self.dicomweb_url, self.principal.display),
                "Endpoint",
                if_none_exist=criteria,
            )
            self._endpoint_id = outcome.resource.id
        return self._endpoint_id


def _watermark_name(facility: str, url: str) -> str:
    name = f"orthanc:{facility}:{url}"
    if len(name) <= 200:
        return name
    return f"orthanc:{facility}:{hashlib.sha256(url.encode()).hexdigest()}"


def _masked(patient_id: str) -> str:
    """A personal ID shown in logs as its last 4 characters only (Decree 356/2025)."""
    value = patient_id.strip()
    return value if len(value) <= 4 else "*" * (len(value) - 4) + value[-4:]


__all__ = ["PACS_SCOPES", "PacsWatcher", "PollReport", "WatchState", "pacs_principal"]
