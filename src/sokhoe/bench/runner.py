"""The benchmark: ingest throughput with a raw-insert floor measured in the same run, then
read/search/``$everything`` latencies on the loaded store.

Machines here are noisy, so every throughput is also reported as a ratio of a floor measured
minutes apart on the same machine and database: a plain ``INSERT`` of the very same JSON, in the
same batches, into the same kind of database.
"""

from __future__ import annotations

import json
import platform
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Column, MetaData, String, Table, Text, insert, inspect, text
from sqlalchemy.engine import make_url

from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.principal import system_principal
from sokhoe.bench.disk import postgres_footprint, sqlite_footprint
from sokhoe.bench.stats import table, timed
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import discover, load_paths, ndjson_lines
from sokhoe.mpi.identifiers import CCCD as CCCD_SYSTEM
from sokhoe.mpi.identifiers import MRN_PREFIX
from sokhoe.mpi.matching import Matcher
from sokhoe.mpi.model import MatchModel
from sokhoe.operations.match import run_match
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.engine import make_engine


@dataclass
class Sample:
    """What the latency queries ask about, taken from the generated files."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    """Patient id -> resources in its bundle."""


def _resources(paths: list[Path]) -> Iterator[list[dict[str, Any]]]:
    """The resources of each file (a bundle's entries, or an NDJSON file's lines)."""
    for path in paths:
        if path.suffix == ".ndjson":
            yield [r for _, r in ndjson_lines(path)]
        else:
            doc = orjson.loads(path.read_bytes())
            if doc.get("resourceType") == "Bundle":
                yield [e["resource"] for e in doc.get("entry", []) if "resource" in e]
            else:
                yield [doc]


def _sample(paths: list[Path], rng: random.Random, k: int = 300) -> Sample:
    s = Sample()
    seen = 0
    for resources in _resources(paths):
        for r in resources:
            if r["resourceType"] == "Patient":
                seen += 1
                if len(s.patients) < k:
                    s.patients.append(r)
                elif rng.random() < k / seen:
                    s.patients[rng.randrange(k)] = r
            ref = (r.get("subject") or r.get("patient") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                pid = ref.split("/", 1)[1]
                s.sizes[pid] = s.sizes.get(pid, 0) + 1
    return s


def raw_insert_floor(url: str, paths: list[Path], *, drop: bool = False) -> tuple[int, float]:
    """Insert the same JSON into one plain table, one transaction per file: the floor.

    ``drop``: the table goes afterwards (PostgreSQL: it is in the database under test)."""
    engine = make_engine(url, write=True)
    md = MetaData()
    raw = Table(
        "raw_resource",
        md,
        Column("resource_type", String(64)),
        Column("id", String(64)),
        Column("content", Text),
    )
    md.create_all(engine)
    n = 0
    t0 = time.perf_counter()
    for resources in _resources(paths):
        rows = [
            {
                "resource_type": r["resourceType"],
                "id": r.get("id", ""),
                "content": orjson.dumps(r).decode(),
            }
            for r in resources
        ]
        with engine.begin() as conn:
            conn.execute(insert(raw), rows)
        n += len(rows)
    elapsed = time.perf_counter() - t0
    if drop:
        with engine.begin() as conn:
            floor_bytes = conn.execute(
                text("SELECT pg_total_relation_size('raw_resource')")
            ).scalar_one()
        raw.drop(engine)
        _FLOOR_BYTES[url] = int(floor_bytes)
    engine.dispose()
    return n, elapsed


_FLOOR_BYTES: dict[str, int] = {}
"""PostgreSQL: the floor table's bytes, measured before it is dropped (per database URL)."""


def _ingest(
    url: str, paths: list[Path], partitions: int = 0
) -> tuple[SqlStore, FhirRepository, int, float]:
    store = SqlStore(url, partitions=partitions)
    repo = platform_repository(store, "http://bench/fhir", name="bench")
    t0 = time.perf_counter()
    report = load_paths(repo, paths)
    elapsed = time.perf_counter() - t0
    if report.errors:
        raise RuntimeError(f"ingest failed: {report.errors[:3]}")
    return store, repo, report.resources, elapsed


