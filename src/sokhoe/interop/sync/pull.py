"""Pull: bring upstream's changes about the station's catchment population to the station.

The catchment is the people who carry the station's record number upstream (registered or
checked in at the station, wherever the record was first made). For each, the patient's
compartment changed since the pull watermark (``Patient/{id}/$everything?_since=``) is
applied locally with the same ids: a version already synchronised is skipped, so re-reading
a window (the watermark minus a safety margin, or a whole run cut short) changes nothing.
A local edit not yet synchronised and a different upstream version is a conflict.

Why not the system history (``_history?_since=``): upstream's access guard filters history
entries the station may not see *after* paging, and then reports the visible count as the
total, so its paging links stop early for a facility client; an identifier search and the
compartment are confined before paging and page correctly.
See: https://hl7.org/fhir/R4/patient-operation-everything.html
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sokhoe.errors import PreconditionFailed
from sokhoe.fhir.repository import FhirRepository
from sokhoe.fhir.resources import format_instant, parse_instant, same_content
from sokhoe.interop.sync.client import UpstreamClient, UpstreamRefused
from sokhoe.interop.sync.report import SyncReport
from sokhoe.interop.sync.review import conflict_task
from sokhoe.interop.sync.state import SyncState
from sokhoe.mpi.identifiers import mrn_system

PAGE = "500"


def pages(upstream: UpstreamClient, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every resource of a searchset, following ``next`` links."""
    answer = upstream.get(path, params)
    while True:
        if answer.status != 200 or answer.body is None:
            raise UpstreamRefused(f"GET {path}: HTTP {answer.status} {answer.diagnostics()}")
        for entry in answer.body.get("entry") or []:
            if "resource" in entry:
                yield entry["resource"]
        following = [
            link["url"] for link in answer.body.get("link") or [] if link.get("relation") == "next"
        ]
        if not following:
            return
        answer = upstream.get(following[0])


def catchment(upstream: UpstreamClient, facility: str) -> list[str]:
    """Ids of the upstream Patients carrying the station's record number."""
    params = {"identifier": f"{mrn_system(facility)}|", "_elements": "id", "_count": PAGE}
    return sorted({str(r["id"]) for r in pages(upstream, "Patient", params)})


class Puller:
    """Applies upstream versions locally, one resource at a time."""

    def __init__(
        self,
        local: FhirRepository,
        upstream: UpstreamClient,
        state: SyncState,
        report: SyncReport,
    ) -> None:
        self.local = local
        self.upstream = upstream
        self.state = state
        self.report = report
        self.newest: datetime | None = None
        """The newest upstream ``lastUpdated`` applied or skipped: the next watermark."""

    def pull_patient(self, patient_id: str, since: datetime | None) -> None:
        known = self.state.get("Patient", patient_id) is not None
        params = {"_count": PAGE}
        if since is not None and known:
            params["_since"] = format_instant(since)
        for resource in pages(self.upstream, f"Patient/{patient_id}/$everything", params):
            self.apply(resource)

    def apply(self, theirs: dict[str, Any]) -> None:
        rtype, rid = str(theirs["resourceType"]), str(theirs["id"])
        meta = theirs.get("meta") or {}
        uv = int(meta.get("versionId") or 0)
        if meta.get("lastUpdated"):
            seen = parse_instant(str(meta["lastUpdated"]))
            self.newest = seen if self.newest is None else max(self.newest, seen)
        synced = self.state.get(rtype, rid)
        if synced is not None and synced.conflict_task is not None:
            self.report.held += 1
            return
        if synced is not None and synced.upstream_version >= uv:
            self.report.unchanged += 1
            return
        with self.local.snapshot() as tx:
            mine = tx.read(rtype, rid)
        if mine is not None and (synced is None or mine.version_id != synced.local_version):
            # changed here and not yet synchronised (or never synchronised under this id)
            if mine.content is not None and same_content(mine.content, theirs):
                self.state.record(rtype, rid, mine.version_id, uv)
                self.report.unchanged += 1
                return
            task = conflict_task(
                self.local,
                self.upstream.fhir_base,
                rtype,
                rid,
                mine.content,
                mine.version_id,
                theirs,
                uv,
                "Edited upstream and at the station since last sync",
            )
            self.state.mark_conflict(rtype, rid, task, mine.version_id, uv)
            self.report.conflicts += 1
            return
        if_match = None if mine is None else f'W/"{mine.version_id}"'
        try:
            outcome = self.local.update(theirs, rtype, rid, if_match=if_match)
        except PreconditionFailed:  # written locally this very moment: the next run decides
            self.report.failed.append(f"{rtype}/{rid}: changed locally during sync")
            return
        self.state.record(rtype, rid, outcome.resource.version_id, uv)
        self.report.pulled += 1


__all__ = ["Puller", "catchment", "pages"]
