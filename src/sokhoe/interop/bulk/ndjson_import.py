"""``$import`` of NDJSON: stream lines from a request body into the store through the guard.

The body is read chunk by chunk and cut into lines; at most one batch of lines is held at a
time, so a file of any size imports in constant memory (a single line longer than
``max_line`` bytes is refused, not buffered).

Semantics (what a client can rely on):

- Each line is one resource with an ``id``, written as update-as-create (``PUT
  [type]/[id]``), the way ``sokhoe load`` writes a bulk export's files.
- Lines are written in batches of ``batch_size``, each batch in one transaction (two: its
  Patient lines first, then the others).
- **A bad line is reported with its line number and skipped; it changes nothing.** Bad means:
  not JSON, not a resource with a known type and a valid id, not valid R4, or not allowed
  for the caller (the scope for the type, ``create`` for a new resource and ``update`` for an
  existing one; for a facility's caller, access to the patient the resource is about, as for
  any write). Every other line is written. When a whole batch fails in the store (a
  conditional reference that does not resolve, a concurrent update), it is retried line by
  line so that only the failing lines are reported.
- The answer is a ``Parameters`` summary: lines read, resources written (new versions),
  lines unchanged, and one ``error`` part per refused line (line number + OperationOutcome).

Access: the door decides each line in the transaction that writes it, with the same rules as
single writes (``access/writes.py``). A Patient line is a registration; the Patient lines of a
batch are written (in their own transaction) before the batch's other lines, so a facility's
lines about a patient it registers in the same file are allowed. The writes are audited in
their transaction, naming every patient.
See: https://hl7.org/fhir/uv/bulkdata/ (NDJSON format) and
https://hl7.org/fhir/R4/http.html#upsert
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final

import anyio.to_thread
import orjson

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import FhirError, InvalidRequest, operation_outcome
from sokhoe.fhir.precheck import Checked, precheck
from sokhoe.fhir.repository import check_id, check_type, validated
from sokhoe.interop.load import NdjsonWriter
from sokhoe.search.index import compartment_patient_id

BATCH_SIZE: Final = 500
MAX_REPORTED: Final = 1000
"""Errors listed in the answer (the counts stay exact beyond it)."""


@dataclass
class ImportReport:
    lines: int = 0
    written: int = 0
    unchanged: int = 0
    refused: int = 0
    errors: list[tuple[int, FhirError]] = field(default_factory=list)

    def refuse(self, line: int, error: FhirError) -> None:
        self.refused += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append((line, error))

    def to_parameters(self) -> dict[str, Any]:
        params: list[dict[str, Any]] = [
            {"name": "lines", "valueInteger": self.lines},
            {"name": "written", "valueInteger": self.written},
            {"name": "unchanged", "valueInteger": self.unchanged},
            {"name": "refused", "valueInteger": self.refused},
        ]
        for line, error in sorted(self.errors, key=lambda e: e[0]):
            params.append(
                {
                    "name": "error",
                    "part": [
                        {"name": "line", "valueInteger": line},
                        {"name": "status", "valueInteger": error.status},
                        {"name": "outcome", "resource": operation_outcome(error.issues)},
                    ],
                }
            )
        return {"resourceType": "Parameters", "parameter": params}


@dataclass
class _Line:
    number: int
    resource: dict[str, Any]
    checked: Checked
    patient: str | None


class NdjsonImporter:
    """Writes batches of NDJSON lines for one caller, through the caller's door."""

    def __init__(self, repo: GuardedRepository) -> None:
        self.repo = repo
        self.writer = NdjsonWriter(repo)
        self.report = ImportReport()

    # -- one batch ---------------------------------------------------------------------
    def write_batch(self, batch: list[tuple[int, bytes | None]]) -> None:
        """Check and write one batch (see the module docstring for the semantics)."""
        self.report.lines += len(batch)
        parsed: list[_Line] = []
        for number, text in batch:
            try:
                parsed.append(self._parse(number, text))
            except FhirError as exc:
                self.report.refuse(number, exc)
        # Patients first: registering one is what lets a facility's caller write the lines
        # about that patient that follow
        self._write_checked([x for x in parsed if x.resource["resourceType"] == "Patient"])
        self._write_checked([x for x in parsed if x.resource["resourceType"] != "Patient"])

    def _write_checked(self, parsed: list[_Line]) -> None:
        """One transaction for the lines; when the door refuses one (or one is invalid), each
        line on its own, so the culprits are reported and the rest is written."""
        if not parsed:
            return
        try:
            self._write(parsed)
        except FhirError:
            for line in parsed:
                try:
                    self._write([line])
                except FhirError as exc:
                    self.report.refuse(line.number, exc)

    @staticmethod
    def _parse(number: int, text: bytes | None) -> _Line:
        where = f"line {number}"
        if text is None:
            raise InvalidRequest(f"{where}: the line is longer than the server accepts")
        try:
            resource = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"{where}: not valid JSON ({exc})", code="structure") from exc
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidRequest(f"{where}: a line must hold one FHIR resource")
        rtype = resource["resourceType"]
        check_type(rtype)
        rid = resource.get("id")
        if not isinstance(rid, str):
            raise InvalidRequest(f"{where}: an NDJSON resource needs an id", "id")
        check_id(rid)
        checked = precheck(resource)
        if checked is None:  # pragma: no cover - a dict always gets a result
            raise InvalidRequest(f"{where}: a line must hold one FHIR resource")
        if checked.issues:  # precheck ran the validator and the profiles: raise with paths
            validated(resource, rtype, where, checked)
        patient = None
        if checked.index is not None:
            patient = compartment_patient_id(resource, checked.index)
        return _Line(number, resource, checked, patient)

    def _write(self, lines: list[_Line]) -> None:
        batch = [(f"line {x.number}", x.resource) for x in lines]
        checked: list[Checked | None] = [x.checked for x in lines]
        written = self.writer.write(batch, checked)
        self.report.written += written
        self.report.unchanged += len(lines) - written


# -- streaming -----------------------------------------------------------------------------
async def split_lines(
    chunks: AsyncIterator[bytes], max_line: int
) -> AsyncIterator[tuple[int, bytes | None]]:
    """``(line number, text)`` of each non-blank line; text is None for a line longer than
    ``max_line`` bytes (its bytes are dropped as they arrive, never accumulated)."""
    pending = bytearray()
    number = 0
    overlong = False
    async for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not overlong:
                pending += piece
                if len(pending) > max_line:
                    overlong = True
                    pending.clear()
            if end < 0:
                break
            number += 1
            if overlong:
                yield number, None
            elif pending.strip():
                yield number, bytes(pending)
            pending.clear()
            overlong = False
            start = end + 1
    if overlong or pending.strip():
        number += 1
        yield number, None if overlong else bytes(pending)


async def import_stream(
    importer: NdjsonImporter,
    chunks: AsyncIterator[bytes],
    *,
    max_line: int,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Feed the body's lines to ``importer`` a batch at a time, writing in a worker thread
    so the event loop keeps serving other requests."""
    batch: list[tuple[int, bytes | None]] = []
    async for number, text in split_lines(chunks, max_line):
        batch.append((number, text))
        if len(batch) >= batch_size:
            await anyio.to_thread.run_sync(importer.write_batch, batch)
            batch = []
    if batch:
        await anyio.to_thread.run_sync(importer.write_batch, batch)
    return importer.report


__all__ = ["ImportReport", "NdjsonImporter", "import_stream", "split_lines"]
