"""Carry out what a person decided on a conflict review Task.

A reviewer settles a conflict at the station: ``completed`` means the station's current
version is right (edit it first if the truth is a mix of both) and it goes upstream over the
province's; ``rejected`` or ``cancelled`` means the province's version is right and replaces
the station's. Either way the other side's version stays in its history, and the resource is
synchronised normally again.
See: https://hl7.org/fhir/R4/valueset-task-status.html
"""

from __future__ import annotations

from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.sync.client import UpstreamClient
from sokhoe.interop.sync.report import SyncReport
from sokhoe.interop.sync.state import SyncState

KEEP_LOCAL = "completed"
KEEP_UPSTREAM = frozenset({"rejected", "cancelled"})


def resolve_reviewed(
    local: FhirRepository, upstream: UpstreamClient, state: SyncState, report: SyncReport
) -> None:
    """Apply every decided review; undecided ones stay held."""
    for rtype, rid, task_id in state.conflicts():
        with local.snapshot() as tx:
            task = tx.read("Task", task_id)
            mine = tx.read(rtype, rid)
        status = ((task.content or {}) if task else {}).get("status")
        if mine is None or (status != KEEP_LOCAL and status not in KEEP_UPSTREAM):
            continue
        current = upstream.get(f"{rtype}/{rid}")
        if current.status not in (200, 410):
            report.failed.append(f"{rtype}/{rid}: upstream HTTP {current.status} on review")
            continue
        theirs = current.body if current.status == 200 else None  # 410: deleted upstream
        if status == KEEP_LOCAL:
            _keep_local(
                upstream,
                state,
                report,
                rtype,
                rid,
                mine.version_id,
                mine.content,
                current.version if theirs is not None else None,
            )
        elif theirs is not None:
            outcome = local.update(theirs, rtype, rid, if_match=f'W/"{mine.version_id}"')
            state.record(rtype, rid, outcome.resource.version_id, current.version or 0)
            report.pulled += 1
        else:
            gone = local.delete(rtype, rid)
            synced = state.get(rtype, rid)
            after = gone.resource.version_id if gone else mine.version_id
            state.record(rtype, rid, after, synced.upstream_version if synced else 0)
            report.deleted += 1


def _keep_local(
    upstream: UpstreamClient,
    state: SyncState,
    report: SyncReport,
    rtype: str,
    rid: str,
    local_version: int,
    content: dict[str, object] | None,
    upstream_version: int | None,
) -> None:
    if content is None:  # the station deleted it: delete upstream too
        answer = upstream.request("DELETE", f"{rtype}/{rid}")
        ok = answer.status in (200, 204)
        after = (upstream_version or 0) + 1
    else:
        headers = {"Content-Type": "application/fhir+json"}
        if upstream_version is not None:
            headers["If-Match"] = f'W/"{upstream_version}"'
        answer = upstream.request("PUT", f"{rtype}/{rid}", json=content, headers=headers)
        ok = answer.status in (200, 201) and answer.version is not None
        after = answer.version or 0
    if not ok:  # edited upstream again since: stays held, the reviewer looks again
        report.failed.append(f"{rtype}/{rid}: HTTP {answer.status} {answer.diagnostics()}")
        return
    state.record(rtype, rid, local_version, after)
    report.pushed += 1


__all__ = ["resolve_reviewed"]
