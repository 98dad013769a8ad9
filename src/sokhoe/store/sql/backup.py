"""Back up and restore a live SQL store (SQLite or PostgreSQL), with a manifest to check against.

Circular 13/2025/TT-BYT (which replaced Circular 46/2018 on electronic medical records) asks
that a shared health record can be backed up and restored. A backup has to be taken while the
platform keeps serving, so both paths copy a *consistent snapshot* of a live database:

- **SQLite**: the online backup API (``sqlite3.Connection.backup``), copying a few hundred
  pages per step from one read transaction. Under WAL, writers carry on during the copy and
  the snapshot does not move, so the copy never restarts and never holds a lock for long.
  ``PRAGMA integrity_check`` is run on the copy before it is moved into place.
- **PostgreSQL**: ``pg_dump --format=custom`` reading the snapshot exported by a
  ``REPEATABLE READ`` transaction, in which the row counts for the manifest are taken too: the
  counts describe exactly the rows in the dump.

Next to the backup file a JSON manifest (``<file>.json``) records the dialect, the time, the
schema (Alembic) revision, the row count of every table and the file's SHA-256. :func:`restore`
refuses to overwrite a database that holds data unless told to (the record is precious), and
afterwards checks the restored database against the manifest.

A backup holds the token-signing keys only sealed: the key-encryption key that opens them is
never in the database (``sokhoe.access.kek``). Restored on a server with another such key, the
record is whole, but tokens issued before are refused and everyone signs in again.

A SQLite restore writes into the target file through the same backup API: the target must not
be open by a running server (stop ``sokhoe serve`` first), since its connections would keep
pages of the old database in memory.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

__all__ = [
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "backup",
    "manifest_path",
    "restore",
]

Progress = Callable[[int, int], object]
"""Called with (pages copied, total pages) during a SQLite backup."""

PAGES_PER_STEP = 256
MANIFEST_FORMAT = "sokhoe-backup/1"
_BOOKKEEPING = {"alembic_version"}


class BackupError(RuntimeError):
    """A backup or restore could not be made or did not verify."""


@dataclass(frozen=True)
class BackupReport:
    """What :func:`backup` wrote."""

    path: Path
    manifest: Path
    dialect: str
    size: int
    seconds: float
    revision: str | None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` put back, checked against the manifest."""

    source: Path
    dialect: str
    seconds: float
    revision: str | None
    counts: dict[str, int] = field(default_factory=dict)


def manifest_path(path: Path) -> Path:
    """The manifest beside a backup file: ``<file>.json``."""
    return path.with_name(path.name + ".json")


# -- shared helpers ------------------------------------------------------------------------


def _url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up '{parsed.get_backend_name()}': use sqlite or postgresql")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_path(parsed: URL) -> Path:
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database has no file to back up or restore into")
    return Path(parsed.database)


def _counts(conn: Connection) -> dict[str, int]:
    """Row count of every table, in the connection's current transaction."""
    names = sorted(inspect(conn).get_table_names())
    return {
        n: int(conn.execute(select(func.count()).select_from(table(n))).scalar_one()) for n in names
    }


def _revision(conn: Connection, counts: dict[str, int]) -> str | None:
    if "alembic_version" not in counts:
        return None
    value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _inspect_db(parsed: URL) -> tuple[dict[str, int], str | None]:
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            counts = _counts(conn)
            return counts, _revision(conn, counts)
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot read {parsed.render_as_string()}: {exc}") from exc
    finally:
        engine.dispose()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(out: Path, dialect: str, revision: str | None, counts: dict[str, int]) -> Path:
    path = manifest_path(out)
    manifest = {
        "format": MANIFEST_FORMAT,
        "dialect": dialect,
        "created": datetime.now(UTC).isoformat(),
        "revision": revision,
        "file": out.name,
        "size": out.stat().st_size,
        "sha256": _sha256(out),
        "counts": counts,
    }
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _read_manifest(source: Path) -> dict[str, Any]:
    path = manifest_path(source)
    if not source.is_file():
        raise BackupError(f"backup file {source} does not exist")
    if not path.is_file():
        raise BackupError(f"manifest {path} is missing: the restore could not be verified")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise BackupError(f"{path} is not a sokhoe backup manifest")
    if manifest.get("sha256") != _sha256(source):
        raise BackupError(f"{source} does not match its manifest's SHA-256: the file is damaged")
    return manifest


# -- PostgreSQL tools ----------------------------------------------------------------------


def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: the newest under /usr/lib/postgresql, else from PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"PostgreSQL's {name} was not found on PATH or under /usr/lib/postgresql/*/bin; "
            "install the PostgreSQL client tools of the server's version or newer"
        )
    return path


