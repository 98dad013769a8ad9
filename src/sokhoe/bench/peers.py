"""``make bench-peers``: sokhoe beside HAPI FHIR's JPA server on the same data, in one run
(issue 15, item 8).

Users compare us with HAPI, so the same Synthea transaction bundles (``shared/data/synthea``,
as they are) are POSTed to both servers' base URL by the same client with the same number of
concurrent connections, and then the same reads and searches are run against both: read
``Patient/{id}``, identifier search, name search, ``Patient/{id}/$everything`` (every page,
following ``next`` links) and ``Observation?patient=&code=``. Each figure is p50/p95/p99 in
milliseconds and requests per second, after an untimed warm-up pass; each server is measured
alone on the machine (one after the other), sokhoe as ``sokhoe serve --workers 2`` with its
audit on (it always is), HAPI with its default settings on PostgreSQL (``bench/peers/hapi``).

Paged searches ask for ``_count=50`` (HAPI's default largest page) and follow every ``next``
link, so ``$everything`` and the Observation search time the whole answer, not its first
page. HAPI's defaults reuse a search's results for a minute
(``JpaStorageSettings.reuseCachedSearchResultsForMillis``), so HAPI answers a repeated search
from its search cache; sokhoe runs every search, confined by its access door and audited.

The ratio column says how many times better sokhoe does: for a rate sokhoe ÷ HAPI, for a
latency or a size HAPI ÷ sokhoe, so above 1 sokhoe is ahead and below 1 it is behind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from sokhoe.bench.peer_client import RequestFailed, Server, drive, fetch_all
from sokhoe.bench.shared_data import shared_data
from sokhoe.bench.stats import percentiles

SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"

QUERIES = ("read", "identifier", "name", "everything", "observations")
RATE_FIGURES = {"ingest", "per_second"}


def load_order(folder: Path) -> list[list[Path]]:
    """The bundles in phases: a phase's bundles may load concurrently, a phase starts when the
    one before has finished.

    The organisations, locations and practitioners (``hospitalInformation*``,
    ``practitionerInformation*``, batch bundles) come first, one at a time, because the
    fhir-data-pipes patient bundles refer to them by conditional references
    (``Practitioner?identifier=…``). Those patient bundles come next; the self-contained 2019
    bundles last, since they POST organisations without ``ifNoneExist``, after which an
    ``Organization?identifier=…`` reference could match two and must fail (the shared data
    README orders loading the same way).
    """
    info = sorted(
        p
        for p in folder.glob("*.json")
        if p.name.startswith(("hospitalInformation", "practitionerInformation"))
    )
    patients = sorted(p for p in folder.glob("*.json") if p not in info)
    conditional = [p for p in patients if b"?identifier=" in p.read_bytes()]
    plain = [p for p in patients if p not in conditional]
    return [[p] for p in info] + [b for b in (conditional, plain) if b]


def _registry(phase: list[Path]) -> bool:
    return phase[0].name.startswith(("hospitalInformation", "practitionerInformation"))


def limited(phases: list[list[Path]], patients: int) -> list[list[Path]]:
    """The first ``patients`` patient bundles in load order, with every registry batch (a
    smaller run for trying the harness; the phases keep their order)."""
    out = []
    for phase in phases:
        if not _registry(phase):
            phase = phase[: max(patients, 0)]
            patients -= len(phase)
        if phase:
            out.append(phase)
    return out


@dataclass(frozen=True)
class Person:
    """A loaded patient as the queries see it: the server's id, the Synthea identifier, the
    family name, the code (``system|code``) of the patient's most frequent Observation (the
    two Synthea sets share no code), and the file for the report."""

    file: str
    id: str
    identifier: str
    family: str
    code: str


def _frequent_code(bundle: dict[str, Any]) -> str:
    from collections import Counter

    codes = Counter(
        f"{c['system']}|{c['code']}"
        for e in bundle["entry"]
        if e.get("resource", {}).get("resourceType") == "Observation"
        for c in e["resource"].get("code", {}).get("coding", [])[:1]
    )
    return codes.most_common(1)[0][0] if codes else ""


def _person_of(path: Path, bundle: dict[str, Any], response: dict[str, Any]) -> Person | None:
    for sent, got in zip(bundle["entry"], response.get("entry", []), strict=False):
        resource = sent.get("resource", {})
        if resource.get("resourceType") != "Patient":
            continue
        location = got.get("response", {}).get("location", "")
        parts = location.split("/")
        rid = parts[parts.index("Patient") + 1]
        value = next(
            i["value"] for i in resource.get("identifier", []) if i.get("system") == SYNTHEA_SYSTEM
        )
        family = resource["name"][0]["family"]
        return Person(path.name, rid, value, family, _frequent_code(bundle))
    return None


def _post_bundle(server: Server, path: Path) -> tuple[int, Person | None, bool]:
    """POST one bundle to the base (retried once, as a client would): (entries, person, ok)."""
    raw = path.read_bytes()
    bundle = orjson.loads(raw)
    for _ in (1, 2):
        status, data = server.request("POST", "", raw)
        if status == 200:
            return len(bundle["entry"]), _person_of(path, bundle, orjson.loads(data)), True
    return len(bundle["entry"]), None, False


def ingest(
    server: Server, phases: list[list[Path]], clients: int
) -> tuple[dict[str, Any], list[Person]]:
    """Load every phase; the organisation and practitioner batches first (the warm-up: their
    time is reported, not counted in the rate), then the patient bundles, timed."""
    people: list[Person] = []
    report: dict[str, Any] = {"failed": []}
    timed_resources = loaded = 0
    timed_seconds = 0.0
    for phase in phases:
        patient_phase = not _registry(phase)
        run = drive([partial(_post_bundle, server, p) for p in phase], clients)
        for path, (entries, person, ok) in zip(phase, run.results, strict=True):
            if not ok:
                report["failed"].append(path.name)
            elif person is not None:
                people.append(person)
            loaded += entries if ok else 0
            if patient_phase and ok:
                timed_resources += entries
        if patient_phase:
            timed_seconds += run.seconds
        else:
            report.setdefault("registry_seconds", 0.0)
            report["registry_seconds"] += round(run.seconds, 2)
    report.update(
        bundles=sum(len(p) for p in phases),
        patients=len(people),
        resources=timed_resources,
        loaded_with_registries=loaded,
        seconds=round(timed_seconds, 2),
        per_second=round(timed_resources / timed_seconds, 1) if timed_seconds else 0.0,
        clients=clients,
    )
    return report, people


def _query(server: Server, kind: str, person: Person, page: int) -> int:
    """One query of ``kind`` for ``person``; returns how many entries it gave (for the check
    that both servers answer alike)."""
    if kind == "read":
        return 1 if server.get_json(f"Patient/{person.id}")["id"] == person.id else 0
    if kind == "identifier":
        token = quote(f"{SYNTHEA_SYSTEM}|{person.identifier}", safe="")
        bundle = server.get_json(f"Patient?identifier={token}")
        return len(bundle.get("entry", []))
    if kind == "name":
        return len(server.get_json(f"Patient?name={quote(person.family)}").get("entry", []))
    if kind == "everything":
        return fetch_all(server, f"Patient/{person.id}/$everything?_count={page}")[0]
    if kind == "observations":
        code = quote(person.code, safe="")
        path = f"Observation?patient=Patient/{person.id}&code={code}&_count={page}"
        return fetch_all(server, path)[0]
    raise ValueError(kind)


def measure(
    server: Server, people: list[Person], kind: str, requests: int, clients: int, page: int
) -> dict[str, Any]:
    """``requests`` queries (the people in a shuffled order, repeated), ``clients`` at a
    time: once untimed to warm the server up (HAPI's JVM compiles its hot paths only after
    thousands of calls; sokhoe's caches fill), then again, timed."""
    rng = random.Random(15)
    order = [people[i % len(people)] for i in range(requests)]
    rng.shuffle(order)
    drive([partial(_query, server, kind, p, page) for p in order], clients)
    run = drive([partial(_query, server, kind, p, page) for p in order], clients)
    found = dict(zip((p.file for p in order), run.results, strict=True))
    return {
        **percentiles(run.latencies_ms),
        "per_second": round(run.per_second, 1),
        "entries": sum(found.values()),
        "entries_by_file": found,
    }


def advantage(figure: str, sokhoe: float, hapi: float) -> float | None:
    """How many times better sokhoe does on ``figure``: a rate (``per_second``, ``ingest``)
    sokhoe ÷ HAPI, a latency (p50, p95, p99) or a size (``bytes``) HAPI ÷ sokhoe; above 1
    sokhoe is ahead."""
    if not sokhoe or not hapi:
        return None
    ratio = sokhoe / hapi if figure in RATE_FIGURES else hapi / sokhoe
    return round(ratio, 2)


def _figure(result: dict[str, Any], kind: str, figure: str) -> float:
    return float(result[kind][figure])


def rows(results: dict[str, dict[str, Any]], peer: str = "hapi") -> list[list[str]]:
    """The table: one row per figure, a column per server, then each sokhoe's ratio to
    ``peer``."""
    names = list(results)
    ours = [n for n in names if n != peer]
    out = [["figure", *names, *(f"{n} vs {peer}" for n in ours)]]

    def add(label: str, figure: str, get: Callable[[dict[str, Any]], float]) -> None:
        values = {n: get(results[n]) for n in names}
        cells = [f"{values[n]:,.1f}" if values[n] else "-" for n in names]
        ratios = [advantage(figure, values[n], values[peer]) for n in ours]
        out.append([label, *cells, *(f"{r:.2f}" if r is not None else "-" for r in ratios)])

    add("ingest, resources/s", "ingest", lambda r: float(r["ingest"]["per_second"]))
    add("disk, bytes per resource", "bytes", lambda r: float(r["bytes_per_resource"]))
    for kind in QUERIES:
        for figure in ("p50", "p95", "p99"):
            add(f"{kind} {figure} ms", figure, partial(_figure, kind=kind, figure=figure))
        add(f"{kind} requests/s", "per_second", partial(_figure, kind=kind, figure="per_second"))
    return out


def table(grid: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in grid
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def disagreements(results: dict[str, dict[str, Any]]) -> list[str]:
    """Where the servers' answers differ in size for the same person and query (each server's
    ``$everything`` may differ by design: HAPI adds the resources the compartment refers to)."""
    notes = []
    names = list(results)
    for kind in QUERIES:
        first = results[names[0]][kind]["entries_by_file"]
        for other in names[1:]:
            theirs = results[other][kind]["entries_by_file"]
            differ = sorted(f for f in first if first[f] != theirs.get(f))
            if differ:
                notes.append(f"{kind}: {names[0]} and {other} differ for {len(differ)} people")
    return notes


def synthea_folder() -> Path:
    """``shared/data/synthea`` (see :func:`~sokhoe.bench.shared_data.shared_data`)."""
    try:
        return shared_data() / "synthea"
    except FileNotFoundError as exc:
        raise SystemExit(str(exc)) from exc


class LoadWatch:
    """The machine's 1-minute load average, sampled every few seconds while a server is
    measured (other sessions share this machine: the figures say how busy it was)."""

    def __init__(self) -> None:
        import threading

        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(5)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {
            "mean": round(sum(self.samples) / len(self.samples), 2),
            "max": round(max(self.samples), 2),
        }


def bench_server(
    server: Server, size: Callable[[], int], phases: list[list[Path]], args: argparse.Namespace
) -> dict[str, Any]:
    """Ingest, then every query figure, on one server; what the load added to its database
    (bytes per resource loaded, tables, indexes and history: each server's empty database
    already holds its own definitions and catalogues)."""
    watch = LoadWatch()
    empty = size()
    report, people = ingest(server, phases, args.ingest_clients)
    if not people:
        raise RequestFailed(f"{server.name}: no patient bundle loaded ({report['failed'][:3]})")
    grown = size() - empty
    result: dict[str, Any] = {
        "ingest": report,
        "database_growth_bytes": grown,
        "bytes_per_resource": round(grown / max(report["loaded_with_registries"], 1)),
    }
    for kind in QUERIES:
        count = args.everything_requests if kind in ("everything",) else args.requests
        result[kind] = measure(server, people, kind, count, args.clients, args.page)
        print(f"  {server.name} {kind}: p50 {result[kind]['p50']} ms", flush=True)
    result["load_average_1min"] = watch.stop()
    return result


@contextmanager
def _served(
    kind: str, folder: Path, args: argparse.Namespace, pg: Any
) -> Iterator[tuple[Server, Callable[[], int]]]:
    """A server of ``kind`` (``sokhoe-sqlite``, ``sokhoe-postgres``, ``hapi``) and how to
    measure its database's size; stopped on the way out."""
    from sokhoe.bench.peer_servers import Hapi, Sokhoe, hapi_jar

    if kind == "hapi":
        pg.create_database("hapi")
        hapi = Hapi(hapi_jar(), pg, "hapi", folder)
        try:
            yield Server("hapi", hapi.base), lambda: int(pg.size("hapi"))
        finally:
            hapi.stop()
        return
    if kind == "sokhoe-postgres":
        pg.create_database("sokhoe")
        db = pg.sqlalchemy_url("sokhoe")
        size: Callable[[], int] = lambda: int(pg.size("sokhoe"))  # noqa: E731
    else:
        path = folder / "sokhoe.db"
        db = f"sqlite:///{path}"
        size = lambda: sum(p.stat().st_size for p in folder.glob("sokhoe.db*"))  # noqa: E731
    sokhoe = Sokhoe(db, args.workers, folder, kind)
    try:
        yield Server(kind, sokhoe.base, sokhoe.headers), size
    finally:
        sokhoe.stop()


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return platform.processor()
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), ""
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sokhoe.bench.peer_servers import Postgres, hapi_jar

    phases = load_order(Path(args.data))
    if args.limit:
        phases = limited(phases, args.limit)
    hapi_jar()  # built before anything is timed
    folder = Path(tempfile.mkdtemp(prefix="sokhoe-bench-peers-"))
    pg = Postgres(folder)
    pg.start()
    results: dict[str, dict[str, Any]] = {}
    try:
        for kind in [*(f"sokhoe-{s}" for s in args.stores), "hapi"]:
            print(f"{kind}: starting", flush=True)
            with _served(kind, folder, args, pg) as (server, size):
                results[kind] = bench_server(server, size, phases, args)
                server.close()
    except BaseException:
        print(f"a server failed; its log is kept in {folder}", flush=True)
        pg.stop()
        raise
    pg.stop()
    shutil.rmtree(folder, ignore_errors=True)
    grid = rows(results)
    return {
        "date": date.today().isoformat(),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "settings": {
            "bundles": sum(len(p) for p in phases),
            "clients": args.clients,
            "ingest_clients": args.ingest_clients,
            "requests": args.requests,
            "everything_requests": args.everything_requests,
            "page": args.page,
            "sokhoe_workers": args.workers,
            "hapi": "HAPI FHIR 8.8.0 JPA server, default JpaStorageSettings, PostgreSQL",
            "ratio": "sokhoe ÷ HAPI for rates, HAPI ÷ sokhoe for latencies: > 1 = sokhoe ahead",
        },
        "table": grid,
        "disagreements": disagreements(results),
        "results": _compact(results),
    }


def _compact(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The results without each person's answer sizes (compared in ``disagreements``; the
    totals stay, under ``entries``)."""
    return {
        name: {
            k: {f: v for f, v in value.items() if f != "entries_by_file"}
            if isinstance(value, dict)
            else value
            for k, value in result.items()
        }
        for name, result in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="Folder of Synthea bundles")
    parser.add_argument("--limit", type=int, default=0, help="Patient bundles to load (0: all)")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent clients per query")
    parser.add_argument("--ingest-clients", type=int, default=2)
    parser.add_argument("--requests", type=int, default=400, help="Timed requests per query")
    parser.add_argument("--everything-requests", type=int, default=120)
    parser.add_argument("--page", type=int, default=50, help="_count of paged searches")
    parser.add_argument("--workers", type=int, default=2, help="sokhoe serve --workers")
    parser.add_argument("--stores", nargs="*", default=["sqlite", "postgres"])
    parser.add_argument("--out", default=None, help="JSON report (default bench/results/)")
    args = parser.parse_args()
    args.data = args.data or str(synthea_folder())
    report = run(args)
    print()
    print(table(report["table"]))
    print(f"\nratio: {report['settings']['ratio']}")
    for note in report["disagreements"]:
        print(f"note: {note}")
    out = Path(args.out or f"bench/results/{report['date']}-peers.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
