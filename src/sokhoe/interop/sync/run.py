"""One synchronisation of a station with its upstream server: push, then pull.

Push first, so the station's edits reach the province before its changes come back (a
resource edited on both sides is then caught by the push's version check). Each item is
recorded as soon as both sides agree on it; the watermarks move only when a whole phase is
done. A connection lost anywhere stops the run with :class:`SyncInterrupted`; the next run
re-reads a little and skips, idempotently, what was already applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tqdm import tqdm

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.principal import system_principal
from sokhoe.access.signed import AMENDMENT
from sokhoe.access.writes import OWNERS
from sokhoe.interop.sync.client import UpstreamClient, UpstreamRefused, UpstreamUnreachable
from sokhoe.interop.sync.pull import Puller, catchment
from sokhoe.interop.sync.push import Pusher, local_changes
from sokhoe.interop.sync.report import SyncInterrupted, SyncReport
from sokhoe.interop.sync.resolve import resolve_reviewed
from sokhoe.interop.sync.state import SyncState
from sokhoe.store.ports import FhirStore

SYNC_PRINCIPAL = system_principal(
    "sokhoe-sync", "sokhoe sync (station ↔ upstream)", frozenset({"system/*.cruds"})
)
"""Who writes locally during a sync: the node itself (a platform system of the station's own
database), so every local read and write of the sync is checked and audited like any other."""


@dataclass(frozen=True, slots=True)
class SyncTarget:
    """Where and as whom to synchronise."""

    upstream: str
    client_id: str
    client_secret: str
    facility: str
    """The station's facility code (its record numbers define the catchment upstream)."""
    timeout: float = 30.0


def local_repository(store: FhirStore, base_url: str) -> GuardedRepository:
    """The station's door for the sync: the platform replicating what upstream decided,
    server-owned content included (consents, merges, review Tasks, signatures, and the
    amendments that replaced signed versions upstream), audited."""
    return platform_repository(
        store,
        base_url,
        name=SYNC_PRINCIPAL.subject,
        display=SYNC_PRINCIPAL.display,
        auditor=AuditLog(access_engine(store)),
        audit_reads=True,
        source="sync",
        owns=frozenset(OWNERS) | {AMENDMENT},
    )


def synchronise(
    store: FhirStore,
    base_url: str,
    target: SyncTarget,
    *,
    progress: bool = False,
    on_request: Callable[[str, str], None] | None = None,
) -> SyncReport:
    """Push local changes, pull the catchment's; raise :class:`SyncInterrupted` if upstream
    goes away (state so far is kept)."""
    local = local_repository(store, base_url)
    engine = access_engine(store)
    report = SyncReport()
    with UpstreamClient(
        target.upstream, target.client_id, target.client_secret, target.timeout, on_request
    ) as upstream:
        upstream.sign_in()  # unreachable or refused here: nothing was changed anywhere
        state = SyncState(engine, upstream.fhir_base)
        _push(local, upstream, state, target.facility, report, progress)
        _pull(local, upstream, state, target.facility, report, progress)
        report.open_conflicts = state.conflicts()
    return report


def _push(
    local: GuardedRepository,
    upstream: UpstreamClient,
    state: SyncState,
    facility: str,
    report: SyncReport,
    progress: bool,
) -> None:
    failed_before = len(report.failed)
    changes = local_changes(local, state.since("push"))
    pusher = Pusher(local, upstream, state, facility, report)
    done = 0
    try:
        resolve_reviewed(local, upstream, state, report)
        with tqdm(total=len(changes), desc="push", unit=" res", disable=not progress) as bar:
            for version in changes:
                pusher.push(version)
                done += 1
                bar.update(1)
    except UpstreamUnreachable as exc:
        raise SyncInterrupted("push", done, len(changes), str(exc)) from exc
    if changes and len(report.failed) == failed_before:
        state.advance("push", max(v.last_updated for v in changes))


def _pull(
    local: GuardedRepository,
    upstream: UpstreamClient,
    state: SyncState,
    facility: str,
    report: SyncReport,
    progress: bool,
) -> None:
    since = state.since("pull")
    failed_before = len(report.failed)
    puller = Puller(local, upstream, state, report)
    done = 0
    people: list[str] = []
    try:
        people = catchment(upstream, facility)
        with tqdm(total=len(people), desc="pull", unit=" people", disable=not progress) as bar:
            for patient_id in people:
                try:
                    puller.pull_patient(patient_id, since)
                except UpstreamRefused as exc:  # one person's record: the others go on
                    report.failed.append(f"Patient/{patient_id}: {exc}")
                done += 1
                bar.update(1)
    except UpstreamUnreachable as exc:
        raise SyncInterrupted("pull", done, len(people), str(exc)) from exc
    newest: datetime | None = puller.newest
    if newest is not None and len(report.failed) == failed_before:
        state.advance("pull", newest)


__all__ = ["SYNC_PRINCIPAL", "SyncTarget", "local_repository", "synchronise"]
