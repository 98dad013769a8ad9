"""The state of ``$export`` jobs, kept in the database (table ``bulk_job``).

Any server process may be asked about a job (DESIGN.md: no state a second process would not
see), so everything a status request needs is a row: who owns the job, what it was asked,
how far it got, the manifest when done. The worker refreshes ``heartbeat`` while it runs; a
job still marked running whose heartbeat is older than :data:`STALE_AFTER` lost its worker
(the server was restarted or killed) and is reported, and recorded, as failed. Jobs are not
resumed after a restart: a client simply kicks off again, which the specification allows.
See: https://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-status-request
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.pool import StaticPool

from sokhoe.store.sql.bulk_schema import bulk_job

STALE_AFTER: Final = timedelta(minutes=2)
"""A running job that has not written a heartbeat for this long lost its worker."""
RUNNING: Final = ("queued", "running")
"""States in which a job may still change."""


@dataclass(frozen=True)
class BulkJob:
    """One row of ``bulk_job``."""

    id: str
    owner: str
    request: str
    kind: str
    params: dict[str, Any]
    status: str
    progress: int
    created: datetime
    heartbeat: datetime
    finished: datetime | None
    manifest: dict[str, Any] | None
    error: str | None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class BulkJobs:
    """Create, follow and finish ``$export`` jobs in the access database."""

    def __init__(self, engine: Engine, clock: Any = None) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        # the in-memory store's access engine is one SQLite connection shared by all
        # threads (StaticPool): this lock keeps the job table's own transactions from
        # interleaving there (other services' transactions on that connection are not
        # covered: the in-memory store is for tests and demos); a real pool needs none
        self._lock: threading.Lock | None = (
            threading.Lock() if isinstance(engine.pool, StaticPool) else None
        )

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        if self._lock is None:
            with self.engine.begin() as conn:
                yield conn
        else:
            with self._lock, self.engine.begin() as conn:
                yield conn

    def create(
        self, job_id: str, owner: str, request: str, kind: str, params: dict[str, Any]
    ) -> BulkJob:
        now = self.clock()
        with self._begin() as conn:
            conn.execute(
                bulk_job.insert().values(
                    id=job_id,
                    owner=owner,
                    request=request,
                    kind=kind,
                    params=params,
                    status="queued",
                    progress=0,
                    created=now,
                    heartbeat=now,
                )
            )
        found = self.get(job_id)
        if found is None:  # pragma: no cover - just inserted in a committed transaction
            raise RuntimeError(f"bulk job {job_id} vanished")
        return found

    def get(self, job_id: str) -> BulkJob | None:
        """The job, with a running one whose worker died reported (and recorded) failed."""
        with self._begin() as conn:
            row = conn.execute(select(bulk_job).where(bulk_job.c.id == job_id)).first()
        if row is None:
            return None
        job = BulkJob(
            id=row.id,
            owner=row.owner,
            request=row.request,
            kind=row.kind,
            params=dict(row.params),
            status=row.status,
            progress=int(row.progress),
            created=_utc(row.created) or self.clock(),
            heartbeat=_utc(row.heartbeat) or self.clock(),
            finished=_utc(row.finished),
            manifest=row.manifest,
            error=row.error,
        )
        if job.status in RUNNING and self.clock() - job.heartbeat > STALE_AFTER:
            reason = "The export stopped: the server process running it ended (restart)"
            self.fail(job.id, reason)
            return self.get(job.id)
        return job

    def start(self, job_id: str) -> bool:
        """Mark a queued job running; False when it was cancelled before it started."""
        with self._begin() as conn:
            done = conn.execute(
                update(bulk_job)
                .where(bulk_job.c.id == job_id, bulk_job.c.status == "queued")
                .values(status="running", heartbeat=self.clock())
            )
        return done.rowcount == 1

    def progress(self, job_id: str, written: int) -> bool:
        """Record progress and a heartbeat; False when the job was cancelled meanwhile."""
        with self._begin() as conn:
            done = conn.execute(
                update(bulk_job)
                .where(bulk_job.c.id == job_id, bulk_job.c.status == "running")
                .values(progress=written, heartbeat=self.clock())
            )
        return done.rowcount == 1

    def complete(self, job_id: str, written: int, manifest: dict[str, Any]) -> bool:
        """Store the manifest; False when the job was cancelled meanwhile."""
        now = self.clock()
        with self._begin() as conn:
            done = conn.execute(
                update(bulk_job)
                .where(bulk_job.c.id == job_id, bulk_job.c.status == "running")
                .values(
                    status="completed",
                    progress=written,
                    heartbeat=now,
                    finished=now,
                    manifest=manifest,
                )
            )
        return done.rowcount == 1

    def fail(self, job_id: str, error: str) -> None:
        now = self.clock()
        with self._begin() as conn:
            conn.execute(
                update(bulk_job)
                .where(bulk_job.c.id == job_id, bulk_job.c.status.in_(RUNNING))
                .values(status="failed", finished=now, heartbeat=now, error=error[:4000])
            )

    def expired(self, older_than: timedelta) -> list[str]:
        """Jobs that finished (completed, failed) more than ``older_than`` ago."""
        cutoff = self.clock() - older_than
        with self._begin() as conn:
            rows = conn.execute(
                select(bulk_job.c.id).where(
                    bulk_job.c.finished.is_not(None), bulk_job.c.finished < cutoff
                )
            ).all()
        return [str(r.id) for r in rows]

    def remove(self, job_id: str) -> bool:
        """Forget the job (a client's DELETE): its worker, if still running, sees the row gone
        at its next progress report, stops and removes what it wrote."""
        with self._begin() as conn:
            done = conn.execute(delete(bulk_job).where(bulk_job.c.id == job_id))
        return done.rowcount == 1
