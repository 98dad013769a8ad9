"""The Subscription dispatcher: follows the store's history, queues and sends notifications.

Why poll the history instead of hooking the write path: every write — REST, bundles, HL7 v2,
DICOM, imports, loaders — ends as a version in the store's history, so following it sees them
all, whatever the entry point, without the write path knowing about subscriptions. The
position reached is a watermark row (``interop_watermark``, name ``subscriptions``), so a
restarted dispatcher continues where the last one stopped; each round re-reads
``subscription_overlap_seconds`` before it (a slow transaction may commit after a later one),
and the queue's unique key (subscription, resource version) makes a re-read send nothing
twice.

Each round:

1. takes the lease row (``subscription_lease``): one dispatcher per deployment sends, so each
   subscription's notifications leave in order; another process takes over when a holder
   stops renewing it (crash) for ``lease_seconds``;
2. for each changed resource (current version only: an older one is superseded by a newer
   version also in the feed) and each registered subscription watching its type: runs the
   criteria search restricted to that id, and checks the **subscriber** may see the resource
   (its scopes and the access policy, as if it searched itself: a facility hears only about
   its own patients, or those who granted it access); queues a delivery when both hold;
3. sends, per subscription, the oldest due delivery, then the next, stopping at the first
   failure, which is retried with exponential back-off and jitter; after ``max_attempts``
   the delivery is abandoned and the Subscription is set to ``error`` with the reason (a
   later success sets it ``active`` again). Each attempt is audited as an ``export`` of the
   patient's data to the subscriber. Before each send the endpoint rule is applied again
   with the owner's allow-list as it is then and a fresh DNS answer
   (:mod:`~sokhoe.interop.subscriptions.endpoints`): a refusal is a failed attempt that
   says why, and nothing leaves.

Deletions notify nobody (R4 criteria are searches, and no search finds a deleted resource).
See: https://hl7.org/fhir/R4/subscription.html
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.scopes import scopes_allow
from sokhoe.errors import FhirError
from sokhoe.fhir.resources import parse_instant
from sokhoe.interop.subscriptions import allowlist, registry
from sokhoe.interop.subscriptions.criteria import Criteria, matching_ids, parse_criteria
from sokhoe.interop.subscriptions.delivery import (
    Attempt,
    Backoff,
    Notification,
    Sender,
    encode,
    notification_bundle,
)
from sokhoe.interop.subscriptions.lease import release_lease, take_lease
from sokhoe.interop.subscriptions.registry import Registration
from sokhoe.interop.watermark import read_watermark, save_watermark
from sokhoe.store.ports import StoredResource
from sokhoe.store.sql.subscription_schema import subscription_delivery

log = logging.getLogger(__name__)

WATERMARK = "subscriptions"
LEASE = "dispatcher"
HISTORY_PAGE = 1000
EVALUATE_BATCH = 500
"""Changed resources tested against the criteria in one search per subscription."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RoundReport:
    """What one :meth:`Dispatcher.run_once` did."""

    leased: bool = True
    scanned: int = 0
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    abandoned: int = 0


@dataclass(frozen=True, slots=True)
class _Served:
    reg: Registration
    criteria: Criteria
    guard: GuardedRepository


