"""``sokhoe bench-warehouse``: warehouse build and refresh speed, and indicator latency.

The floor, measured in the same run on the same files: DuckDB's own ``read_json`` reading the
NDJSON the store was loaded from and projecting a few columns per type. It does no FHIRPath, no
de-identification and reads no database, so it bounds what a build can hope for.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.bench.stats import percentiles
from sokhoe.demo import write_demo
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore
from sokhoe.warehouse import indicators as ind
from sokhoe.warehouse.build import Warehouse, views
from sokhoe.warehouse.cells import forget

CHANGED_SHARE = 0.01


def duckdb_floor(folder: Path) -> tuple[int, float]:
    """Rows DuckDB reads from the NDJSON files of the warehouse's resource types, and seconds."""
    types = {v.resource for v in views()}
    rows, started = 0, time.perf_counter()
    with duckdb.connect() as con:
        for path in sorted(folder.glob("*.ndjson")):
            if path.stem not in types:
                continue
            found = con.execute(
                "SELECT count(*), count(DISTINCT id), max(length(resourceType)) "
                "FROM read_json(?, format = 'newline_delimited', maximum_object_size = 16777216)",
                [str(path)],
            ).fetchone()
            rows += int(found[0]) if found else 0
    return rows, time.perf_counter() - started


def _change(repo: GuardedRepository, share: float, seed: int) -> int:
    """Touch ``share`` of the resources of the warehouse's types (a visible change: a tag)."""
    rng = random.Random(seed)
    types = sorted({v.resource for v in views()})
    changed = 0
    for rtype in types:
        for res in list(repo.stream(rtype)):
            if rng.random() >= share or res.content is None:
                continue
            content = dict(res.content)
            meta = dict(content.get("meta") or {})
            meta["tag"] = [*meta.get("tag", []), {"system": "urn:bench", "code": "touched"}]
            content["meta"] = meta
            if rtype == "Patient":
                content["active"] = not content.get("active", True)
            repo.update(content, rtype, res.id)
            changed += 1
    return changed


def run_warehouse_bench(
    patients: int = 20000,
    seed: int = 1,
    workdir: Path = Path("var/bench-warehouse"),
    results: Path | None = Path("bench/results"),
) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    data = workdir / "ndjson"
    write_demo(data, patients, seed, "ndjson", progress=True)
    store = SqlStore(f"sqlite:///{workdir / 'record.db'}")
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    report = load_paths(repo, [data])
    if report.errors:
        raise RuntimeError(f"bench data failed to load: {report.errors[:3]}")
    floor_rows, floor_s = duckdb_floor(data)
    warehouse = Warehouse(workdir / "warehouse", b"bench-key")
    full = warehouse.build(store, full=True)
    changed = _change(repo, CHANGED_SHARE, seed)
    refresh = warehouse.build(store)
    latencies: dict[str, dict[str, float]] = {}
    with ind.open_warehouse(workdir / "warehouse") as con:
        for indicator in ind.INDICATORS:
            samples = []
            for _ in range(10):
                forget()  # every area and period of the indicator, published afresh
                started = time.perf_counter()
                ind.run(con, indicator)
                samples.append((time.perf_counter() - started) * 1000)
            latencies[indicator.name] = percentiles(samples)
    store.close()
    rows = sum(full.rows.values())
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "patients": patients,
        "resources": report.resources,
        "full_build": {
            "seconds": round(full.seconds, 2),
            "resources": full.resources,
            "rows": rows,
            "rows_per_s": round(full.rows_per_second),
        },
        "floor_duckdb_read_json": {
            "seconds": round(floor_s, 2),
            "rows": floor_rows,
            "rows_per_s": round(floor_rows / floor_s) if floor_s else None,
        },
        "ratio_to_floor": round((rows / full.seconds) / (floor_rows / floor_s), 3)
        if full.seconds and floor_s
        else None,
        "incremental_refresh": {
            "changed_resources": changed,
            "seconds": round(refresh.seconds, 2),
            "resources_read": refresh.resources,
        },
        "indicator_latency_ms": latencies,
        "store": "sqlite",
    }
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"{summary['date']}-warehouse-{patients}.json"
        path.write_text(json.dumps(summary, indent=2))
        summary["written"] = str(path)
    return summary


def render(summary: dict[str, Any]) -> str:
    full, floor = summary["full_build"], summary["floor_duckdb_read_json"]
    inc = summary["incremental_refresh"]
    lines = [
        f"warehouse, {summary['patients']} people, {summary['resources']} resources",
        f"  full build          {full['seconds']:>8.1f} s  {full['rows_per_s']:>9,} rows/s",
        f"  floor (DuckDB json) {floor['seconds']:>8.1f} s  {floor['rows_per_s']:>9,} rows/s",
        f"  refresh after {inc['changed_resources']} changes {inc['seconds']:>6.1f} s",
        "  indicator latency (ms)      p50      p95",
    ]
    for name, p in summary["indicator_latency_ms"].items():
        lines.append(f"    {name:24} {p['p50']:>8.1f} {p['p95']:>8.1f}")
    return "\n".join(lines)


__all__ = ["render", "run_warehouse_bench"]