def _pg_args(parsed: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments and the child's environment (the password never on argv)."""
    args = []
    if parsed.host:
        args.append(f"--host={parsed.host}")
    if parsed.port:
        args.append(f"--port={parsed.port}")
    if parsed.username:
        args.append(f"--username={parsed.username}")
    args.append("--no-password")
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    sslmode = parsed.query.get("sslmode")
    if isinstance(sslmode, str):
        env["PGSSLMODE"] = sslmode
    return args, env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as exc:
        raise BackupError(f"could not run {cmd[0]}: {exc}") from exc
    if done.returncode != 0:
        tool = Path(cmd[0]).name
        raise BackupError(f"{tool} failed (exit {done.returncode}): {done.stderr.strip()}")


# -- backup --------------------------------------------------------------------------------


def backup(url: str, out: Path, progress: Progress | None = None) -> BackupReport:
    """Copy a consistent snapshot of the live database at ``url`` to ``out`` (+ manifest).

    The file is written under a temporary name and renamed when complete and checked, so a
    failed backup never leaves a file that looks like a good one.
    """
    parsed = _url(url)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    try:
        if parsed.get_backend_name() == "sqlite":
            counts, revision = _backup_sqlite(_sqlite_path(parsed), partial, progress)
        else:
            counts, revision = _backup_postgres(parsed, partial)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    dialect = parsed.get_backend_name()
    written = _write_manifest(out, dialect, revision, counts)
    return BackupReport(
        path=out,
        manifest=written,
        dialect=dialect,
        size=out.stat().st_size,
        seconds=time.monotonic() - started,
        revision=revision,
        counts=counts,
    )


def _step_progress(progress: Progress | None) -> Callable[[int, int, int], object] | None:
    if progress is None:
        return None

    def call(_status: int, remaining: int, total: int) -> None:
        progress(total - remaining, total)

    return call


def _backup_sqlite(
    source: Path, partial: Path, progress: Progress | None
) -> tuple[dict[str, int], str | None]:
    if not source.is_file():
        raise BackupError(f"SQLite database {source} does not exist")
    src = sqlite3.connect(source, timeout=60, isolation_level=None)
    dst = sqlite3.connect(partial, isolation_level=None)
    try:
        # one read transaction for the whole copy: under WAL its snapshot stays put while
        # writers commit, so the stepwise copy is consistent and does not restart
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        src.backup(dst, pages=PAGES_PER_STEP, progress=_step_progress(progress), sleep=0.001)
        src.execute("COMMIT")
        problems = [row[0] for row in dst.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise BackupError(f"the copy of {source} failed its integrity check: {problems[:5]}")
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup of {source} failed: {exc}") from exc
    finally:
        dst.close()
        src.close()
    return _inspect_db(make_url(f"sqlite:///{partial}"))


def _backup_postgres(parsed: URL, partial: Path) -> tuple[dict[str, int], str | None]:
    tool = pg_tool("pg_dump")
    args, env = _pg_args(parsed)
    engine = create_engine(parsed)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
            counts = _counts(conn)
            revision = _revision(conn, counts)
            # the snapshot lives as long as this transaction: pg_dump runs inside it
            _run(
                [
                    tool,
                    "--format=custom",
                    "--no-owner",
                    f"--snapshot={snapshot}",
                    f"--file={partial}",
                    *args,
                    f"--dbname={parsed.database}",
                ],
                env,
            )
            conn.rollback()
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot read {parsed.render_as_string()}: {exc}") from exc
    finally:
        engine.dispose()
    return counts, revision


# -- restore -------------------------------------------------------------------------------


def _data_tables(counts: dict[str, int]) -> dict[str, int]:
    return {n: c for n, c in counts.items() if c and n not in _BOOKKEEPING}


def restore(url: str, source: Path, force: bool = False) -> RestoreReport:
    """Put the backup ``source`` into the database at ``url`` and check it against the manifest.

    A target that already holds data is refused unless ``force``: overwriting a health record
    by mistake destroys what the citizen's care depends on.
    """
    parsed = _url(url)
    source = Path(source)
    manifest = _read_manifest(source)
    dialect = parsed.get_backend_name()
    if manifest.get("dialect") != dialect:
        raise BackupError(
            f"{source} is a {manifest.get('dialect')} backup; it cannot be restored into {dialect}"
        )
    started = time.monotonic()
    target = _sqlite_path(parsed) if dialect == "sqlite" else None
    if target is None or target.exists():
        existing, _ = _inspect_db(parsed)
        holding = _data_tables(existing)
        if holding and not force:
            listed = ", ".join(f"{n} ({c} rows)" for n, c in sorted(holding.items())[:5])
            raise BackupError(
                f"the target database is not empty ({listed}); restoring would overwrite health "
                "records that may exist nowhere else. Check the target, then pass force=True "
                "(`--force`) to replace it"
            )
    if target is not None:
        _restore_sqlite(source, target)
    else:
        _restore_postgres(parsed, source)
    counts, revision = _inspect_db(parsed)
    _verify(manifest, counts, revision)
    return RestoreReport(
        source=source,
        dialect=dialect,
        seconds=time.monotonic() - started,
        revision=revision,
        counts=counts,
    )


def _restore_sqlite(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    dst = sqlite3.connect(target, timeout=60, isolation_level=None)
    try:
        src.backup(dst, pages=PAGES_PER_STEP)
        dst.execute("PRAGMA journal_mode=WAL")  # as the store runs it (engine.py)
        problems = [row[0] for row in dst.execute("PRAGMA integrity_check").fetchall()]
        if problems != ["ok"]:
            raise BackupError(f"the restored {target} failed its integrity check: {problems[:5]}")
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite restore into {target} failed: {exc}") from exc
    finally:
        dst.close()
        src.close()


def _restore_postgres(parsed: URL, source: Path) -> None:
    tool = pg_tool("pg_restore")
    args, env = _pg_args(parsed)
    _run(
        [
            tool,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            *args,
            f"--dbname={parsed.database}",
            str(source),
        ],
        env,
    )


def _verify(manifest: dict[str, Any], counts: dict[str, int], revision: str | None) -> None:
    if manifest.get("revision") != revision:
        raise BackupError(
            f"restored schema revision {revision!r} differs from the backup's "
            f"{manifest.get('revision')!r}"
        )
    expected: dict[str, int] = manifest.get("counts", {})
    wrong = {
        name: (want, counts.get(name))
        for name, want in expected.items()
        if counts.get(name) != want
    }
    if wrong:
        detail = ", ".join(f"{n}: expected {w}, found {g}" for n, (w, g) in sorted(wrong.items()))
        raise BackupError(f"the restored database does not match the manifest: {detail}")
