"""The servers ``make bench-peers`` puts side by side: a throw-away PostgreSQL, HAPI FHIR's JPA
server on it (``bench/peers/hapi``, built with Maven), and ``sokhoe serve`` on free ports.

Each runs in a process of its own, as its users run it, and is stopped at the end of the run;
nothing is left behind but the logs in the run's folder (kept when a server fails to start).
PostgreSQL runs with its own defaults but for ``synchronous_commit=off``: a commit then waits
for the write-ahead log to reach the operating system, not the disk, which is what sokhoe's
SQLite file does (WAL with ``synchronous=NORMAL``). Neither loses more than the last commits
on a power cut; neither can be corrupted by one. ``fsync`` stays on.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HAPI_PROJECT = Path(__file__).resolve().parents[3] / "bench" / "peers" / "hapi"
"""The Maven project of the HAPI application (in the source tree: ``make bench-peers`` runs
from a checkout)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    """A PostgreSQL server binary: the newest under /usr/lib/postgresql (Debian keeps them off
    PATH), else from PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} was not found (make system-deps installs it)")
    return path


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    """Until ``url`` answers 200, the process dies, or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - our own server
                if r.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({process.returncode}); see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: no answer within {seconds:.0f} s; see {log}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes], signal_first: int) -> None:
    if process.poll() is None:
        process.send_signal(signal_first)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Postgres:
    """A PostgreSQL cluster in ``folder``: initdb, a free port, stopped with ``stop()``.

    As root PostgreSQL refuses to run, so the cluster is created and started as the
    ``postgres`` system user (as the tests' server is).
    """

    def __init__(self, folder: Path) -> None:
        self.dir = folder / "pg"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            folder.chmod(0o755)  # a temporary folder is the owner's alone: postgres must enter
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True)  # noqa: S603
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> None:
        data = str(self.dir / "data")
        self._run(_pg_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c synchronous_commit=off -c max_connections=200"
        )
        log = str(self.dir / "log")
        self._run(_pg_bin("pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")

    def create_database(self, name: str) -> None:
        self._run(
            _pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-c", f'CREATE DATABASE "{name}"',
        )  # fmt: skip

    def sqlalchemy_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def jdbc_url(self, name: str) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{name}"

    def size(self, name: str) -> int:
        """Bytes on disk of database ``name`` (tables, indexes, TOAST)."""
        out = subprocess.run(  # noqa: S603
            [
                *self.as_user, _pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port),
                "-U", "postgres", "-At", "-c", f"SELECT pg_database_size('{name}')",
            ],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return int(out.strip())

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")


def hapi_jar(project: Path = HAPI_PROJECT) -> Path:
    """The HAPI application's jar, built with Maven when missing or older than its sources
    (Maven Central's artifacts are cached in ~/.m2: a rebuild from a warm cache takes ~1 min)."""
    jar = project / "target" / "hapi-peer.jar"
    sources = [project / "pom.xml", *(p for p in project.glob("src/main/**/*") if p.is_file())]
    if not jar.exists() or max(p.stat().st_mtime for p in sources) > jar.stat().st_mtime:
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to build HAPI FHIR (apt-get install maven)")
        subprocess.run(["mvn", "-q", "-B", "package", "-DskipTests"], cwd=project, check=True)  # noqa: S607
    return jar


class Hapi:
    """HAPI FHIR's JPA server on ``database``: ``java -jar`` with Spring Boot's datasource
    properties; started when ``/fhir/metadata`` answers (Hibernate creates the schema first)."""

    def __init__(self, jar: Path, pg: Postgres, database: str, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / "hapi.log"
        command = [
            "java", "-jar", str(jar), f"--server.port={self.port}",
            "--server.address=127.0.0.1",
            f"--spring.datasource.url={pg.jdbc_url(database)}",
            "--spring.datasource.username=postgres",
        ]  # fmt: skip
        out = self.log.open("ab")
        self.process = subprocess.Popen(command, stdout=out, stderr=out)  # noqa: S603
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        try:
            _wait_http(f"{self.base}/metadata", self.process, self.log, 600)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        import signal

        _stop(self.process, signal.SIGTERM)


class Sokhoe:
    """``sokhoe serve --workers N`` on ``db``, with a platform system client registered by
    ``sokhoe client create`` and its bearer token (``headers``)."""

    def __init__(self, db: str, workers: int, folder: Path, name: str) -> None:
        self.port = free_port()
        self.log = folder / f"sokhoe-{name}.log"
        var = folder / f"var-{name}"
        var.mkdir()
        env = {
            **os.environ,
            "SOKHOE_VAR_DIR": str(var),
            "SOKHOE_GLASS_ALERTS": "false",
            "SOKHOE_TOKEN_MINUTES": "600",
        }
        cli = [sys.executable, "-m", "sokhoe.cli"]
        created = subprocess.run(  # noqa: S603
            [*cli, "client", "create", "--name", "bench-peers", "--scope", "system/*.cruds",
             "--db", db],
            env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        client = json.loads(created[created.index("{") :])
        command = [*cli, "serve", "--db", db, "--port", str(self.port), "--workers", str(workers)]
        out = self.log.open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=out, stderr=out)  # noqa: S603
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        try:
            _wait_http(f"http://127.0.0.1:{self.port}/health", self.process, self.log, 300)
            self.headers = {"Authorization": f"Bearer {self._token(client)}"}
        except BaseException:
            self.stop()
            raise

    def _token(self, client: dict[str, str]) -> str:
        from urllib.parse import urlencode

        form = {
            "grant_type": "client_credentials",
            "client_id": client["client_id"],
            "client_secret": client["client_secret"],
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/auth/token", data=urlencode(form).encode()
        )
        with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310
            return str(json.loads(r.read())["access_token"])

    def stop(self) -> None:
        import signal

        _stop(self.process, signal.SIGINT)
