"""The ``$export`` job runner: stream the requested resources from the store into NDJSON files.

The runner reads the store as a stream through the caller's door (``GuardedRepository.stream``
for system and Patient level, compartment pages for a Group), so memory does not grow with the
export; output files are written through buffered handles, one open file per resource type,
and split every ``max_per_file`` resources (``Patient.000.ndjson``, ``Patient.001.ndjson`` …).

The reads are confined in the query to what the caller may see, as every search is: a
facility's export holds only its patients and shared resources (organisations,
practitioners). The job row is refreshed every
``progress_every`` resources; when the row is gone (the client cancelled with DELETE) the
runner stops and removes what it wrote. One ``export`` AuditEvent per job lists the patients
whose data left the platform.

``_since`` keeps resources whose ``meta.lastUpdated`` is at or after the instant, at every
level. For a Group export the specification lets a server also return older data of patients
added to the group after ``_since``; this server does not track when members were added, so it
applies ``_since`` uniformly (a client that wants a new member's history exports without it).
See: https://hl7.org/fhir/uv/bulkdata/export.html
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Literal

import orjson

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError, NotFound
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.resources import format_instant, parse_instant
from sokhoe.interop.bulk.jobs import BulkJobs
from sokhoe.store.ports import StoredResource

log = logging.getLogger("sokhoe.bulk")

Kind = Literal["system", "patient", "group"]
NDJSON: Final = "application/fhir+ndjson"
GROUP_PAGE: Final = 1000
"""Resources per compartment page read for a Group export."""
GROUP_CHUNK: Final = 200
"""Patients per compartment query (keeps the ``IN`` list short)."""


@dataclass(frozen=True)
class ExportRequest:
    """What a kick-off asked for, after its parameters were checked."""

    kind: Kind
    types: tuple[str, ...] | None
    """The resource types to export; None for every type (the caller may read them all)."""
    since: datetime | None = None
    group_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "types": list(self.types) if self.types is not None else None,
            "since": format_instant(self.since) if self.since else None,
            "group": self.group_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportRequest:
        types = data.get("types")
        since = data.get("since")
        return cls(
            kind=data["kind"],
            types=tuple(types) if types is not None else None,
            since=parse_instant(since) if since else None,
            group_id=data.get("group"),
        )


@dataclass(frozen=True)
class ExportOptions:
    """Tuning of the runner (``Settings`` does not carry these yet: defaults are used)."""

    max_per_file: int = 100_000
    """Resources per NDJSON file before the next file of the type starts."""
    progress_every: int = 5_000
    """Resources between two progress/heartbeat/cancellation checks."""


@dataclass
class _OutputFile:
    resource_type: str
    name: str
    handle: IO[bytes]
    count: int = 0


@dataclass
class NdjsonFiles:
    """The job's output folder: one open file per type, split at ``max_per_file`` lines."""

    folder: Path
    max_per_file: int
    open_files: dict[str, _OutputFile] = field(default_factory=dict)
    done: list[tuple[str, str, int]] = field(default_factory=list)
    """``(type, file name, count)`` of closed files, in the order they were started."""
    _next: dict[str, int] = field(default_factory=dict)

    def write(self, stored: StoredResource) -> None:
        rtype = stored.resource_type
        out = self.open_files.get(rtype)
        if out is None or out.count >= self.max_per_file:
            if out is not None:
                self._close(out)
            n = self._next.get(rtype, 0)
            self._next[rtype] = n + 1
            name = f"{rtype}.{n:03d}.ndjson"
            out = _OutputFile(rtype, name, (self.folder / name).open("wb", buffering=1 << 20))
            self.open_files[rtype] = out
        out.handle.write(orjson.dumps(stored.content))
        out.handle.write(b"\n")
        out.count += 1

    def _close(self, out: _OutputFile) -> None:
        out.handle.close()
        self.done.append((out.resource_type, out.name, out.count))

    def close(self) -> list[tuple[str, str, int]]:
        """Close every file; the outputs sorted by type then file name."""
        for out in self.open_files.values():
            self._close(out)
        self.open_files.clear()
        return sorted(self.done, key=lambda d: (d[0], d[1]))

    def abort(self) -> None:
        for out in self.open_files.values():
            out.handle.close()
        self.open_files.clear()


