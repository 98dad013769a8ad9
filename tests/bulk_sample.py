"""The Synthea bulk sample (``shared/data/synthea-bulk-10``, 7,160 resources) loaded once per
test process into each kind of store, and copied for each test that asks.

Loading it costs some 15 s of CPU per store on a quiet machine; copying the loaded store (a
copy-on-write fork in memory, a copied SQLite file, a PostgreSQL database made from a template)
costs milliseconds. ``tests/web/test_synthea_bulk.py`` holds that very load to its contract (its
report, every file read back from a copy, loading again changes nothing) and
``tests/interop/test_bulk_export.py`` exports copies of it: the two files are one xdist group
(``GROUPS`` in ``tests/conftest.py``), so under ``--dist loadfile`` one worker loads each store
once for both instead of four times.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.interop.load import LoadReport, load_paths
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql import SqlStore
from tests.conftest import BACKENDS, BASE, SHARED_DATA, sqlite_store
from tests.pg_server import PostgresServer

BULK_10 = SHARED_DATA / "synthea-bulk-10"


@dataclass(frozen=True)
class Loaded:
    """A store of one kind with the bulk sample loaded, and the report of that load."""

    store: FhirStore
    report: LoadReport


def _load(store: FhirStore) -> LoadReport:
    """The sample loaded as ``sokhoe load`` does by default (worker processes validate and
    index ahead of the writer for a load of this size; ``tests/interop/test_load.py`` holds
    them to the same store as an inline load)."""
    return load_paths(platform_repository(store, f"{BASE}/fhir"), [BULK_10])


@pytest.fixture(scope="session")
def bulk_10() -> Loaded:
    """The sample in a memory store: each test forks it (copy-on-write, nothing shared)."""
    store = MemoryStore()
    return Loaded(store, _load(store))


@pytest.fixture(scope="session")
def bulk_10_sqlite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, LoadReport]:
    """The sample loaded into a SQLite file, closed (each test copies it)."""
    path = tmp_path_factory.mktemp("bulk-10") / "bulk.db"
    store = sqlite_store(request, path)
    try:
        report = _load(store)
    finally:
        store.close()
    return path, report


@pytest.fixture(scope="session")
def bulk_10_postgres(pg_server: PostgresServer) -> Iterator[tuple[str, LoadReport]]:
    """The sample loaded into a PostgreSQL database of its own, closed: the template each
    test's database is copied from."""
    name = f"sokhoe_bulk_10_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    store = SqlStore(pg_server.create_database(name))
    try:
        report = _load(store)
    finally:
        store.close()
    yield name, report
    pg_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def bulk_loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loaded]:
    """A store of each kind holding the bulk sample, a copy of the one loaded once per test
    process, with the report of that load (nothing a test writes reaches another test)."""
    store: FhirStore
    if request.param == "memory":
        loaded: Loaded = request.getfixturevalue("bulk_10")
        assert isinstance(loaded.store, MemoryStore)
        store, report = loaded.store.fork(), loaded.report
    elif request.param == "sqlite":
        path, report = request.getfixturevalue("bulk_10_sqlite")
        shutil.copyfile(path, tmp_path / "bulk.db")
        store = SqlStore(f"sqlite:///{tmp_path / 'bulk.db'}", migrate_schema=False)
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        template, report = request.getfixturevalue("bulk_10_postgres")
        name = f"{template}_{tmp_path.name}"[:63]
        store = SqlStore(server.create_database(name, template=template), migrate_schema=False)
    try:
        yield Loaded(store, report)
    finally:
        store.close()
        if request.param == "postgres":
            server.drop_database(name)
