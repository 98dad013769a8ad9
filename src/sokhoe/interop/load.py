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
from sokhoe.fhir.bundles import process_bundle, walk_references
from sokhoe.fhir.repository import FhirRepository, check_id, check_type, validated
from sokhoe.fhir.resources import same_content
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
BATCH = 500


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

    def _resolve(self, tx: StoreSession, resource: dict[str, Any], where: str) -> None:
        for ref in walk_references(resource):
            value = ref["reference"]
            if "?" not in value or value.startswith("#"):
                continue
            if value not in self.conditional:
                rtype, _, query = value.partition("?")
                check_type(rtype)
                found = self.repo.conditional_matches(tx, rtype, query)
                if len(found) != 1:
                    err = PreconditionFailed if found else NotFound
                    raise err(f"{where}: conditional reference '{value}' matched {len(found)}")
                self.conditional[value] = f"{rtype}/{found[0]}"
            ref["reference"] = self.conditional[value]

    def write(self, batch: list[tuple[str, dict[str, Any]]]) -> int:
        """Write one batch atomically; returns how many versions were written."""
        with self.repo.store.begin(write=True) as tx:
            by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for where, r in batch:
                if not isinstance(r, dict) or not isinstance(r.get("id"), str):
                    raise InvalidRequest(f"{where}: an NDJSON resource needs an id")
                check_type(str(r.get("resourceType")))
                check_id(r["id"])
                by_type.setdefault(r["resourceType"], []).append((where, r))
            now = self.repo.clock()
            items: list[WriteItem] = []
            seen: set[tuple[str, str]] = set()
            for rtype, entries in by_type.items():
                versions = tx.current_versions(rtype, [r["id"] for _, r in entries])
                changed = {rid for rid in versions}
                current = {c.id: c for c in tx.read_many([(rtype, i) for i in changed])}
                for where, r in entries:
                    if (rtype, r["id"]) in seen:
                        raise InvalidRequest(f"{where}: {rtype}/{r['id']} appears twice in a batch")
                    seen.add((rtype, r["id"]))
                    self._resolve(tx, r, where)
                    validated(r, rtype, where)
                    prev = versions.get(r["id"])
                    old = current.get(r["id"])
                    if old is not None and old.content and same_content(old.content, r):
                        continue
                    version = 1 if prev is None else prev + 1
                    items.append(self.repo.prepare(r, r["id"], version, "PUT", prev, now))
            tx.write(items)
            return len(items)


def load_paths(
    repo: FhirRepository, paths: Iterable[Path], progress: Callable[[int], object] | None = None
) -> LoadReport:
    """Load every file; a file that fails is reported and leaves the store as it was."""
    report = LoadReport()
    writer = NdjsonWriter(repo)
    for path in discover(paths):
        report.files += 1
        try:
            if path.suffix == ".ndjson":
                batch: list[tuple[str, dict[str, Any]]] = []
                for n, resource in ndjson_lines(path):
                    batch.append((f"{path.name}:{n}", resource))
                    if len(batch) >= BATCH:
                        writer.write(batch)
                        report.resources += len(batch)
                        if progress:
                            progress(len(batch))
                        batch = []
                if batch:
                    writer.write(batch)
                    report.resources += len(batch)
                    if progress:
                        progress(len(batch))
            else:
                bundle = orjson.loads(path.read_bytes())
                if bundle.get("resourceType") == "Bundle":
                    process_bundle(repo, bundle)
                    n = len(bundle.get("entry", []))
                    report.bundles += 1
                else:
                    repo.update(bundle, bundle.get("resourceType", ""), bundle.get("id", ""))
                    n = 1
                report.resources += n
                if progress:
                    progress(n)
        except (FhirError, orjson.JSONDecodeError) as exc:
            report.errors.append(f"{path}: {exc}")
    return report
