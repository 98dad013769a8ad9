"""Benchmark of a system-level ``$export`` on SQLite, with a floor measured in the same run.

``python -m sokhoe.interop.bulk.bench --patients 2000`` generates the synthetic population
(``sokhoe.demo``), loads it into a fresh SQLite file, runs a system ``$export`` end to end
through the export service (job row, worker thread, NDJSON files, the ``export`` AuditEvent
listing every patient) and reports resources per second. The floor is plain Python writing
the very same rows to NDJSON files straight from the database: one ``SELECT content`` over
the current resources, the stored JSON expanded and written as it is, one file per type. The
ratio of the two is what to compare between machines; absolute numbers depend on the disk and
on whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from sokhoe.access.audit import AuditLog
from sokhoe.access.guard import platform_repository
from sokhoe.access.policy import Policy
from sokhoe.access.principal import system_principal
from sokhoe.demo import write_demo
from sokhoe.interop.bulk.export import ExportRequest
from sokhoe.interop.bulk.jobs import BulkJobs
from sokhoe.interop.bulk.service import BulkExportService
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.content import expand

PLATFORM = system_principal("bench", "bulk export bench", frozenset({"system/*.rs"}))


@dataclass(frozen=True)
class BulkBenchResult:
    patients: int
    resources: int
    load_seconds: float
    export_seconds: float
    """Median of the timed runs, kick-off to completed job (the AuditEvent included)."""
    export_per_second: float
    floor_seconds: float
    floor_per_second: float
    ratio_to_floor: float
    output_files: int
    output_bytes: int


def python_floor(db_path: Path, out: Path) -> tuple[int, float]:
    """Write every current resource's stored JSON to one NDJSON file per type, directly."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    conn = sqlite3.connect(db_path)
    handles: dict[str, IO[bytes]] = {}
    n = 0
    try:
        cursor = conn.execute(
            "SELECT resource_type, content FROM resource WHERE deleted = 0 "
            "ORDER BY resource_type, id"
        )
        for rtype, content in cursor:
            fh = handles.get(rtype)
            if fh is None:
                fh = handles[rtype] = (out / f"{rtype}.ndjson").open("wb", buffering=1 << 20)
            fh.write(expand(content))
            fh.write(b"\n")
            n += 1
    finally:
        for fh in handles.values():
            fh.close()
        conn.close()
    return n, time.perf_counter() - started


def run(patients: int, seed: int, work: Path, repeat: int = 3) -> BulkBenchResult:
    """Generate, load, then export ``repeat`` times (medians reported)."""
    demo = work / "demo"
    db_path = work / "bench.db"
    reuse = db_path.exists()  # a --work folder from an earlier run: export only
    if not reuse:
        write_demo(demo, patients, seed, "ndjson")
    store = SqlStore(f"sqlite:///{db_path}")
    try:
        repo = platform_repository(store, "http://bench/fhir", name="bench")
        started = time.perf_counter()
        if not reuse:
            report = load_paths(repo, [demo])
            if report.errors:
                raise RuntimeError(f"demo load failed: {report.errors[:3]}")
        load_seconds = time.perf_counter() - started
        exports = BulkExportService(
            repo,
            BulkJobs(store.writer),
            work / "bulk",
            policy=Policy(store),
            auditor=AuditLog(store.writer),
            workers=1,
        )
        export_times: list[float] = []
        floor_times: list[float] = []
        try:
            for _ in range(repeat):  # alternated, so both see the same machine load
                started = time.perf_counter()
                job = exports.kick_off(ExportRequest("system", None), "bench", PLATFORM)
                exports.wait(job.id)
                export_times.append(time.perf_counter() - started)
                floor_n, floor_seconds = python_floor(db_path, work / "floor")
                floor_times.append(floor_seconds)
            done = exports.jobs.get(job.id)
        finally:
            exports.shutdown()
        if done is None or done.status != "completed" or done.manifest is None:
            raise RuntimeError(f"export did not complete: {done}")
        resources = sum(int(o["count"]) for o in done.manifest["output"])
        files = list((work / "bulk" / job.id).iterdir())
        if floor_n != resources:
            raise RuntimeError(f"floor wrote {floor_n} resources, the export {resources}")
        export_seconds = statistics.median(export_times)
        floor_seconds = statistics.median(floor_times)
    finally:
        store.close()
    return BulkBenchResult(
        patients=patients,
        resources=resources,
        load_seconds=round(load_seconds, 2),
        export_seconds=round(export_seconds, 2),
        export_per_second=round(resources / export_seconds),
        floor_seconds=round(floor_seconds, 2),
        floor_per_second=round(floor_n / floor_seconds),
        ratio_to_floor=round(floor_seconds / export_seconds, 3),
        output_files=len(files),
        output_bytes=sum(f.stat().st_size for f in files),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="exports timed (median)")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder (default: a temp dir); reused if it holds bench.db",
    )
    args = parser.parse_args(argv)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        result = run(args.patients, args.seed, args.work, args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="sokhoe-bulk-bench-") as tmp:
            result = run(args.patients, args.seed, Path(tmp), args.repeat)
    print(json.dumps(asdict(result), indent=2))  # noqa: T201 - the bench's report


if __name__ == "__main__":
    main()
