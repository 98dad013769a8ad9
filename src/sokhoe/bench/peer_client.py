"""The one HTTP client ``make bench-peers`` drives every server with: the same code, the same
number of concurrent connections, the same requests, whichever server answers.

Plain ``http.client`` connections, one kept alive per client thread: the client shares the
machine's two cores with the server it measures, so it should cost as little as possible and
cost the same for every server (a Python client still spends some: the absolute figures are a
little below what a client on another machine would see, the ratios are not).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

FHIR_JSON = "application/fhir+json"


class RequestFailed(Exception):
    """A request the benchmark needs answered with 2xx was not."""


@dataclass
class Server:
    """A FHIR server under test: its base URL and the headers every request carries (sokhoe's
    bearer token; none for HAPI, whose default is no authorisation)."""

    name: str
    base: str
    headers: dict[str, str] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=900)
            self._local.conn = conn
        return conn

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """``method`` on ``path`` (relative to the base, or an absolute URL such as a paging
        link, whose path and query are sent to this server); one retry on a dropped
        keep-alive connection."""
        if path.startswith("http"):
            parts = urlsplit(path)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        else:
            target = f"{self.prefix}/{path.lstrip('/')}" if path else self.prefix
        headers = {"Accept": FHIR_JSON, **self.headers}
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> dict[str, Any]:
        status, data = self.request("GET", path)
        if status != 200:
            raise RequestFailed(f"{self.name} GET {path}: {status} {data[:300]!r}")
        parsed: dict[str, Any] = orjson.loads(data)
        return parsed

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def next_link(bundle: dict[str, Any]) -> str | None:
    """The bundle's ``next`` paging link, if any
    (https://hl7.org/fhir/R4/http.html#paging)."""
    for link in bundle.get("link", []):
        if link.get("relation") == "next":
            return str(link["url"])
    return None


def fetch_all(server: Server, path: str) -> tuple[int, int]:
    """Every page of a searchset from ``path`` on, following ``next`` links:
    (entries, pages)."""
    entries = pages = 0
    url: str | None = path
    while url is not None:
        bundle = server.get_json(url)
        entries += len(bundle.get("entry", []))
        pages += 1
        url = next_link(bundle)
    return entries, pages


@dataclass
class Run:
    """What one batch of timed calls gave: each call's latency (ms, in call order), the wall
    time of the batch, and what each call returned."""

    latencies_ms: list[float]
    seconds: float
    results: list[Any]

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def drive(calls: Sequence[Callable[[], Any]], clients: int) -> Run:
    """Run ``calls`` on ``clients`` concurrent threads (each keeps its own connection), each
    call timed on its own; the batch's wall time gives the rate."""
    latencies = [0.0] * len(calls)
    results: list[Any] = [None] * len(calls)

    def one(i: int) -> None:
        t0 = time.perf_counter()
        results[i] = calls[i]()
        latencies[i] = (time.perf_counter() - t0) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(one, i) for i in range(len(calls))]:
            future.result()
    return Run(latencies, time.perf_counter() - start, results)