def group_members(repo: GuardedRepository, group_id: str) -> list[str]:
    """The Patients a Group names (``Group.member.entity``), with records merged into them.

    See: https://hl7.org/fhir/R4/group.html
    """
    with repo.snapshot() as tx:
        group = tx.read("Group", group_id)
        if group is None or group.deleted or group.content is None or not repo.discloses(tx, group):
            raise NotFound(f"Group/{group_id} is not known")
        people: list[str] = []
        for member in group.content.get("member", []):
            ref = str(((member or {}).get("entity") or {}).get("reference", ""))
            if ref.startswith("Patient/"):
                for pid in linked_patient_ids(tx, ref.split("/", 1)[1]):
                    if pid not in people:
                        people.append(pid)
        return people


def select_resources(repo: GuardedRepository, request: ExportRequest) -> Iterator[StoredResource]:
    """Every current resource the request covers that the caller may see, streamed."""
    if request.kind == "group":
        yield from _group_resources(repo, request)
        return
    sources = (
        [repo.stream()]
        if request.types is None
        else [repo.stream(t) for t in sorted(request.types)]
    )
    since = request.since
    for source in sources:
        for stored in source:
            if request.kind == "patient" and stored.patient_id is None:
                continue
            if since is not None and stored.last_updated < since:
                continue
            yield stored


def _group_resources(repo: GuardedRepository, request: ExportRequest) -> Iterator[StoredResource]:
    if request.group_id is None:  # pragma: no cover - the kick-off always sets it
        raise ValueError("a Group export needs the group id")
    people = group_members(repo, request.group_id)
    types = list(request.types) if request.types is not None else None
    for start in range(0, len(people), GROUP_CHUNK):
        chunk = people[start : start + GROUP_CHUNK]
        offset = 0
        while True:
            with repo.snapshot() as tx:
                page, total = tx.compartment(
                    chunk, types, request.since, GROUP_PAGE, offset, repo.access
                )
            yield from page
            offset += len(page)
            if not page or offset >= total:
                break


@dataclass(frozen=True)
class ExportContext:
    """What a job needs besides its row: where to read, who asked, how to check and audit."""

    repo: GuardedRepository
    """The caller's door: every read of the job is confined to what the caller may see."""
    jobs: BulkJobs
    folder: Path
    """``var/bulk/{job id}``: created by the runner, removed when the job does not complete."""
    file_url: Callable[[str], str]
    """The download URL of an output file name."""
    audit: Callable[[Sequence[str], str, str | None], None]
    """Records the ``export`` event: the patients delivered, the outcome (``success`` or
    ``error``) and why it failed."""
    principal: Principal | None
    options: ExportOptions = ExportOptions()


def run_export(job_id: str, request: ExportRequest, ctx: ExportContext) -> None:
    """Run one job to its end: completed with a manifest, failed, or gone (cancelled)."""
    if not ctx.jobs.start(job_id):
        return  # cancelled before a worker was free
    job = ctx.jobs.get(job_id)
    if job is None:  # pragma: no cover - removed between start and get
        return
    transaction_time = format_instant(job.created)
    ctx.folder.mkdir(parents=True, exist_ok=True)
    files = NdjsonFiles(ctx.folder, ctx.options.max_per_file)
    patients: set[str] = set()
    written = 0
    try:
        for stored in select_resources(ctx.repo, request):
            if stored.content is None:
                continue
            files.write(stored)
            if stored.patient_id is not None:
                patients.add(stored.patient_id)
            written += 1
            if written % ctx.options.progress_every == 0 and not ctx.jobs.progress(job_id, written):
                files.abort()
                shutil.rmtree(ctx.folder, ignore_errors=True)
                ctx.audit([], "error", "stopped: cancelled by the client or the server shut down")
                return
        outputs = files.close()
    except Exception as exc:
        files.abort()
        shutil.rmtree(ctx.folder, ignore_errors=True)
        message = "; ".join(i.diagnostics for i in exc.issues) if isinstance(exc, FhirError) else ""
        if not isinstance(exc, FhirError):
            log.exception("bulk export %s failed", job_id)
        ctx.jobs.fail(job_id, message or f"The export failed ({type(exc).__name__})")
        ctx.audit([], "error", message or type(exc).__name__)
        return
    manifest = {
        "transactionTime": transaction_time,
        "request": job.request,
        "requiresAccessToken": True,
        "output": [
            {"type": rtype, "url": ctx.file_url(name), "count": count}
            for rtype, name, count in outputs
        ],
        "error": [],
    }
    if ctx.jobs.complete(job_id, written, manifest):
        ctx.audit(sorted(patients), "success", None)
    else:  # cancelled while the last files were being closed
        shutil.rmtree(ctx.folder, ignore_errors=True)
        ctx.audit([], "error", "stopped: cancelled by the client or the server shut down")
