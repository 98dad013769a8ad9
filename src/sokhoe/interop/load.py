"""``sokhoe load``: transaction/batch Bundles and NDJSON files (or folders of them) into a store.

Bundles go through the same transaction code as ``POST /fhir``. NDJSON lines (a FHIR bulk
export: one resource per line, with ids) are written as update-as-create in batches of a few
hundred resources per transaction, in dependency order (organisations and practitioners before
patients before everything else) so conditional references such as
``Practitioner?identifier=…`` resolve.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sokhoe.errors import FhirError, InvalidRequest, NotFound, PreconditionFailed
from sokhoe.fhir.bundles import process_bundle
from sokhoe.fhir.precheck import Checked, precheck_bundle, precheck_lines
from sokhoe.fhir.references import walk_references
from sokhoe.fhir.repository import FhirRepository, check_id, check_type, validated
from sokhoe.fhir.resources import same_content
from sokhoe.interop.parallel import default_workers, ordered_map
from sokhoe.store.ports import StoreSession, WriteItem

TYPE_ORDER = [
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Medication",
    "Patient",
    "RelatedPerson",
    "Coverage",
    "Encounter",
]
BATCH = 1000


@dataclass
class LoadReport:
    files: int = 0
    resources: int = 0
    bundles: int = 0
    errors: list[str] = field(default_factory=list)


def _type_rank(path: Path) -> tuple[int, str]:
    name = path.name
    if name.startswith(("hospitalInformation", "practitionerInformation")):
        return (-1, name)
    rtype = re.split(r"[.\-_]", name)[0]
    rank = TYPE_ORDER.index(rtype) if rtype in TYPE_ORDER else len(TYPE_ORDER)
    return (rank, name)


def discover(paths: Iterable[Path]) -> list[Path]:
    """Files to load, in an order where referenced resources come first."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += [f for f in p.rglob("*") if f.suffix in (".json", ".ndjson") and f.is_file()]
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"No such file or folder: {p}")
    return sorted(files, key=_type_rank)


def ndjson_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield n, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InvalidRequest(f"{path.name}:{n}: not valid JSON ({exc})") from exc


class NdjsonWriter:
    """Writes resources with ids as update-as-create, a batch per transaction."""

    def __init__(self, repo: FhirRepository) -> None:
        self.repo = repo
        self.conditional: dict[str, str] = {}

    def _resolve(self, tx: StoreSession, resource: dict[str, Any], where: str) -> dict[str, str]:
        """Resolve conditional references in place; returns old text -> new."""
        changes: dict[str, str] = {}
        for ref in walk_references(resource):
            value = ref["reference"]
            if "?" not in value or value.startswith("#"):
                continue
            if value not in self.conditional:
                rtype, _, query = value.partition("?")
                check_type(rtype)
                found = self.repo.conditional_matches(tx, rtype, query, confined=True)
                if len(found) != 1:
                    err = PreconditionFailed if found else NotFound
                    raise err(f"{where}: conditional reference '{value}' matched {len(found)}")
                self.conditional[value] = f"{rtype}/{found[0]}"
            ref["reference"] = changes[value] = self.conditional[value]
        return changes

    def write(
        self, batch: list[tuple[str, dict[str, Any]]], checked: list[Checked | None] | None = None
    ) -> int:
        """Write one batch atomically; returns how many versions were written.

        ``checked`` (aligned with ``batch``) holds what worker processes computed ahead.
        """
        with self.repo.transaction() as tx:
            by_type: dict[str, list[tuple[str, dict[str, Any], Checked | None]]] = {}
            for n, (where, r) in enumerate(batch):
                if not isinstance(r, dict) or not isinstance(r.get("id"), str):
                    raise InvalidRequest(f"{where}: an NDJSON resource needs an id")
                check_type(str(r.get("resourceType")))
                check_id(r["id"])
                pre = checked[n] if checked else None
                by_type.setdefault(r["resourceType"], []).append((where, r, pre))
            now = self.repo.clock()
            items: list[WriteItem] = []
            seen: set[tuple[str, str]] = set()
            for rtype, entries in by_type.items():
                versions = tx.current_versions(rtype, [r["id"] for _, r, _ in entries])
                current = {c.id: c for c in tx.read_many([(rtype, i) for i in versions])}
                for where, r, pre in entries:
                    if (rtype, r["id"]) in seen:
                        raise InvalidRequest(f"{where}: {rtype}/{r['id']} appears twice in a batch")
                    seen.add((rtype, r["id"]))
                    conditional = pre is None or any("?" in v for v in pre.references)
                    changes = self._resolve(tx, r, where) if conditional else {}
                    if changes and pre is not None:
                        pre = pre.rewritten(r, changes)
                    validated(r, rtype, where, pre)
                    prev = versions.get(r["id"])
                    old = current.get(r["id"])
                    if old is not None and old.content and same_content(old.content, r):
                        continue
                    version = 1 if prev is None else prev + 1
                    items.append(
                        self.repo.prepare(
                            r, r["id"], version, "PUT", prev, now, pre.index if pre else None
                        )
                    )
            tx.write(items)
            return len(items)


