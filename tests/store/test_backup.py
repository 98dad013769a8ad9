"""Backup and restore of a live store (Circular 13/2025/TT-BYT asks for both).

A backup is taken while a thread keeps creating Patients; the restore must give back exactly a
consistent snapshot: every restored resource as it was in the source, the manifest's counts,
working searches, and a refusal to overwrite a store that holds data.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sokhoe.access.guard import platform_repository
from sokhoe.cli import app
from sokhoe.demo import write_demo
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.backup import BackupError, backup, manifest_path, restore
from tests.conftest import BASE, sqlite_store

Snapshot = dict[tuple[str, str], tuple[int, str]]


def _snapshot(store: SqlStore) -> Snapshot:
    return {
        (r.resource_type, r.id): (r.version_id, json.dumps(r.content, sort_keys=True))
        for r in store.iter_all()
    }


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    write_demo(data, 30, 3, "bundles")
    return data


def _load(store: SqlStore, demo_data: Path) -> None:
    assert (
        load_paths(platform_repository(store, f"{BASE}/fhir"), [demo_data], workers=0).errors == []
    )


@pytest.fixture(scope="module")
def demo_sqlite(
    demo_data: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The demo loaded once into a SQLite file, closed: the two SQLite tests' live stores are
    copies (the PostgreSQL test loads its own: a template database saves nothing for one)."""
    path = tmp_path_factory.mktemp("demo-db") / "demo.db"
    store = sqlite_store(request, path)
    try:
        _load(store, demo_data)
    finally:
        store.close()
    return path


class Writer:
    """Keeps creating Patients through the repository until stopped."""

    def __init__(self, repo: FhirRepository) -> None:
        self.repo = repo
        self.written = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                patient: dict[str, Any] = {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:live", "value": f"live-{self.written}"}],
                    "gender": "female",
                }
                self.repo.create(patient, "Patient")
                self.written += 1
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def wait_for(self, n: int) -> None:
        while self.written < n and self.thread.is_alive():
            self.stop.wait(0.01)

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(60)


def _round_trip(source_url: str, target_url: str, out: Path) -> None:
    """``source_url`` holds the demo (a copy of the module's loaded one)."""
    source = SqlStore(source_url, migrate_schema=False)
    repo = platform_repository(source, f"{BASE}/fhir")
    pages: list[tuple[int, int]] = []
    with Writer(repo) as writer:
        writer.wait_for(5)
        before = writer.written
        report = backup(source_url, out, progress=lambda done, total: pages.append((done, total)))
        writer.wait_for(writer.written + 5)
    assert writer.error is None
    assert writer.written >= before + 5
    source_now = _snapshot(source)

    manifest = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    assert manifest["dialect"] == report.dialect == make_url(source_url).get_backend_name()
    assert manifest["counts"] == report.counts
    assert manifest["revision"] == report.revision is not None
    assert report.size == out.stat().st_size > 0
    if report.dialect == "sqlite":
        assert pages and pages[-1][0] == pages[-1][1]

    restored = restore(target_url, out)
    assert restored.counts == report.counts
    target = SqlStore(target_url)
    try:
        copy = _snapshot(target)
        assert len(copy) == report.counts["resource"] > 300
        # a consistent snapshot: every restored resource is the source's, same version, content
        for key, value in copy.items():
            assert source_now[key] == value, key
        missing = set(source_now) - set(copy)
        assert missing and all(rtype == "Patient" for rtype, _ in missing)

        copy_repo = platform_repository(target, f"{BASE}/fhir")
        patient = next(r for r in target.iter_all("Patient") if r.content)
        ident = patient.content["identifier"][0] if patient.content else {}
        token = f"{ident['system']}|{ident['value']}"
        page = copy_repo.search(copy_repo.parse_query("Patient", [("identifier", token)]))
        assert [m.id for m in page.matches] == [patient.id]
        live = copy_repo.search(copy_repo.parse_query("Patient", [("identifier", "urn:live|")]))
        assert len(live.matches) >= 5  # written by the live writer before the backup

        # the restored store holds data now: a second restore must be refused without force
        with pytest.raises(BackupError, match="not empty"):
            restore(target_url, out)
    finally:
        target.close()
    again = restore(target_url, out, force=True)
    assert again.counts == report.counts
    source.close()


def test_sqlite_live_backup_and_restore(demo_sqlite: Path, tmp_path: Path) -> None:
    shutil.copyfile(demo_sqlite, tmp_path / "live.db")
    _round_trip(
        f"sqlite:///{tmp_path / 'live.db'}",
        f"sqlite:///{tmp_path / 'restored' / 'copy.db'}",
        tmp_path / "backups" / "sokhoe.sqlite",
    )


@pytest.fixture
def pg_databases(pg_url: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases on the test server: the live source and the restore target."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    names = [f"backup_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("source", "target")]
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(pg_url)
    urls = [base.set(database=n).render_as_string(hide_password=False) for n in names]
    try:
        yield urls[0], urls[1]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_postgres_live_backup_and_restore(
    demo_data: Path, tmp_path: Path, pg_databases: tuple[str, str]
) -> None:
    source_url, target_url = pg_databases
    source = SqlStore(source_url)  # migrated here
    try:
        _load(source, demo_data)
    finally:
        source.close()
    _round_trip(source_url, target_url, tmp_path / "sokhoe.pgdump")


def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    SqlStore(url).close()
    out = tmp_path / "a.backup"
    backup(url, out)
    with out.open("ab") as f:
        f.write(b"x")
    with pytest.raises(BackupError, match="SHA-256"):
        restore(f"sqlite:///{tmp_path / 'b.db'}", out)


def test_a_backup_of_another_dialect_is_refused(tmp_path: Path, pg_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    SqlStore(url).close()
    out = tmp_path / "a.backup"
    backup(url, out)
    with pytest.raises(BackupError, match="sqlite backup"):
        restore(pg_url, out)


def test_cli_backup_and_restore_sqlite(demo_sqlite: Path, tmp_path: Path) -> None:
    shutil.copyfile(demo_sqlite, tmp_path / "live.db")
    source_url = f"sqlite:///{tmp_path / 'live.db'}"
    target_url = f"sqlite:///{tmp_path / 'copy.db'}"
    store = SqlStore(source_url, migrate_schema=False)
    expected = _snapshot(store)
    store.close()
    out = tmp_path / "b" / "sokhoe.sqlite"
    runner = CliRunner()

    result = runner.invoke(app, ["backup", "--db", source_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "backed up sqlite" in result.output
    assert manifest_path(out).is_file()

    result = runner.invoke(app, ["restore", "--db", target_url, "--from", str(out)])
    assert result.exit_code == 0, result.output
    assert "matches the manifest" in result.output
    target = SqlStore(target_url)
    assert _snapshot(target) == expected
    target.close()

    result = runner.invoke(app, ["restore", "--db", target_url, "--from", str(out)])
    assert result.exit_code == 1
    assert "not empty" in result.output

    result = runner.invoke(app, ["restore", "--db", target_url, "--from", str(out), "--force"])
    assert result.exit_code == 0, result.output


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path, pg_url: str) -> None:
    missing = make_url(pg_url).set(database="no_such_db").render_as_string(hide_password=False)
    with pytest.raises(BackupError, match="cannot read"):
        backup(missing, tmp_path / "x.pgdump")
    assert not (tmp_path / "x.pgdump").exists()
