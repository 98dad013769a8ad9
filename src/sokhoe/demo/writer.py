"""Write the demo population as transaction Bundles or as bulk-export style NDJSON, streaming:
only one chunk of people (bundles) or one person (NDJSON) is in memory at a time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from tqdm import tqdm

from sokhoe.demo.clinical import person_records
from sokhoe.demo.facilities import build_facilities
from sokhoe.demo.population import make_person, population

PEOPLE_PER_BUNDLE = 50
FORMATS = ("bundles", "ndjson")


@dataclass
class DemoSummary:
    patients: int
    resources: int = 0
    files: list[Path] = field(default_factory=list)
    by_type: dict[str, int] = field(default_factory=dict)


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


def transaction_bundle(resources: list[dict[str, Any]]) -> bytes:
    """``resources`` as a transaction Bundle that PUTs each at its id."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_entry(r) for r in resources],
    }
    return orjson.dumps(bundle)


class _NdjsonSink:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.handles: dict[str, IO[bytes]] = {}

    def write(self, resources: list[dict[str, Any]]) -> None:
        for r in resources:
            rtype = r["resourceType"]
            fh = self.handles.get(rtype)
            if fh is None:
                fh = self.handles[rtype] = (self.out / f"{rtype}.ndjson").open("wb")
            fh.write(orjson.dumps(r))
            fh.write(b"\n")

    def close(self) -> list[Path]:
        for fh in self.handles.values():
            fh.close()
        return [self.out / f"{t}.ndjson" for t in self.handles]


def write_demo(
    out: Path, patients: int, seed: int, fmt: str, progress: bool = False
) -> DemoSummary:
    """Generate ``patients`` people from ``seed`` into ``out`` as "bundles" or "ndjson"."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown demo format {fmt!r}: use one of {', '.join(FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    facilities = build_facilities(seed, with_locations=True)
    pop = population(seed, facilities)
    summary = DemoSummary(patients)
    counts: Counter[str] = Counter(r["resourceType"] for r in facilities.resources)
    files: list[Path] = []
    ndjson = _NdjsonSink(out) if fmt == "ndjson" else None
    if ndjson:
        ndjson.write(facilities.resources)
    else:
        path = out / "facilities.json"
        path.write_bytes(transaction_bundle(facilities.resources))
        files.append(path)
    chunk: list[dict[str, Any]] = []
    try:
        for index in tqdm(range(patients), desc="people", unit=" people", disable=not progress):
            person, patient = make_person(pop, index)
            resources = [patient, *person_records(person, facilities.central)]
            for r in resources:
                counts[r["resourceType"]] += 1
            if ndjson:
                ndjson.write(resources)
                continue
            chunk.extend(resources)
            if (index + 1) % PEOPLE_PER_BUNDLE == 0 or index + 1 == patients:
                path = out / f"patients-{index // PEOPLE_PER_BUNDLE + 1:04d}.json"
                path.write_bytes(transaction_bundle(chunk))
                files.append(path)
                chunk = []
    finally:
        if ndjson:
            files.extend(ndjson.close())
    summary.files = sorted(files)
    summary.by_type = dict(sorted(counts.items()))
    summary.resources = sum(counts.values())
    return summary