@dataclass(frozen=True)
class _Unit:
    """One piece of work: a whole JSON file, or one batch of an NDJSON file's lines."""

    path: Path
    lines: list[tuple[int, bytes]] | None = None
    """``(line number, text)`` for NDJSON; None for a JSON file."""


def _units(files: list[Path]) -> Iterator[_Unit]:
    for path in files:
        if path.suffix != ".ndjson":
            yield _Unit(path)
            continue
        batch: list[tuple[int, bytes]] = []
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    batch.append((n, line))
                    if len(batch) >= BATCH:
                        yield _Unit(path, batch)
                        batch = []
        if batch:
            yield _Unit(path, batch)


def _precheck_unit(unit: _Unit) -> tuple[bytes | None, dict[int, Checked] | list[Checked | None]]:
    """Worker side: read and check a unit (the JSON file's bytes travel back with it)."""
    if unit.lines is not None:
        return None, precheck_lines([text for _, text in unit.lines])
    data = unit.path.read_bytes()
    return data, precheck_bundle(data)


PARALLEL_MIN_BYTES = 4 << 20
"""Below this much input a process pool costs more (start-up) than it saves."""


def load_paths(
    repo: FhirRepository,
    paths: Iterable[Path],
    progress: Callable[[int], object] | None = None,
    workers: int | None = None,
) -> LoadReport:
    """Load every file; a file that fails is reported and leaves the store as it was.

    An NDJSON file is written in batches of :data:`BATCH` lines, each its own transaction: a
    failing batch stops that file, and the batches before it stay. ``workers`` processes
    validate and index ahead of the writer (default: one per core for loads of more than a
    few megabytes, none for small ones).
    """
    report = LoadReport()
    writer = NdjsonWriter(repo)
    files = discover(paths)
    if workers is None:
        size = sum(f.stat().st_size for f in files)
        workers = default_workers() if size >= PARALLEL_MIN_BYTES else 0
    failed: set[Path] = set()
    seen: set[Path] = set()
    for unit, (data, checked) in ordered_map(_precheck_unit, _units(files), workers):
        if unit.path not in seen:
            seen.add(unit.path)
            report.files += 1
        if unit.path in failed:
            continue
        try:
            n = _load_unit(repo, writer, unit, data, checked, report)
        except (FhirError, orjson.JSONDecodeError) as exc:
            failed.add(unit.path)
            report.errors.append(f"{unit.path}: {exc}")
            continue
        report.resources += n
        if progress:
            progress(n)
    return report


def _load_unit(
    repo: FhirRepository,
    writer: NdjsonWriter,
    unit: _Unit,
    data: bytes | None,
    checked: dict[int, Checked] | list[Checked | None],
    report: LoadReport,
) -> int:
    if unit.lines is not None:
        batch = []
        for n, text in unit.lines:
            try:
                batch.append((f"{unit.path.name}:{n}", orjson.loads(text)))
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"{unit.path.name}:{n}: not valid JSON ({exc})") from exc
        writer.write(batch, checked if isinstance(checked, list) else None)
        return len(batch)
    doc = orjson.loads(data if data is not None else unit.path.read_bytes())
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        process_bundle(repo, doc, checked if isinstance(checked, dict) else None)
        report.bundles += 1
        return len(doc.get("entry", []))
    if not isinstance(doc, dict):
        raise InvalidRequest("A JSON file must hold a resource or a Bundle")
    repo.update(doc, str(doc.get("resourceType", "")), str(doc.get("id", "")))
    return 1