def _latencies(
    repo: GuardedRepository, sample: Sample, rng: random.Random
) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    pats = sample.patients
    ids = [p["id"] for p in pats]

    def search(rtype: str, params: list[tuple[str, str]]) -> None:
        repo.search(repo.parse_query(rtype, params))

    def cccd(p: dict[str, Any]) -> str:
        return str(
            next(
                (i["value"] for i in p.get("identifier", []) if i.get("system") == CCCD_SYSTEM),
                p["id"],
            )
        )

    def full_name(p: dict[str, Any]) -> str:
        n = p["name"][0]
        return " ".join([n.get("family", ""), *n.get("given", [])]).strip()

    biggest = sorted(sample.sizes, key=lambda k: -sample.sizes[k])[:50]
    matcher = Matcher(repo, MatchModel.default())
    doors: dict[str, GuardedRepository] = {}

    def facility(p: dict[str, Any]) -> GuardedRepository:
        """The door of the system of the facility that keeps ``p``'s record number."""
        code = str(_facility_of(p))
        if code not in doors:
            who = system_principal(f"his-{code}", f"HIS {code}", HIS_SCOPES, code)
            doors[code] = repo.for_caller(who)
        return doors[code]

    def match(p: dict[str, Any]) -> None:
        answer = run_match(repo, matcher, _match_input(p))
        found[("$match", p["id"])] = any(
            e["resource"]["id"] == p["id"] for e in answer["entry"][:1]
        )

    def confined(p: dict[str, Any]) -> None:
        door = facility(p)
        page = door.search(door.parse_query("Patient", [("name", full_name(p)), ("_count", "20")]))
        found[("confined", p["id"])] = p["id"] in {m.id for m in page.matches}

    found: dict[tuple[str, str], bool] = {}
    kept = [p for p in pats if _facility_of(p)]

    months = [f"{1950 + rng.randrange(70)}-{rng.randrange(1, 13):02d}" for _ in range(200)]
    observations = [
        m.id
        for i in ids
        for m in repo.search(
            repo.parse_query("Observation", [("subject", f"Patient/{i}"), ("_count", "1")])
        ).matches
    ]
    latencies = {
        "read Patient": timed(lambda i: repo.read("Patient", i), ids),
        "read Observation": timed(lambda i: repo.read("Observation", i), observations),
        "search identifier (CCCD)": timed(
            lambda p: search("Patient", [("identifier", f"{CCCD_SYSTEM}|{cccd(p)}")]), pats
        ),
        "search name, accent-insensitive": timed(
            lambda p: search("Patient", [("name", full_name(p)), ("_count", "20")]), pats
        ),
        "search birthdate month range": timed(
            lambda m: search(
                "Patient",
                [("birthdate", f"ge{m}-01"), ("birthdate", f"le{m}-28"), ("_count", "20")],
            ),
            months,
        ),
        "search Encounter?patient=&_include": timed(
            lambda i: search(
                "Encounter",
                [("patient", i), ("_include", "Encounter:service-provider"), ("_count", "50")],
            ),
            ids,
        ),
        "$everything (largest patients)": timed(
            lambda i: repo.everything(i, since=None, types=None, count=1000, offset=0), biggest
        ),
        "$match (name, birth date, sex, address)": timed(match, pats),
        "search name, confined to a facility": timed(confined, kept),
    }
    # what the timed queries answered: a fast query that misses the person proves nothing
    answers = {
        kind: {
            "asked": sum(1 for k, _ in found if k == kind),
            "found the person": sum(1 for (k, _), hit in found.items() if k == kind and hit),
        }
        for kind in ("$match", "confined")
    }
    return latencies, answers


HIS_SCOPES = frozenset({"system/*.rs"})
"""A facility's hospital information system reading and searching (confined to its people)."""


