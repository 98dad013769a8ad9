"""The app served by ``N`` worker processes, as ``sokhoe serve --workers N`` runs it, for tests
that speak real HTTP to it.

``SOKHOE_TEST_WORKERS=N`` (``make test-workers``) swaps the ``client`` fixture's in-process
test client for one of these on the SQL backends: the same test bodies then run against
several processes sharing one database, which is what a provincial deployment runs. A served
app answers through :class:`ServedApi`, an ``httpx.Client`` with the in-process app beside it
(``.app``) so tests reach ``app.state`` (tokens, settings) as they do with a ``TestClient``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
from fastapi import FastAPI

from sokhoe.config import Settings
from sokhoe.web.served import FACTORY, worker_environment

WORKERS = int(os.environ.get("SOKHOE_TEST_WORKERS", "0") or 0)
"""Worker processes of the served app the ``client`` fixture uses (0: in process)."""


class ServedApi(httpx.Client):
    """An HTTP client of a served app, with an in-process ``app`` over the same database."""

    def __init__(self, base_url: str, app: FastAPI) -> None:
        super().__init__(base_url=base_url, follow_redirects=True, timeout=60)
        self.app = app


@dataclass(frozen=True)
class Served:
    url: str
    pid: int
    """uvicorn's supervisor: the workers are its children (:func:`worker_pids`)."""
    var_dir: Path
    """The served app's ``var/`` (its SMS outbox among others)."""


@contextmanager
def served(settings: Settings, workers: int, log: Path) -> Iterator[Served]:
    """``settings``' app served by ``workers`` uvicorn worker processes on a free loopback
    port; stops the processes (supervisor and workers) afterwards."""
    from tests.browser import free_port  # not at import: conftest imports this module first

    port = free_port()
    env = {**os.environ, **worker_environment(settings, workers)}
    command = [sys.executable, "-m", "uvicorn", FACTORY, "--factory", "--workers", str(workers)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--timeout-worker-healthcheck", "60"]
    with log.open("ab") as err:
        process = subprocess.Popen(command, env=env, stdout=err, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield Served(url, process.pid, settings.var_dir)
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's supervisor stops its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until every worker answers: a few requests in a row on fresh connections."""
    deadline = time.monotonic() + 120
    answered = 0
    while answered < 4:
        if process.poll() is not None:
            raise RuntimeError(f"the served app stopped: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the served app did not start: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/fhir/metadata", timeout=5).raise_for_status()
            answered += 1
        except httpx.HTTPError:
            answered = 0
            time.sleep(0.2)


def worker_pids(parent: int) -> list[int]:
    """uvicorn's workers under the supervisor ``parent``, from ``/proc`` (its children but
    multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
            continue
        if b"resource_tracker" not in (entry / "cmdline").read_bytes():
            found.append(int(entry.name))
    return found
