"""Push: send the station's new versions upstream, idempotently and with version checks.

Resources keep their ids on both sides, so a push is ``PUT {type}/{id}`` (update-as-create):
sent twice it makes no second version upstream. A resource synchronised before is sent with
``If-Match`` on the upstream version last seen; a 412 means the province changed it too — a
conflict, unless upstream already holds our very content (our previous PUT landed but its
answer was lost with the connection), which is just recorded.

Patients go first: the station's record number on the Patient is what lets upstream's access
policy accept the station's writes about that person. Deletions go last, as ``DELETE``.
See: https://hl7.org/fhir/R4/http.html#update
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sokhoe.access.writes import server_owned
from sokhoe.fhir.repository import FhirRepository
from sokhoe.fhir.resources import same_content
from sokhoe.interop.sync.client import UpstreamClient
from sokhoe.interop.sync.report import SyncReport
from sokhoe.interop.sync.review import TASK_CODE, conflict_task
from sokhoe.interop.sync.state import SyncState
from sokhoe.mpi.identifiers import CCCD, mrn_system
from sokhoe.store.ports import StoredResource, WriteItem

PAGE = 500

Progress = Callable[[int], None]


def pushable(version: StoredResource) -> bool:
    """Records about a person, except what only the server's own operations write.

    Shared resources (NamingSystems, Organizations, Practitioners…) are governed by the
    registry upstream: a station running an older release must not overwrite them. Privacy
    Consents, merge links, review Tasks and the patient index's Provenance are written
    upstream only by the operations that own them (``access/writes.py``), which a station's
    client may not impersonate: the citizen shares or restricts with the province through
    the province's own operations. The sync's review Tasks cite local version numbers and
    belong to the station's queue anyway.
    """
    if version.patient_id is None:
        return False
    item = WriteItem(
        version.resource_type,
        version.id,
        version.version_id,
        version.last_updated,
        version.content,
        version.patient_id,
        None,
        version.method,
        None,
    )
    codes = ((version.content or {}).get("code") or {}).get("coding") or []
    sync_task = version.resource_type == "Task" and any(c.get("system") == TASK_CODE for c in codes)
    return server_owned(item, None) is None and not sync_task


def local_changes(local: FhirRepository, since: datetime | None) -> list[StoredResource]:
    """The newest local version of every record changed since ``since``, in push order."""
    newest: dict[tuple[str, str], StoredResource] = {}
    offset = 0
    while True:
        versions, total = local.history(None, None, since, PAGE, offset)
        for v in filter(pushable, versions):
            key = (v.resource_type, v.id)
            if key not in newest or newest[key].version_id < v.version_id:
                newest[key] = v
        offset += PAGE
        if not versions or offset >= total:
            break

    def order(v: StoredResource) -> tuple[int, int, str, str]:
        return (v.deleted, v.resource_type != "Patient", v.resource_type, v.id)

    return sorted(newest.values(), key=order)


class Pusher:
    """Pushes one resource version at a time, recording each in ``sync_state``."""

    def __init__(
        self,
        local: FhirRepository,
        upstream: UpstreamClient,
        state: SyncState,
        facility: str,
        report: SyncReport,
    ) -> None:
        self.local = local
        self.upstream = upstream
        self.state = state
        self.facility = facility
        self.report = report

    def push(self, version: StoredResource) -> None:
        rtype, rid = version.resource_type, version.id
        synced = self.state.get(rtype, rid)
        if synced is not None and synced.conflict_task is not None:
            self.report.held += 1
            return
        if synced is not None and synced.local_version >= version.version_id:
            self.report.unchanged += 1  # pulled from upstream, or pushed before
            return
        if version.deleted:
            self._delete(version, synced.upstream_version if synced else None)
            return
        if rtype == "Patient" and synced is None and self._duplicate(version):
            return
        headers = {"Content-Type": "application/fhir+json"}
        if synced is not None:
            headers["If-Match"] = f'W/"{synced.upstream_version}"'
        answer = self.upstream.request(
            "PUT", f"{rtype}/{rid}", json=version.content, headers=headers
        )
        if answer.status in (200, 201) and answer.version is not None:
            self.state.record(rtype, rid, version.version_id, answer.version)
            if synced is not None and answer.version == synced.upstream_version:
                self.report.unchanged += 1  # upstream already held this content
            else:
                self.report.pushed += 1
            return
        if answer.status == 412 and synced is not None:
            self._diverged(version, synced.upstream_version)
            return
        self.report.failed.append(f"{rtype}/{rid}: HTTP {answer.status} {answer.diagnostics()}")

    def _diverged(self, version: StoredResource, expected: int) -> None:
        """Upstream moved past ``expected``: same content (a lost answer) or a conflict."""
        rtype, rid = version.resource_type, version.id
        current = self.upstream.get(f"{rtype}/{rid}")
        theirs = current.body if current.status == 200 else None
        uv = current.version or expected
        if theirs is not None and version.content is not None:
            if same_content(theirs, version.content):
                self.state.record(rtype, rid, version.version_id, uv)
                self.report.unchanged += 1
                return
        self._conflict(version, theirs, uv, "Edited at the station and upstream since last sync")

    def _conflict(
        self,
        version: StoredResource,
        theirs: dict[str, object] | None,
        upstream_version: int,
        reason: str,
    ) -> None:
        rtype, rid = version.resource_type, version.id
        task = conflict_task(
            self.local,
            self.upstream.fhir_base,
            rtype,
            rid,
            version.content,
            version.version_id,
            theirs,
            upstream_version,
            reason,
        )
        self.state.mark_conflict(rtype, rid, task, version.version_id, upstream_version)
        self.report.conflicts += 1

    def _delete(self, version: StoredResource, upstream_version: int | None) -> None:
        rtype, rid = version.resource_type, version.id
        if upstream_version is None:
            return  # created and deleted between two syncs: upstream never saw it
        current = self.upstream.get(f"{rtype}/{rid}")
        if current.status == 200 and current.version != upstream_version:
            self._conflict(
                version,
                current.body,
                current.version or upstream_version,
                "Deleted at the station but edited upstream since last sync",
            )
            return
        if current.status == 200:
            answer = self.upstream.request("DELETE", f"{rtype}/{rid}")
            if answer.status not in (200, 204):
                self.report.failed.append(
                    f"{rtype}/{rid}: DELETE HTTP {answer.status} {answer.diagnostics()}"
                )
                return
            self.report.deleted += 1
        # the deletion is upstream's version after the one we knew (or was already there)
        self.state.record(rtype, rid, version.version_id, upstream_version + 1)

    def _duplicate(self, version: StoredResource) -> bool:
        """Is this new local person already known upstream under another id?

        Looks up the person's CCCD and the station's record number (what upstream lets the
        station search). A match is not pushed: creating it would make two records of one
        person at the province. A review Task asks whether to link them (DESIGN: a person
        decides). Persons upstream that the station may not see are not found here; the
        province's MPI (``sokhoe mpi link``) merges those on the shared CCCD.
        """
        content = version.content or {}
        wanted = {CCCD, mrn_system(self.facility)}
        for ident in content.get("identifier") or []:
            system, value = ident.get("system"), ident.get("value")
            if system not in wanted or not value:
                continue
            found = self.upstream.get("Patient", {"identifier": f"{system}|{value}"})
            others = [
                e["resource"]
                for e in (found.body or {}).get("entry") or []
                if e.get("resource", {}).get("id") != version.id
            ]
            if found.status == 200 and others:
                other = others[0]
                self._conflict(
                    version,
                    other,
                    int((other.get("meta") or {}).get("versionId") or 1),
                    f"Same person as upstream Patient/{other.get('id')} ({system}|{value}): "
                    "link or merge the records",
                )
                return True
        return False


__all__ = ["Pusher", "local_changes", "pushable"]