def _match_input(patient: dict[str, Any]) -> dict[str, Any]:
    """What a facility types for someone without their card: no identifier, no id."""
    typed = {k: v for k, v in patient.items() if k not in ("id", "identifier", "meta")}
    return {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": typed}]}


def _facility_of(patient: dict[str, Any]) -> str | None:
    """The facility whose record number the person has (which gives it a care relationship)."""
    for ident in patient.get("identifier", []):
        system = str(ident.get("system", ""))
        if system.startswith(MRN_PREFIX):
            return system[len(MRN_PREFIX) :]
    return None


FLOOR_PEOPLE = 20_000
"""The raw-insert floor is timed on the files of at most this many people (all of them at the
default size)."""


def _empty_postgres(url: str) -> None:
    """The bench loads into a database of its own: refuse one that holds records."""
    engine = make_engine(url, write=False)
    try:
        with engine.connect() as conn:
            if (
                inspect(conn).has_table("resource")
                and conn.execute(text("SELECT EXISTS (SELECT 1 FROM resource)")).scalar_one()
            ):
                raise RuntimeError(f"{url}: the bench needs an empty database")
    finally:
        engine.dispose()


def run_bench(
    patients: int,
    seed: int,
    workdir: Path,
    results_dir: Path,
    ndjson: bool = True,
    db: str | None = None,
    partitions: int = 0,
) -> dict[str, Any]:
    """``db``: a PostgreSQL URL to load into (an empty database, created with ``partitions``
    hash partitions by patient when > 0) instead of SQLite files in ``workdir``; the floor is
    then a plain table in that database, dropped after it is timed, and the NDJSON load is not
    run (it would need a second database)."""
    from sokhoe.demo import write_demo

    postgres = db is not None and make_url(db).get_backend_name() == "postgresql"
    if db is not None and not postgres:
        raise ValueError("--db takes a PostgreSQL URL (SQLite runs in the work folder)")
    if db is not None:
        _empty_postgres(db)

    rng = random.Random(seed)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    write_demo(workdir / "bundles", patients, seed, "bundles", progress=True)
    bundle_files = discover([workdir / "bundles"])
    sample = _sample(bundle_files, rng)  # before the ingest's draws: ``rerun_queries`` repeats it

    # the floor is a rate: at most FLOOR_PEOPLE people's files, so a national-size run does
    # not need the disk for a second copy of everything
    floor_files = bundle_files[: max(1, len(bundle_files) * FLOOR_PEOPLE // max(patients, 1))]
    if db is not None:
        floor_n, floor_s = raw_insert_floor(db, floor_files, drop=True)
        store, _, n, secs = _ingest(db, bundle_files, partitions)
    else:
        floor_n, floor_s = raw_insert_floor(f"sqlite:///{workdir / 'floor.db'}", floor_files)
        store, _, n, secs = _ingest(f"sqlite:///{workdir / 'bundles.db'}", bundle_files)
    results: dict[str, Any] = {
        **_header(patients, n),
        "ingest_bundles": {"resources_per_s": round(n / secs), "seconds": round(secs, 1)},
        "floor_raw_insert": {
            "resources_per_s": round(floor_n / floor_s),
            "seconds": round(floor_s, 1),
            "resources": floor_n,
        },
    }
    results["ingest_bundles"]["ratio_to_floor"] = round((n / secs) / (floor_n / floor_s), 3)
    if db is not None:
        results["database"] = {
            "kind": "postgresql",
            "partitions": _partition_count(store),
            "url": make_url(db).render_as_string(hide_password=True),
        }
        with store.writer.connect() as conn:  # sizes and the planner's statistics settled
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        results["disk"] = postgres_footprint(db, n)
        results["disk"]["floor_bytes_per_resource"] = round(_FLOOR_BYTES[db] / floor_n)
    else:
        store.close()  # folds the WAL into the file, so the file's size is the database's
        results["disk"] = sqlite_footprint(workdir / "bundles.db", n)
        floor_bytes = (workdir / "floor.db").stat().st_size
        results["disk"]["floor_bytes_per_resource"] = round(floor_bytes / floor_n)
        store = SqlStore(f"sqlite:///{workdir / 'bundles.db'}")
    door = platform_repository(store, "http://bench/fhir", name="bench")
    if ndjson and db is None:
        write_demo(workdir / "ndjson", patients, seed, "ndjson", progress=True)
        ndjson_files = discover([workdir / "ndjson"])
        s2, _, n2, secs2 = _ingest(f"sqlite:///{workdir / 'ndjson.db'}", ndjson_files)
        s2.close()
        results["ingest_ndjson"] = {
            "resources_per_s": round(n2 / secs2),
            "seconds": round(secs2, 1),
            "ratio_to_floor": round((n2 / secs2) / (floor_n / floor_s), 3),
        }
    results["latency_ms"], results["answers"] = _latencies(door, sample, rng)
    store.close()
    results_dir.mkdir(parents=True, exist_ok=True)
    kind = "" if db is None else f"-pg{results['database']['partitions'] or ''}"
    out = results_dir / f"{datetime.now(UTC):%Y-%m-%d}-{patients}{kind}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


def rerun_queries(
    patients: int, seed: int, workdir: Path, results_dir: Path, db: str | None = None
) -> dict[str, Any]:
    """The latencies again, on the database and files a run of ``run_bench`` with the same
    size and seed left (``workdir``'s SQLite file, or the PostgreSQL database ``db`` it loaded):
    the same people, months and queries, timed by the code of now (a national-size ingest
    takes hours; a change to searching need not)."""
    file = workdir / "bundles.db"
    if not (workdir / "bundles").is_dir() or (db is None and not file.is_file()):
        raise FileNotFoundError(f"{workdir}: no database and files of an earlier run")
    rng = random.Random(seed)
    bundle_files = discover([workdir / "bundles"])
    sample = _sample(bundle_files, rng)
    store = SqlStore(db or f"sqlite:///{file}")
    try:
        resources, people = _counts(store)
        if people < patients:
            raise ValueError(f"{db or workdir} does not hold a run of {patients} people")
        door = platform_repository(store, "http://bench/fhir", name="bench")
        results: dict[str, Any] = {**_header(patients, resources), "queries_only": True}
        kind = ""
        if db is not None:
            count = _partition_count(store)
            results["database"] = {"kind": "postgresql", "partitions": count}
            kind = f"-pg{count or ''}"
        results["latency_ms"], results["answers"] = _latencies(door, sample, rng)
    finally:
        store.close()
    results_dir.mkdir(parents=True, exist_ok=True)
    out = results_dir / f"{datetime.now(UTC):%Y-%m-%d}-{patients}{kind}-queries.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


def _counts(store: SqlStore) -> tuple[int, int]:
    """(resources, Patients) stored."""
    with store.reader.connect() as conn:
        every = conn.execute(text("SELECT count(*) FROM resource")).scalar_one()
        people = conn.execute(
            text("SELECT count(*) FROM resource WHERE resource_type = 'Patient'")
        ).scalar_one()
    return int(every), int(people)


def _header(patients: int, resources: int) -> dict[str, Any]:
    """When, on what machine, and at which size a run was made."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": _cpus(),
            "python": platform.python_version(),
        },
        "patients": patients,
        "resources": resources,
    }


def _partition_count(store: SqlStore) -> int:
    from sokhoe.store.sql.partitions import partitions_of

    with store.reader.connect() as conn:
        return len(partitions_of(conn, "resource"))


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def render(results: dict[str, Any]) -> str:
    rows = [
        ("patients / resources", f"{results['patients']:,} / {results['resources']:,}"),
    ]
    if "database" in results:
        parts = results["database"]["partitions"]
        layout = f"{parts} hash partitions by patient" if parts else "plain tables"
        rows.append(("database", f"PostgreSQL, {layout}"))
    if "floor_raw_insert" in results:  # not in a ``--queries-only`` run
        rows += [
            (
                "floor: raw INSERT",
                f"{results['floor_raw_insert']['resources_per_s']:,} resources/s",
            ),
            (
                "ingest transaction bundles",
                f"{results['ingest_bundles']['resources_per_s']:,} resources/s "
                f"({results['ingest_bundles']['ratio_to_floor']:.2f} × floor)",
            ),
        ]
    if "disk" in results:
        d = results["disk"]
        parts = ", ".join(f"{k} {v:,}" for k, v in d["parts_per_resource"].items())
        rows.append(
            (
                "disk per resource",
                f"{d['bytes_per_resource']:,} bytes ({parts}; the raw JSON alone: "
                f"{d['floor_bytes_per_resource']:,})",
            )
        )
    if "ingest_ndjson" in results:
        r = results["ingest_ndjson"]
        rows.append(
            (
                "ingest bulk NDJSON",
                f"{r['resources_per_s']:,} resources/s ({r['ratio_to_floor']:.2f} × floor)",
            )
        )
    for kind, seen in results.get("answers", {}).items():
        rows.append((f"{kind}: found the person", f"{seen['found the person']} of {seen['asked']}"))
    for name, p in results["latency_ms"].items():
        rows.append((name, f"p50 {p['p50']:.2f} ms  p95 {p['p95']:.2f} ms  p99 {p['p99']:.2f} ms"))
    return table(rows)
