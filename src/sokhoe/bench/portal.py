"""``python -m sokhoe.bench.portal``: the citizen's health book, served by the real app over
real HTTP, for a person with about 300 resources (issue #14: the server answers the summary in
p95 ≤ 200 ms).

The record is the clinic bench's (``bench/clinic_world.py``: visits started at the desk and
closed with vital signs, an ICD-10 diagnosis and the visit summary, plus lab results, through
the platform's own services); ``--visits 25`` writes about 300 resources. The person's phone is
linked to the record and a portal session is issued for it as the sign-in page would; the app
is served by uvicorn in a thread and driven with httpx, one request at a time after a warm-up.

Measured: ``GET /portal/book`` (the summary and lists) against the target, the book as the
service builds it without HTTP or HTML (``portal.book.read_book``), a visit's page, the two
downloads (FHIR JSON and the PDF book), and the first load of the book page in bytes. Shared
machines are noisy, so two floors are measured in the same run (a trivial route through the
same server, and the plain select of the record's rows from the same SQLite file) and the
latencies are also given as ratios of them, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx2 as httpx

from sokhoe.access.otp import citizen_principal, link_citizen
from sokhoe.bench.clinic_pages import _summary, machine, serving, timed_requests
from sokhoe.bench.clinic_world import build_world
from sokhoe.bench.page_weight import BROWSER_HEADERS, first_load
from sokhoe.portal.book import read_book
from sokhoe.portal.record import everything
from sokhoe.store.sql.content import decode
from sokhoe.web.pages.clinic.base import VIETNAM
from sokhoe.web.sessions import SESSION_COOKIE

TARGET_P95_MS: Final = 200.0
PHONE: Final = "0912345678"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    visits: int = 25,
    requests: int = 50,
    warmup: int = 5,
    labs: int = 2,
    seed: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Seed, serve, measure; the report (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="sokhoe-bench-portal-") as scratch:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        world = build_world(Path(scratch), base, visits, labs, seed, progress)
        seeded = time.perf_counter() - started
        tokens = world.app.state.tokens
        link_citizen(tokens.engine, PHONE, world.patient_id)
        who = citizen_principal(PHONE, world.patient_id)
        token, _ = tokens.issue(who, timedelta(days=1))
        load_before = os.getloadavg()[0]
        repo = world.app.state.repository.for_caller(who, audit_reads=True)
        try:
            service = _timed(lambda: read_book(repo, world.patient_id), requests, warmup)
            shown = read_book(repo, world.patient_id)
            resources = len(everything(repo, world.patient_id))
            with serving(world.app, port):
                report = _measure(base, token, shown.visits[0].id, requests, warmup)
        finally:
            world.store.close()
        floor_sql = sql_floor(world.database, world.patient_id, requests, warmup)
    report["latency_ms"]["book_service"] = service
    book = report["latency_ms"]["book"]
    book |= {"target_p95": TARGET_P95_MS, "met": book["p95"] <= TARGET_P95_MS}
    floor_http = report["floor"]["http_trivial_route_ms"]
    for measured in report["latency_ms"].values():
        measured["p50_over_http_floor"] = round(measured["p50"] / floor_http["p50"], 1)
    book["p50_over_sql_floor"] = round(book["p50"] / floor_sql["p50"], 1)
    report["floor"]["sql_record_rows_ms"] = floor_sql
    return {
        "date": datetime.now(VIETNAM).date().isoformat(),
        "machine": machine()
        | {"load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "store": "sqlite",
        "visits": visits,
        "resources": resources,
        "resources_read_by_the_book": len(shown.record.resources),
        "seed_seconds": round(seeded, 1),
        "requests": requests,
        "warmup": warmup,
        **report,
    }


def _timed(work: Callable[[], object], requests: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        work()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return _summary(samples)


def _measure(base: str, token: str, visit: str, requests: int, warmup: int) -> dict[str, Any]:
    cookies = httpx.Cookies()
    cookies.set(SESSION_COOKIE, token, domain="127.0.0.1")
    with httpx.Client(base_url=base, headers=BROWSER_HEADERS, cookies=cookies, timeout=60) as c:
        latency = {
            "book": timed_requests(lambda n: c.get("/portal/book"), requests, warmup),
            "visit": timed_requests(lambda n: c.get(f"/portal/book/visits/{visit}"), requests, 2),
            "record_json": timed_requests(
                lambda n: c.get("/portal/download/record.json"), max(requests // 5, 1), 1
            ),
            "book_pdf": timed_requests(
                lambda n: c.get("/portal/download/book.pdf"), max(requests // 5, 1), 1
            ),
        }
        sizes = {
            "book_html_kb": round(len(c.get("/portal/book").content) / 1024, 1),
            "record_json_kb": round(len(c.get("/portal/download/record.json").content) / 1024, 1),
            "book_pdf_kb": round(len(c.get("/portal/download/book.pdf").content) / 1024, 1),
        }
        weight = first_load(base, cookies, "/portal/book")
        floor_http = timed_requests(lambda n: c.get("/portal/static/portal.css"), requests, warmup)
    floor = {"http_trivial_route_ms": floor_http | {"route": "GET /portal/static/portal.css"}}
    return {"latency_ms": latency, "sizes": sizes, "first_load": weight, "floor": floor}


def sql_floor(database: Path, patient_id: str, requests: int, warmup: int) -> dict[str, float]:
    """The plain select of the record's rows from the same SQLite file, expanded and parsed:
    the least any book could do (no door, no audit, no facilities, no HTML)."""
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:

        def once() -> int:
            rows = con.execute(
                "SELECT content FROM resource WHERE patient_id = ? AND deleted = 0", (patient_id,)
            ).fetchall()
            return len([decode(r[0]) for r in rows])

        result = _timed(once, requests, warmup)
        return result | {"rows": once()}
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--visits", type=int, default=25, help="about 12 resources each")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--labs", type=int, default=2, help="lab results per visit")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = run(args.visits, args.requests, args.warmup, args.labs, args.seed)
    sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()


__all__ = ["main", "run"]
