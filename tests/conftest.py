"""Shared fixtures: a ``store`` in memory, SQLite and a real PostgreSQL server; a client on it.

The same test bodies run on every backend (STYLE.md §9). The PostgreSQL server is started once
per test worker; each test gets empty tables.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.passwords import password_hasher
from sokhoe.access.tokens import TokenService
from sokhoe.bench.shared_data import shared_data
from sokhoe.config import Settings
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.partitions import resource_key
from sokhoe.store.sql.schema import content_dictionary, metadata
from sokhoe.web.app import create_app
from tests import served
from tests.pg_server import PostgresServer

# Bytecode is cached during the tests even where PYTHONDONTWRITEBYTECODE is set (this machine's
# environment sets it): without the cache every xdist worker and every ``sokhoe serve`` the tests
# start compiles sokhoe again, and pytest rewrites the asserts of every module of its plugins'
# distributions (hypothesis, schemathesis: some 450 modules) again, seconds of CPU each time.
# The workers start after this file is read, so they inherit the cleared variable.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


def _shared_data() -> Path:
    return shared_data()


pytest_plugins = ["tests.browser", "tests.bulk_sample"]
"""The browser fixture (Chromium, one per module) and the loaded bulk sample (once per test
process), for every test module that asks."""

SHARED_DATA = _shared_data()
BASE = "http://testserver"
BACKENDS = ["memory", "sqlite", "postgres"]
PARTITIONED_BACKENDS = [*BACKENDS, "postgres-partitioned"]
"""The store's own tests (``tests/store/conftest.py``) also run on PostgreSQL with the record
tables partitioned by patient (``store/sql/partitions.py``); the rest of the suite does not
repeat itself there."""
TEST_PARTITIONS = 4
"""Partitions of the partitioned test database: enough that pruning shows, few enough that
emptying it between tests stays cheap."""
FAST_PASSWORDS: dict[str, Any] = {
    "password_time_cost": 1,
    "password_memory_kib": 8,
    "password_parallelism": 1,
}
"""Settings for a test's password hashing: Argon2id at its lowest cost (as Django's test
settings use a fast hasher). Production keeps the library's defaults (test_accounts.py)."""
FAST_HASHER = password_hasher(Settings(**FAST_PASSWORDS))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: PostgresServer) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = pg_server.create_database(f"sokhoe_test_{worker}")
    SqlStore(url).close()  # run migrations once
    return url


