"""The ``$export`` service one server process keeps: a small pool of worker threads over the
job table, and the folder the files go to.

The web layer kicks jobs off here and asks about them by id; the job state is in the database
(``jobs.py``) so another process can answer status, download and cancel requests. A job runs
in the process that accepted it. When that process shuts down, its unfinished jobs are marked
failed (the client kicks off again); a process that dies without shutting down leaves a
running row whose heartbeat goes stale, which ``BulkJobs.get`` reports as failed.
See: https://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-kick-off-request
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Final

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.policy import Policy
from sokhoe.access.principal import Principal
from sokhoe.errors import NotFound
from sokhoe.interop.bulk.export import ExportContext, ExportOptions, ExportRequest, run_export
from sokhoe.interop.bulk.jobs import BulkJob, BulkJobs

log = logging.getLogger("sokhoe.bulk")

ANONYMOUS: Final = "anonymous"
"""The owner of jobs started while security is off (development only)."""
FILE_NAME: Final = re.compile(r"^[A-Z][A-Za-z]{1,63}\.\d{3,6}\.ndjson$")
"""Output file names (``Patient.000.ndjson``): nothing else is ever served from the folder."""
JOB_ID: Final = re.compile(r"^[0-9a-f]{32}$")


KEEP_FINISHED = timedelta(hours=24)
"""How long a finished export's files wait for their client (the spec lets a server expire
them; a client that needs more asks again)."""


class BulkExportService:
    """Kick off, follow, serve and cancel ``$export`` jobs (see the module docstring)."""

    def __init__(
        self,
        repository: GuardedRepository,
        jobs: BulkJobs,
        folder: Path,
        *,
        policy: Policy | None = None,
        auditor: AuditLog | None = None,
        options: ExportOptions | None = None,
        workers: int = 2,
    ) -> None:
        self.repository = repository
        self.jobs = jobs
        self.folder = folder
        self.policy = policy
        self.auditor = auditor
        self.options = options or ExportOptions()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk")
        self._mine: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    # -- kick-off ----------------------------------------------------------------------
    def kick_off(
        self,
        request: ExportRequest,
        request_url: str,
        principal: Principal | None,
        *,
        source: str | None = None,
    ) -> BulkJob:
        """Record the job and queue it on a worker thread (and forget jobs finished more than
        :data:`KEEP_FINISHED` ago, with their files: exports hold whole records and must not
        linger on disk)."""
        self.expire()
        owner = principal.subject if principal is not None else ANONYMOUS
        job = self.jobs.create(
            uuid.uuid4().hex, owner, request_url, request.kind, request.to_json()
        )
        with self._lock:
            self._mine[job.id] = self._executor.submit(
                self._run, job.id, request, principal, source
            )
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        """Block until this process's worker is done with the job (the CLI, the bench and
        tests; HTTP clients poll the status URL instead)."""
        with self._lock:
            future = self._mine.get(job_id)
        if future is not None:
            future.result(timeout)

    def _run(
        self, job_id: str, request: ExportRequest, principal: Principal | None, source: str | None
    ) -> None:
        try:
            run_export(job_id, request, self._context(job_id, principal, source))
        except Exception:  # the runner records its own failures; this is a last resort
            log.exception("bulk export %s crashed", job_id)
            self.jobs.fail(job_id, "The export failed unexpectedly")
        finally:
            with self._lock:
                self._mine.pop(job_id, None)

    def _context(
        self, job_id: str, principal: Principal | None, source: str | None
    ) -> ExportContext:
        repo = self.repository
        if principal is not None:
            repo = repo.for_caller(principal, source=source)

        def audit(patients: Sequence[str], outcome: str, reason: str | None) -> None:
            if self.auditor is not None:
                self.auditor.record(
                    principal,
                    "export",
                    outcome,
                    patient_ids=patients,
                    entities=[f"$export/{job_id}"],
                    reason=reason,
                    source=source,
                )

        return ExportContext(
            repo=repo,
            jobs=self.jobs,
            folder=self.folder / job_id,
            file_url=lambda name: f"{self.repository.base_url}/bulk/{job_id}/{name}",
            audit=audit,
            principal=principal,
            options=self.options,
        )

    # -- status, files, cancel ---------------------------------------------------------
    def job_of(self, job_id: str, principal: Principal | None) -> BulkJob:
        """The caller's own job; 404 for any other (an id is no capability to another's)."""
        owner = principal.subject if principal is not None else ANONYMOUS
        job = self.jobs.get(job_id) if JOB_ID.match(job_id) else None
        if job is None or job.owner != owner:
            raise NotFound(f"No export job {job_id} of this caller")
        return job

    def file_of(self, job_id: str, name: str, principal: Principal | None) -> Path:
        job = self.job_of(job_id, principal)
        path = self.folder / job_id / name
        if job.status != "completed" or not FILE_NAME.match(name) or not path.is_file():
            raise NotFound(f"No output file {name} in export job {job_id}")
        return path

    def cancel(self, job_id: str, principal: Principal | None) -> None:
        """Forget the job and delete its files (a running worker stops at its next check)."""
        self.job_of(job_id, principal)
        self.jobs.remove(job_id)
        shutil.rmtree(self.folder / job_id, ignore_errors=True)

    def expire(self, older_than: timedelta | None = None) -> list[str]:
        """Remove finished jobs older than ``older_than`` (default :data:`KEEP_FINISHED`) and
        their files; returns their ids."""
        gone = self.jobs.expired(KEEP_FINISHED if older_than is None else older_than)
        for job_id in gone:
            self.jobs.remove(job_id)
            shutil.rmtree(self.folder / job_id, ignore_errors=True)
        return gone

    def shutdown(self) -> None:
        """Fail this process's unfinished jobs (their workers then stop) and wait for them."""
        with self._lock:
            mine = sorted(self._mine)
        for job_id in mine:
            self.jobs.fail(job_id, "The export stopped: the server shut down; kick off again")
        self._executor.shutdown(wait=True, cancel_futures=True)