class Dispatcher:
    """See the module docstring. ``clock`` and ``rng`` are injectable so tests control back-off
    without sleeping; ``sender`` sends one notification (``HttpSender`` in production)."""

    def __init__(
        self,
        repo: GuardedRepository,
        engine: Engine,
        auditor: AuditLog,
        sender: Sender,
        *,
        backoff: Backoff | None = None,
        overlap: timedelta = timedelta(seconds=30),
        poll_seconds: float = 2.0,
        lease_seconds: float = 60.0,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.repo = repo
        self.auditor = auditor
        self.sender = sender
        self.backoff = backoff or Backoff()
        self.overlap = overlap
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._seen: dict[tuple[str, str, int], datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one round -----------------------------------------------------------------------
    def run_once(self) -> RoundReport:
        """Scan the history since the watermark, queue what matches, send what is due."""
        report = RoundReport()
        if not self._take_lease():
            report.leased = False
            return report
        served = self._served()
        self._scan(served, report)
        self._deliver(served, report)
        return report

    def _served(self) -> list[_Served]:
        """The registrations whose Subscription resource is still the registered version (one
        changed by another path — a bundle, a raw update — is not served until re-registered)."""
        out = []
        now = self.clock()
        regs = registry.served(self.engine)
        if not regs:
            return []
        with self.repo.snapshot() as tx:
            current = {r.id: r for r in tx.read_many([("Subscription", reg.id) for reg in regs])}
        for reg in regs:
            found = current.get(reg.id)
            if found is None or found.deleted or found.version_id != reg.version_id:
                log.warning("Subscription/%s changed outside registration: not served", reg.id)
                continue
            if _ended(found, now):
                continue  # Subscription.end passed: the server stops (R4 Subscription.end)
            try:
                criteria = parse_criteria(self.repo, reg.criteria)
            except FhirError:
                log.warning("Subscription/%s criteria no longer parse: not served", reg.id)
                continue
            guard = self.repo.for_caller(reg.owner, source="subscription", audit_reads=False)
            out.append(_Served(reg, criteria, guard))
        return out

    # -- scanning ------------------------------------------------------------------------
    def _scan(self, served: list[_Served], report: RoundReport) -> None:
        if not served:
            return
        mark = read_watermark(self.engine, WATERMARK)
        earliest = min(s.reg.since for s in served)
        lower = earliest
        if mark is not None:
            lower = max(earliest, datetime.fromisoformat(mark) - self.overlap)
        self._seen = {k: v for k, v in self._seen.items() if v >= lower}
        changed: dict[tuple[str, str, int], StoredResource] = {}
        for rtype in sorted({s.criteria.resource_type for s in served}):
            offset = 0
            while True:
                with self.repo.snapshot() as tx:
                    found, total = tx.history(rtype, None, lower, HISTORY_PAGE, offset)
                for version in found:
                    changed[(version.resource_type, version.id, version.version_id)] = version
                offset += len(found)
                if not found or offset >= total:
                    break
        ordered = sorted(changed.values(), key=lambda v: (v.last_updated, v.resource_type, v.id))
        fresh = [v for v in ordered if _key(v) not in self._seen]
        for start in range(0, len(fresh), EVALUATE_BATCH):
            chunk = fresh[start : start + EVALUATE_BATCH]
            report.scanned += len(chunk)
            report.queued += self._evaluate(chunk, served)
            self._seen.update((_key(v), v.last_updated) for v in chunk)
        if ordered:
            newest = ordered[-1].last_updated
            with self.engine.begin() as conn:
                save_watermark(conn, WATERMARK, newest.astimezone(UTC).isoformat())

    def _evaluate(self, chunk: list[StoredResource], served: list[_Served]) -> int:
        """Queue the deliveries of ``chunk`` (changed versions, oldest first): one criteria
        search per subscription for the whole chunk, confined to what the subscriber may see
        (its own access, never more)."""
        live = [v for v in chunk if not v.deleted]
        hits: list[tuple[int, _Served, StoredResource]] = []
        with self.repo.snapshot() as tx:
            current = {
                (r.resource_type, r.id): r
                for r in tx.read_many([(v.resource_type, v.id) for v in live])
            }
            # an older version is superseded: the newer one is in the feed too
            latest = [
                (i, current[(v.resource_type, v.id)])
                for i, v in enumerate(live)
                if (v.resource_type, v.id) in current
                and current[(v.resource_type, v.id)].version_id == v.version_id
            ]
            for s in served:
                rtype = s.criteria.resource_type
                if not scopes_allow(s.reg.owner.scopes, rtype, "read"):
                    continue
                candidates = {
                    r.id: (i, r)
                    for i, r in latest
                    if r.resource_type == rtype and r.last_updated >= s.reg.since
                }
                if candidates:
                    found = matching_ids(
                        self.repo, tx, s.criteria, list(candidates), s.guard.access
                    )
                    for rid in found:
                        i, resource = candidates[rid]
                        hits.append((i, s, resource))
        hits.sort(key=lambda hit: hit[0])  # queue in the order the changes were made
        queued = 0
        for _, s, resource in hits:
            queued += self._enqueue(s.reg, resource)
        return queued

    def _enqueue(self, reg: Registration, resource: StoredResource) -> int:
        now = self.clock()
        with self.engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(subscription_delivery).values(
                subscription_id=reg.id,
                resource_type=resource.resource_type,
                resource_id=resource.id,
                version_id=resource.version_id,
                patient_id=resource.patient_id,
                status="pending",
                attempts=0,
                next_attempt=now,
                created=now,
            )
            returning = stmt.on_conflict_do_nothing().returning(subscription_delivery.c.seq)
            added = conn.execute(returning).first()
        return 0 if added is None else 1

    # -- delivering ----------------------------------------------------------------------
    def _deliver(self, served: list[_Served], report: RoundReport) -> None:
        for s in served:
            while self._deliver_next(s, report):
                pass

    def _deliver_next(self, s: _Served, report: RoundReport) -> bool:
        """Send the oldest pending delivery of ``s`` if due; True to go on with the next."""
        d = subscription_delivery.c
        now = self.clock()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(subscription_delivery)
                .where(d.subscription_id == s.reg.id, d.status == "pending")
                .order_by(d.seq)
                .limit(1)
            ).first()
        if row is None or _aware(row.next_attempt) > now:
            return False
        with self.repo.snapshot() as tx:
            resource = tx.vread(row.resource_type, row.resource_id, row.version_id)
        if resource is None or resource.content is None:
            self._finish(row.seq, "abandoned", row.attempts, "the resource version was purged")
            return True
        body = None
        if s.reg.payload:
            bundle = notification_bundle(resource, self.repo.base_url, now)
            body = encode(bundle)
        attempt = self._send(s.reg, body)
        attempts = row.attempts + 1
        self.auditor.record(
            s.reg.owner,
            "export",
            "success" if attempt.ok else "error",
            patient_ids=[row.patient_id] if row.patient_id else [],
            entities=[
                f"{row.resource_type}/{row.resource_id}/_history/{row.version_id}",
                f"Subscription/{s.reg.id}",
            ],
            reason=attempt.error,
            source=s.reg.endpoint,
        )
        if attempt.ok:
            self._finish(row.seq, "delivered", attempts, None, delivered=now)
            report.delivered += 1
            if s.reg.status == "error":
                self._set_status(s, "active", None)
            return True
        report.failed += 1
        if attempts >= self.backoff.max_attempts:
            self._finish(row.seq, "abandoned", attempts, attempt.error)
            report.abandoned += 1
            self._set_status(
                s,
                "error",
                f"Delivery of {row.resource_type}/{row.resource_id} failed {attempts} times; "
                f"last: {attempt.error}",
            )
            return False
        with self.engine.begin() as conn:
            conn.execute(
                update(subscription_delivery)
                .where(d.seq == row.seq)
                .values(
                    attempts=attempts,
                    last_error=attempt.error,
                    next_attempt=now + self.backoff.delay(attempts, self.rng),
                )
            )
        return False

    def _send(self, reg: Registration, body: bytes | None) -> Attempt:
        """Send through ``sender`` with the owner's allow-list as it is now (an operator may
        have narrowed it since registration); a Subscription owned by a person (registered
        before only connected systems could) is not sent."""
        if reg.owner.kind != "client":
            return Attempt(
                False,
                f"not sent: Subscription/{reg.id} is owned by a {reg.owner.kind} account; only "
                "connected systems receive notifications",
            )
        notification = Notification(
            reg.endpoint,
            body,
            reg.headers,
            reg.payload,
            allowlist.allowed(self.engine, reg.owner.subject),
        )
        try:
            return self.sender(notification)
        except Exception as exc:  # a broken sender must not stop the other subscriptions
            log.exception("Sending to %s failed", reg.endpoint)
            return Attempt(False, f"{type(exc).__name__}: {exc}")

    def _finish(
        self,
        seq: int,
        status: str,
        attempts: int,
        error: str | None,
        *,
        delivered: datetime | None = None,
    ) -> None:
        d = subscription_delivery.c
        with self.engine.begin() as conn:
            conn.execute(
                update(subscription_delivery)
                .where(d.seq == seq)
                .values(status=status, attempts=attempts, last_error=error, delivered=delivered)
            )

    def _set_status(self, s: _Served, status: str, error: str | None) -> None:
        """Show the state on the Subscription resource (``status``, ``error``) and the row."""
        with self.repo.operation(
            "subscription-status", resource_type="Subscription", owns=frozenset({"subscription"})
        ) as tx:
            current = tx.read("Subscription", s.reg.id)
            version = s.reg.version_id
            if current is not None and current.content is not None:
                content: dict[str, Any] = dict(current.content)
                content["status"] = status
                content.pop("error", None)
                if error:
                    content["error"] = error[:1000]
                outcome = self.repo.update(content, "Subscription", s.reg.id, tx=tx)
                version = outcome.resource.version_id
            now = self.clock()
            tx.side_tables(
                lambda conn: registry.set_status(conn, s.reg.id, status, error, version, now)
            )

    # -- the lease -----------------------------------------------------------------------
    def _take_lease(self) -> bool:
        length = timedelta(seconds=self.lease_seconds)
        return take_lease(self.engine, LEASE, self.holder, self.clock(), length)

    def release(self) -> None:
        """Give the lease up (a clean stop: another process may take over at once)."""
        release_lease(self.engine, LEASE, self.holder)

    # -- running in the background -------------------------------------------------------
    def start(self) -> None:
        """Run rounds every ``poll_seconds`` in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="subscriptions", daemon=True)
        self._thread.start()

    def run_forever(self) -> None:
        """Run rounds in this thread until :meth:`stop` (from another thread or a signal)."""
        self._loop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep serving: the next round retries from the watermark
                log.exception("Subscription round failed")
            self._stop.wait(self.poll_seconds)

    def request_stop(self) -> None:
        """Ask the loop to end after the current round (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(30.0, self.poll_seconds * 2))
            self._thread = None
        try:
            self.release()
        except Exception:  # the database may already be closed at shutdown
            log.warning("Could not release the subscription lease", exc_info=True)


def _key(version: StoredResource) -> tuple[str, str, int]:
    return (version.resource_type, version.id, version.version_id)


def _ended(found: StoredResource, now: datetime) -> bool:
    end = (found.content or {}).get("end")
    try:
        return isinstance(end, str) and parse_instant(end) <= now
    except ValueError:
        return False


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they were stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = ["LEASE", "WATERMARK", "Dispatcher", "RoundReport"]