@pytest.fixture(scope="session")
def pg_partitioned_url(pg_server: PostgresServer) -> str:
    """A database whose record tables are hash-partitioned by patient, once per test worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = pg_server.create_database(f"sokhoe_test_part_{worker}")
    SqlStore(url, partitions=TEST_PARTITIONS).close()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file the migrations brought to the current schema, once per test worker."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    SqlStore(f"sqlite:///{path}").close()  # closing folds the WAL into the file
    return path


def sqlite_store(request: pytest.FixtureRequest, path: Path) -> SqlStore:
    """A SQLite store at ``path`` starting as a copy of :func:`sqlite_template`: the same
    schema the migrations make, without replaying them (0.3-0.4 s) for every test."""
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return SqlStore(f"sqlite:///{path}", migrate_schema=False)


def module_store(request: pytest.FixtureRequest, folder: Path, name: str) -> SqlStore:
    """A store of its own for a module-scoped world (``request.param``: sqlite or postgres):
    a SQLite file in ``folder``, or a database of its own on the session's PostgreSQL server
    (the ``store`` fixture empties the shared one before every test)."""
    if request.param == "sqlite":
        return sqlite_store(request, folder / f"{name}.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return SqlStore(server.create_database(f"sokhoe_{name}_{worker}"))


def _truncate(store: SqlStore) -> None:
    """Every row of a PostgreSQL store gone, in one transaction and one round trip.

    ``DELETE`` rather than ``TRUNCATE``: a test leaves a few rows, and ``TRUNCATE`` of the 40
    tables gives each table and index a new file, some 35-110 ms a test against 2 ms here
    (300 tests run on PostgreSQL). The tables are emptied dependants first (the foreign keys);
    neither statement resets a sequence."""
    tables = [t.name for t in reversed(metadata.sorted_tables) if t is not content_dictionary]
    if store.partitioned:
        tables.append(resource_key.name)
    statements = "".join(f"DELETE FROM {t};" for t in tables)  # noqa: S608 (the schema's)
    with store.writer.begin() as conn:
        conn.execute(text(statements))


def _clear(store: SqlStore) -> None:
    """Every row of a SQLite store gone (SQLite has no ``TRUNCATE``)."""
    with store.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table is not content_dictionary:  # the database's, not a test's
                conn.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_served_url(sqlite_template: Path) -> str:
    """The SQLite file of the served app (``SOKHOE_TEST_WORKERS``), emptied before each test."""
    path = sqlite_template.with_name("served.db")
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def served_apps(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], served.Served]]:
    """The served apps of this test process by database URL, started on first use and
    stopped at the end of the session (``SOKHOE_TEST_WORKERS``)."""
    with ExitStack() as stack:
        apps: dict[str, served.Served] = {}

        def start(url: str) -> served.Served:
            if url not in apps:
                folder = tmp_path_factory.mktemp("served")
                settings = Settings(
                    base_url=BASE, database_url=url, var_dir=folder, **FAST_PASSWORDS
                )
                apps[url] = stack.enter_context(
                    served.served(settings, served.WORKERS, folder / "server.log")
                )
            return apps[url]

        yield start


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    yield from open_test_store(request, tmp_path)


def open_test_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    """The ``store`` of ``request.param`` (a name in :data:`PARTITIONED_BACKENDS`), emptied,
    closed after the test."""
    s: FhirStore
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite" and served.WORKERS:  # one file the served app keeps open
        s = SqlStore(request.getfixturevalue("sqlite_served_url"), migrate_schema=False)
        _clear(s)
    elif request.param == "sqlite":
        s = sqlite_store(request, tmp_path / "test.db")
    else:
        name = "pg_partitioned_url" if request.param == "postgres-partitioned" else "pg_url"
        pg = SqlStore(request.getfixturevalue(name), migrate_schema=False)
        _truncate(pg)
        s = pg
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own on each SQL backend, for tests that migrate it themselves
    (no schema yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/own.db"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"own_{random.randrange(1 << 30)}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture
def settings() -> Settings:
    return Settings(base_url=BASE, database_url="sqlite://", **FAST_PASSWORDS)


@pytest.fixture
def client(
    store: FhirStore, settings: Settings, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    """An API client signed in as a platform-level connected system (every scope, no facility:
    the policy lets it see everything). Access-control tests make their own callers.

    With ``SOKHOE_TEST_WORKERS=N`` the SQL backends' client speaks HTTP to the app served by
    N worker processes over the same database (``tests/served.py``)."""
    if served.WORKERS and isinstance(store, SqlStore):
        running = request.getfixturevalue("served_apps")(str(store.url))
        # its var/ too: the key that seals the token-signing keys is kept there
        app = create_app(settings.model_copy(update={"var_dir": running.var_dir}), store)
        with served.ServedApi(running.url, app) as live:
            live.headers["Authorization"] = f"Bearer {platform_token(app)}"
            yield live  # type: ignore[misc]
        return
    app = create_app(settings, store)
    with TestClient(app, base_url=BASE) as c:
        c.headers["Authorization"] = f"Bearer {platform_token(app)}"
        yield c


def platform_token(app: FastAPI) -> str:
    tokens: TokenService = app.state.tokens
    new = create_client(tokens.engine, "test platform", ["system/*.cruds"])
    principal = authenticate_client(tokens.engine, new.client_id, new.client_secret)
    return tokens.issue(principal)[0]


HEAVY_FIRST: tuple[str, ...] = (
    "tests/web/test_synthea_bulk.py",
    "tests/web/test_dashboard_browser.py",
    "tests/web/test_synthea.py",
    "tests/web/test_dashboard.py",
    "tests/interop/test_bulk_export.py",
    "tests/conformance/test_hapi_validator.py",
    "tests/warehouse/test_spark_runner.py",
    "tests/interop/test_bulk_import.py",
    "tests/store/test_backup.py",
    "tests/clinic/test_clinic_browser.py",
    "tests/warehouse/test_build.py",
    "tests/interop/test_load.py",
    "tests/interop/test_sync.py",
    "tests/conformance/test_hapi_client.py",
    "tests/interop/test_subscriptions.py",
    "tests/warehouse/test_surveillance.py",
    "tests/prescribing/test_prescribing_browser.py",
    "tests/interop/test_pacs.py",
    "tests/portal/test_declare_browser.py",
    "tests/portal/test_family_browser.py",
    "tests/clinic/test_demo_clinic.py",
    "tests/demo/test_demo.py",
    "tests/portal/test_journey_browser.py",
    "tests/web/test_access.py",
    "tests/warehouse/test_suppression.py",
    "tests/portal/test_book_browser.py",
    "tests/portal/test_portal_browser.py",
    "tests/portal/test_privacy_browser.py",
    "tests/web/test_search.py",
    "tests/warehouse/test_viewdef.py",
    "tests/web/test_attacks.py",
    "tests/prescribing/test_dispense_race.py",
    "tests/portal/test_declaration.py",
    "tests/interop/test_claims_export.py",
    "tests/web/test_demo_accounts.py",
    "tests/prescribing/test_national_outbox.py",
    "tests/web/test_search_dates.py",
    "tests/interop/test_hl7v2_mllp.py",
    "tests/access/test_oidc.py",
)
"""The longest test files, longest first (their durations alone on a quiet machine and their
CPU in a whole run, 6 Dec 2026): with ``--dist loadfile`` each file runs on one worker, and one
of these begun last would leave the other worker idle while it finishes. The files not listed
follow in collection order, short ones filling the end."""


def pytest_configure(config: pytest.Config) -> None:
    """Keep the order below under ``--dist loadfile``: xdist otherwise hands the files out by
    their number of tests, most first, which leaves the long files of few tests (the sync's
    servers, the browsers, the Synthea loads) to the end, one worker finishing alone."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


GROUPS: dict[str, str] = {
    "tests/web/test_synthea_bulk.py": "bulk-10",
    "tests/interop/test_bulk_export.py": "bulk-10",
}
"""Files that share what a test process builds once (``tests/bulk_sample.py``): under
``--dist loadfile`` each group goes to one worker as a whole, like a single file."""


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with :data:`GROUPS`: whole files to each worker, the files of a
    group together.

    ``--dist loadgroup`` cannot do it here: xdist 3.8 marks a test's group by assigning
    ``item._nodeid``, which pytest 9 no longer reads (``Node.nodeid`` comes from ``_id``), so
    every ``xdist_group`` mark is ignored and the tests are spread one by one (each worker
    then builds every module-scoped fixture). The scheduler sees node ids only, so the groups
    are named by file here.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileGroupScheduling(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return GROUPS.get(path, path)

    return FileGroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
