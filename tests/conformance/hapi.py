"""HAPI FHIR's validator and generic client (``tools/hapi``) driven from the tests.

``make test`` builds the tool first (``make hapi``: ``mvn -q -B package``, offline once Maven's
cache holds the artifacts). A test run started without it builds it here, under a file lock so
that two pytest workers do not run Maven at once.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TOOL = Path(__file__).resolve().parents[2] / "tools" / "hapi"
CLASSPATH = TOOL / "target" / "classpath.txt"
CLASSES = TOOL / "target" / "classes"
MAIN = "vn.sokhoe.hapi.Main"
# a short-lived JVM: the serial collector and a larger thread stack (HAPI's FHIRPath recursion)
JVM = ["-XX:+UseSerialGC", "-Xss4m", "-Xmx1g"]


def built() -> list[str]:
    """The ``java`` command line up to the main class, building the tool if it is not built."""
    TOOL.joinpath("target").mkdir(exist_ok=True)
    with (TOOL / "target" / ".build-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (CLASSPATH.exists() and CLASSES.joinpath("vn/sokhoe/hapi/Main.class").exists()):
            subprocess.run(["mvn", "-q", "-B", "package"], cwd=TOOL, check=True)
    return ["java", *JVM, "-cp", f"{CLASSES}:{CLASSPATH.read_text().strip()}", MAIN]


def validate(files: Sequence[Path], packages: Sequence[Path] = ()) -> list[dict[str, Any]]:
    """One JVM run of HAPI's validator over ``files`` (resources, Bundles, NDJSON), with each
    FHIR NPM package of ``packages`` loaded: one report per resource (``file``, ``line``,
    ``resourceType``, ``id``, ``issues``: ``severity``, ``location``, ``message``,
    ``messageId``)."""
    argv = [*built(), "validate"]
    for package in packages:
        argv += ["--package", str(package)]
    done = subprocess.run(
        [*argv, *map(str, files)], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"HAPI's validator failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def client(base_url: str, token: str) -> subprocess.CompletedProcess[str]:
    """HAPI's generic client session against a running sokhoe (``Client.java``)."""
    return subprocess.run(
        [*built(), "client", base_url, token],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
