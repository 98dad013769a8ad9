"""A throw-away PostgreSQL server for the tests: initdb into a temp dir, start, stop.

The tests start their own server (no service is assumed to be running). As root, PostgreSQL
refuses to run, so the cluster is created and started as the ``postgres`` system user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sokhoe.store.sql.backup import pg_tool

_bin = pg_tool
"""The server binaries are found as the backup finds its tools (`make test` installs them)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sokhoe-pg-"))
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True)

    def start(self) -> str:
        data = self.dir / "data"
        self._run(
            _bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            _bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"
        )
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template`` (which nobody may be connected to:
        PostgreSQL copies its files, much faster than writing the same rows again)."""
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        self._sql(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._sql(f'DROP DATABASE "{name}" WITH (FORCE)')

    def _sql(self, statement: str) -> None:
        self._run(
            _bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", statement
        )

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
