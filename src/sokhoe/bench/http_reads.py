"""``python -m sokhoe.bench.http_reads``: a facility's reads over HTTP, against the same
server's no-op route, with one and with several worker processes (issue 15, item 2).

A connected hospital system reads records one at a time (``GET /fhir/Patient/{id}``), each
read decided by the door and written to the audit chain before the answer leaves. What that
costs is measured as a ratio to the cheapest route the same server has (``/health/live``:
the same uvicorn, middleware and request id, no token, no database) in the same run, since the
machines here are noisy; the absolute rates are printed beside it. The load comes from
``wrk`` (Debian's, a C load generator: a Python client would spend the cores it measures),
with four connections on two threads; the server is started as ``sokhoe serve --workers N``
is, in a process of its own, over a SQLite file of ``--patients`` people checked in by one
facility. After the runs the audit chain is verified and must hold a row for every read
answered.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from sokhoe.access.audit import AuditLog
from sokhoe.access.clients import create_client
from sokhoe.access.db import access_engine
from sokhoe.config import Settings
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event

QR = "{cccd}|Người Thử {n}|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"

LUA = """
ids = {%(ids)s}
n = 0
request = function()
  n = n + 1
  local auth = {["Authorization"] = "Bearer %(token)s"}
  return wrk.format("GET", "/fhir/Patient/" .. ids[(n %% #ids) + 1], auth)
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _world(folder: Path, patients: int) -> tuple[str, list[str], str, str]:
    """A SQLite file with ``patients`` people checked in by facility 79001, through the real
    app and door; (database URL, patient ids, client id, client secret)."""
    from fastapi.testclient import TestClient

    from sokhoe.web.app import create_app

    url = f"sqlite:///{folder / 'bench.db'}"
    settings = Settings(database_url=url, var_dir=folder, base_url="http://127.0.0.1")
    app = create_app(settings)
    new = create_client(app.state.tokens.engine, "HIS 79001", ["system/*.cruds"], "79001")
    ids = []
    with TestClient(app) as c:
        form = {
            "grant_type": "client_credentials",
            "client_id": new.client_id,
            "client_secret": new.client_secret,
        }
        token = c.post("/auth/token", data=form).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        for n in range(patients):
            qr = QR.format(cccd=f"0790900{n:05d}", n=n)
            body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": qr}]}
            ids.append(c.post("/fhir/Patient/$check-in", json=body, headers=auth).json()["id"])
    app.state.store.close()
    return url, ids, new.client_id, new.client_secret


def _serve(folder: Path, url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOKHOE_VAR_DIR": str(folder), "SOKHOE_GLASS_ALERTS": "false"}
    command = [sys.executable, "-m", "sokhoe.cli", "serve", "--db", url, "--port", str(port)]
    command += ["--workers", str(workers)]
    log = (folder / f"server-{workers}.log").open("ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)  # noqa: S603
    deadline = time.monotonic() + 180
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            import httpx2

            if httpx2.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return process
        except Exception:  # noqa: S110 - not answering yet: still starting
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start: see {folder}/server-{workers}.log")
        time.sleep(0.3)


def _token(port: int, client_id: str, secret: str) -> str:
    import httpx2

    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    r = httpx2.post(f"http://127.0.0.1:{port}/auth/token", data=form, timeout=30)
    r.raise_for_status()
    return str(r.json()["access_token"])


def _wrk(url: str, seconds: int, script: Path | None) -> dict[str, float]:
    """wrk's requests per second and latency percentiles (ms) for ``url``."""
    command = ["wrk", "-t2", "-c4", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603
    found: dict[str, float] = {"per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}  # type: ignore[index]
    total = re.search(r"(\d+) requests in", out)
    found["requests"] = float(total[1]) if total else 0.0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    found["non_2xx"] = float(errors[1]) if errors else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]]
            found[f"p{pct}_ms"] = round(float(m[1]) * scale, 3)
    return found


def run(patients: int, seconds: int, workers: list[int]) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="sokhoe-bench-http-"))
    try:
        url, ids, client_id, secret = _world(folder, patients)
        runs = {}
        for count in workers:
            port = _free_port()
            process = _serve(folder, url, count, port)
            try:
                token = _token(port, client_id, secret)
                script = folder / "read.lua"
                quoted = ",".join(f'"{i}"' for i in ids)
                script.write_text(LUA % {"ids": quoted, "token": token}, encoding="utf-8")
                base = f"http://127.0.0.1:{port}"
                _wrk(f"{base}/health/live", 2, None)  # warm-up of both workers
                _wrk(base, 2, script)
                noop = _wrk(f"{base}/health/live", seconds, None)
                read = _wrk(base, seconds, script)
                runs[f"workers_{count}"] = {
                    "noop": noop,
                    "read": read,
                    "read_vs_noop": round(read["per_second"] / noop["per_second"], 3),
                }
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
        store = SqlStore(url, migrate_schema=False)
        try:
            engine = access_engine(store)
            report = AuditLog(engine).verify()
            with engine.connect() as conn:
                reads = conn.execute(
                    select(func.count())
                    .select_from(audit_event)
                    .where(audit_event.c.action == "read", audit_event.c.outcome == "success")
                ).scalar_one()
        finally:
            store.close()
        return {
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "load_average": os.getloadavg(),
            },
            "patients": patients,
            "seconds": seconds,
            "client": "wrk -t2 -c4",
            "runs": runs,
            "audit_chain_ok": report.ok,
            "audit_rows_for_reads": reads,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(json.dumps(run(args.patients, args.seconds, args.workers), indent=2))


if __name__ == "__main__":
    main()
