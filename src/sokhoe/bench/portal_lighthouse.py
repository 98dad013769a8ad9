"""The citizen portal on a cheap phone over a slow link, measured by Lighthouse (``make bench``).

A demo server is started as ``make run`` starts it (``sokhoe serve --demo N``, on a scratch
database), the demo parent it prints signs in with the one-time code the SMS outbox received,
and Lighthouse (npm, pinned in ``bench/lighthouse/package.json``) drives Debian's Chromium,
headless, through each portal page with that session's cookie (``--extra-headers``). Its
default settings are the mobile preset: a Moto G Power sized screen, simulated slow 4G
(150 ms round trip, 1.6 Mbit/s down) and a CPU four times slower than this machine's.

For each page it reports Largest Contentful Paint, the bytes transferred on a first load
(cold cache), the script bytes among them and the accessibility score, against the issue's
targets (LCP ≤ 2.5 s, ≤ 150 KB transferred, ≤ 50 KB of script). Pages are a parameter
(``--page``, repeated; ``{ward}`` stands for the demo ward's code): a page that does not
exist yet (404) is listed as missing, not measured.
See: https://github.com/GoogleChrome/lighthouse/blob/main/docs/throttling.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

import httpx2 as httpx

from sokhoe.bench.clinic_pages import machine
from sokhoe.bench.page_weight import BROWSER_HEADERS
from sokhoe.web.pages.clinic.base import VIETNAM

DEFAULT_PAGES: Final = (
    "/portal",
    "/portal/w/{ward}",
    "/portal/sign-in",
    "/portal/book",
    "/portal/declare",
)
LIGHTHOUSE: Final = Path("bench/lighthouse/node_modules/.bin/lighthouse")
TARGETS: Final = {"lcp_ms": 2500, "transfer_bytes": 150 * 1024, "script_bytes": 50 * 1024}
CHROME_FLAGS: Final = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"
SESSION_COOKIE: Final = "sokhoe_session"
_READY: Final = ("Application startup complete", "dashboard: warehouse ready")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_server(folder: Path, patients: int, timeout: float) -> Iterator[tuple[str, str]]:
    """``sokhoe serve --demo patients`` on a scratch database in ``folder``; yields its base
    URL and what it printed, once it serves and its warehouse is built (so no background
    work competes with the measures)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "SOKHOE_VAR_DIR": str(folder),
        "SOKHOE_BASE_URL": base,
        "PYTHONUNBUFFERED": "1",
    }
    sokhoe = Path(sys.executable).with_name("sokhoe")
    command = [str(sokhoe), "serve", "--demo", str(patients), "--port", str(port)]
    command += ["--db", f"sqlite:///{folder / 'sokhoe.db'}"]
    log = (folder / "server.log").open("w+", encoding="utf-8")
    server = subprocess.Popen(  # noqa: S603 - our own command
        command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    try:
        printed = _wait_for(log, server, timeout)
        yield base, printed
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for(log: IO[str], server: subprocess.Popen[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        printed = log.read()
        if all(mark in printed for mark in _READY):
            return printed
        if server.poll() is not None:
            raise RuntimeError(f"the demo server stopped:\n{printed[-3000:]}")
        time.sleep(1)
    raise RuntimeError(f"the demo server was not ready in {timeout:.0f} s")


def sign_in(base: str, folder: Path, phone: str) -> str:
    """The session cookie of ``phone`` signed in through the portal's pages (the code read
    from the development SMS outbox, as a tester would)."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        page = client.post("/portal/sign-in", data={"phone": phone, "next": "/portal"})
        challenge = re.search(r'name="challenge" value="([^"]*)"', page.text)
        if page.status_code != 200 or challenge is None:
            raise RuntimeError(f"sign-in page: {page.status_code} {page.text[:300]}")
        last = (folder / "sms-outbox.jsonl").read_text(encoding="utf-8").splitlines()[-1]
        code = re.search(r"\b(\d{6})\b", json.loads(last)["text"])
        if code is None:
            raise RuntimeError("no code in the SMS outbox")
        form = {"phone": phone, "code": code.group(1), "challenge": challenge.group(1)}
        done = client.post("/portal/verify", data=form)
        cookie = done.cookies.get(SESSION_COOKIE)
        if done.status_code != 303 or not cookie:
            raise RuntimeError(f"verify: {done.status_code} {done.text[:300]}")
        return str(cookie)


def _lighthouse(binary: Path, url: str, headers: Path, out: Path) -> dict[str, Any]:
    command = [
        str(binary),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={out}",
        "--only-categories=performance,accessibility",
        f"--chrome-flags={CHROME_FLAGS}",
        f"--extra-headers={headers}",
    ]
    chrome = shutil.which("chromium") or "/usr/bin/chromium"
    env = os.environ | {"CHROME_PATH": chrome}
    subprocess.run(command, env=env, check=True, timeout=300, capture_output=True)  # noqa: S603
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """What the issue's targets ask of one Lighthouse report."""
    audits = report["audits"]
    requests = audits["network-requests"]["details"]["items"]
    scripts = sum(r.get("transferSize", 0) for r in requests if r.get("resourceType") == "Script")
    found = {
        "final_url": report.get("finalDisplayedUrl", report.get("finalUrl")),
        "lcp_ms": round(audits["largest-contentful-paint"]["numericValue"]),
        "fcp_ms": round(audits["first-contentful-paint"]["numericValue"]),
        "total_blocking_time_ms": round(audits["total-blocking-time"]["numericValue"]),
        "transfer_bytes": round(audits["total-byte-weight"]["numericValue"]),
        "script_bytes": scripts,
        "requests": len(requests),
        "performance_score": round(100 * (report["categories"]["performance"]["score"] or 0)),
        "accessibility_score": round(100 * (report["categories"]["accessibility"]["score"] or 0)),
    }
    found["meets_targets"] = all(found[k] <= limit for k, limit in TARGETS.items())
    return found


def run(
    pages: list[str], patients: int, lighthouse: Path = LIGHTHOUSE, timeout: float = 1800
) -> dict[str, Any]:
    """Serve the demo, sign in, measure each page; the report (see the module docstring)."""
    if not lighthouse.exists():
        raise SystemExit(f"{lighthouse} is missing: npm ci --prefix bench/lighthouse")
    version = subprocess.run(  # noqa: S603
        [str(lighthouse), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    chromium = subprocess.run(  # noqa: S603
        [shutil.which("chromium") or "/usr/bin/chromium", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    measured: dict[str, Any] = {}
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sokhoe-bench-lighthouse-") as scratch:
        folder = Path(scratch)
        with demo_server(folder, patients, timeout) as (base, printed):
            ward = re.search(r"/portal/w/(\d{5})", printed)
            phone = re.search(r"a parent: .+?, phone (\d{10})", printed)
            if ward is None or phone is None:
                raise RuntimeError(f"the demo printed no portal sign-in:\n{printed[-3000:]}")
            cookie = sign_in(base, folder, phone.group(1))
            headers = folder / "headers.json"
            headers.write_text(json.dumps({"Cookie": f"{SESSION_COOKIE}={cookie}"}))
            load_before = os.getloadavg()[0]
            for template in pages:
                path = template.replace("{ward}", ward.group(1))
                answer = httpx.get(
                    base + path,
                    headers=BROWSER_HEADERS | {"Cookie": f"{SESSION_COOKIE}={cookie}"},
                    timeout=30,
                )
                if answer.status_code == 404:
                    missing.append(path)
                    continue
                report = _lighthouse(lighthouse, base + path, headers, folder / "report.json")
                found = figures(report)
                if urlsplit(found["final_url"]).path != path:
                    raise RuntimeError(f"{path} was not measured: it led to {found['final_url']}")
                measured[path] = found
                print(f"{path}: {found}", file=sys.stderr)
            load_after = os.getloadavg()[0]
    return {
        "date": datetime.now(VIETNAM).date().isoformat(),
        "machine": machine() | {"load_average_1min": [round(load_before, 2), round(load_after, 2)]},
        "lighthouse": version,
        "chromium": chromium,
        "settings": "Lighthouse default (mobile): simulated slow 4G, 150 ms RTT, 1.6 Mbit/s "
        "down, 4x CPU slowdown, 412x823 screen; cold cache",
        "demo_patients": patients,
        "signed_in_as": "the demo parent (make run prints them)",
        "targets": TARGETS,
        "pages": measured,
        "missing": missing,
        "all_meet_targets": all(p["meets_targets"] for p in measured.values()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--page",
        action="append",
        dest="pages",
        help="a portal path to measure, repeated ({ward} is the demo ward's code); "
        f"default: {' '.join(DEFAULT_PAGES)}",
    )
    parser.add_argument("--patients", type=int, default=300, help="the demo population")
    parser.add_argument("--lighthouse", type=Path, default=LIGHTHOUSE)
    args = parser.parse_args(argv)
    report = run(args.pages or list(DEFAULT_PAGES), args.patients, args.lighthouse)
    sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
