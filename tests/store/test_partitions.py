"""PostgreSQL with the record tables hash-partitioned by patient (``store/sql/partitions.py``):
uniqueness without a primary key, rows that change patient, shared resources, history, a
refused bundle, and that a patient's reads touch one partition (``EXPLAIN``)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, text

from sokhoe.access.guard import platform_repository
from sokhoe.errors import Conflict, FhirError
from sokhoe.fhir.bundles import process_bundle
from sokhoe.fhir.repository import FhirRepository
from sokhoe.store import StoredResource
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.engine import make_engine
from sokhoe.store.sql.identity import param_id
from sokhoe.store.sql.migrate import PARTITIONS, alembic_config
from sokhoe.store.sql.partitions import PARTITIONED_TABLES, partitions_of
from tests.conftest import BASE, TEST_PARTITIONS, _truncate
from tests.pg_server import PostgresServer
from tests.store.test_store_contract import StepClock, observation, patient


@pytest.fixture
def store(pg_partitioned_url: str) -> Iterator[SqlStore]:
    s = SqlStore(pg_partitioned_url, migrate_schema=False)
    _truncate(s)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def repo(store: SqlStore) -> FhirRepository:
    return platform_repository(store, f"{BASE}/fhir", clock=StepClock())


def _rows(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the partitioned tables and the key table, each with the partition it is
    in, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.reader.connect() as conn:
        for table in (*PARTITIONED_TABLES, "resource_key"):
            rows = conn.execute(text(f"SELECT tableoid::regclass::text, * FROM {table}"))  # noqa: S608
            out[table] = sorted((tuple(map(repr, r)) for r in rows), key=str)
    return out


def _partition_of(store: SqlStore, table: str, where: str, **params: Any) -> set[str]:
    with store.reader.connect() as conn:
        rows = conn.execute(
            text(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {where}"),  # noqa: S608
            params,
        )
        return {r[0] for r in rows}


def test_the_layout_is_partitioned_and_plain_postgres_is_not(store: SqlStore, pg_url: str) -> None:
    assert store.partitioned
    with store.reader.connect() as conn:
        for table in PARTITIONED_TABLES:
            assert len(partitions_of(conn, table)) == TEST_PARTITIONS, table
    plain = SqlStore(pg_url, migrate_schema=False)
    try:
        assert not plain.partitioned
        with plain.reader.connect() as conn:
            assert partitions_of(conn, "resource") == []
    finally:
        plain.close()


def test_concurrent_creates_of_one_id_leave_exactly_one_row(
    store: SqlStore, repo: FhirRepository
) -> None:
    """Two connections create Patient/twin at once: the second waits on the first's key, then
    fails as a conflict; one row, one version."""
    first = repo.prepare(patient("twin", "Nguyễn"), "twin", 1, "PUT", None, StepClock()())
    second = repo.prepare(patient("twin", "Trần"), "twin", 1, "PUT", None, StepClock()())
    outcome = _behind(store, lambda tx: tx.write([first]), lambda tx: tx.write([second]))
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    rows = _rows(store)
    assert len(rows["resource"]) == 1 and len(rows["resource_history"]) == 1
    assert len(rows["resource_key"]) == 1
    with store.begin() as tx:
        stored = tx.read("Patient", "twin")
    assert stored is not None and stored.content is not None
    assert stored.content["name"][0]["family"] == "Nguyễn"


def _behind(
    store: SqlStore, first: Callable[[Any], object], then: Callable[[Any], object]
) -> list[BaseException | None]:
    """Run ``then`` in another thread's transaction while this thread's, having run ``first``,
    holds its locks; commit once the other waits. What ``then`` raised (None: nothing)."""
    outcome: list[BaseException | None] = []

    def other() -> None:
        try:
            with store.begin(write=True) as tx:
                then(tx)
            outcome.append(None)
        except BaseException as exc:  # reported to the test thread
            outcome.append(exc)

    with store.begin(write=True) as tx:
        first(tx)
        thread = threading.Thread(target=other)
        thread.start()
        _until_waiting(store)  # the other transaction is blocked on our uncommitted rows
    thread.join(timeout=30)
    return outcome


def _until_waiting(store: SqlStore) -> None:
    """Return once another connection of this database waits for a lock (no sleeps: the
    server's own view of its backends, polled)."""
    deadline = time.monotonic() + 20
    with store.reader.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()
    raise AssertionError("the second writer never waited")


def _apart(store: SqlStore, repo: FhirRepository) -> tuple[str, str]:
    """Two new patients whose rows are in different partitions."""
    where: dict[str, str] = {}
    for n in range(12):
        repo.update(patient(f"p{n}", "Lê"), "Patient", f"p{n}")
        where.setdefault(_partition_of(store, "resource", "id = :i", i=f"p{n}").pop(), f"p{n}")
    first, second = list(where.values())[:2]
    return first, second


def test_an_observation_moved_to_another_patient_moves_with_its_index_rows(
    store: SqlStore, repo: FhirRepository
) -> None:
    an, binh = _apart(store, repo)
    created = repo.create(observation("o1", an), "Observation")
    oid = created.resource.id
    repo.update({**observation("o1", binh), "id": oid}, "Observation", oid)
    with store.begin() as tx:
        pk = tx.conn.execute(
            text("SELECT pk FROM resource WHERE resource_type = 'Observation' AND id = :i"),
            {"i": oid},
        ).scalar_one()
    binh_part = _partition_of(store, "resource", "id = :i", i=binh)
    assert _partition_of(store, "resource", "id = :i", i=oid) == binh_part
    for table in PARTITIONED_TABLES[2:]:
        with store.reader.connect() as conn:
            patients = conn.execute(
                text(f"SELECT DISTINCT patient_id FROM {table} WHERE resource_pk = :pk"),  # noqa: S608
                {"pk": pk},
            ).scalars()
            assert set(patients) <= {binh}, table
    # the token index of the code is there, once, in binh's partition of sp_token
    suffix = binh_part.pop().removeprefix("resource")
    code = f"resource_pk = :pk AND pid = {param_id('Observation', 'code')}"
    assert _partition_of(store, "sp_token", code, pk=pk) == {f"sp_token{suffix}"}
    everything = {
        p: _ids(repo.everything(p, since=None, types=None, count=100, offset=0)[0])
        for p in (an, binh)
    }
    assert everything == {an: {f"Patient/{an}"}, binh: {f"Patient/{binh}", f"Observation/{oid}"}}
    found = repo.search(repo.parse_query("Observation", [("subject", f"Patient/{binh}")]))
    assert _ids(found.matches) == {f"Observation/{oid}"}
    assert not repo.search(repo.parse_query("Observation", [("subject", f"Patient/{an}")])).matches
    old = repo.vread("Observation", oid, "1")
    assert old.patient_id == an and old.content is not None
    assert old.content["subject"]["reference"] == f"Patient/{an}"


def test_a_writer_that_meets_a_row_moved_to_another_partition_gets_a_conflict(
    store: SqlStore, repo: FhirRepository
) -> None:
    """A concurrent update moved the row to another patient's partition while this writer
    waited to lock it: PostgreSQL's serialisation failure is the store's conflict (409), as
    the failed version check is on a plain table."""
    first, second = _apart(store, repo)
    oid = repo.create(observation("o", first), "Observation").resource.id
    moved = repo.prepare(observation("o", second), oid, 2, "PUT", 1, StepClock()())
    outcome = _behind(
        store, lambda tx: tx.write([moved]), lambda tx: tx.current_versions("Observation", [oid])
    )
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome
    assert repo.read("Observation", oid).patient_id == second


def _ids(rows: list[StoredResource]) -> set[str]:
    return {f"{r.resource_type}/{r.id}" for r in rows}


def test_a_shared_resource_without_a_patient_is_read_searched_and_versioned(
    store: SqlStore, repo: FhirRepository
) -> None:
    org = {"resourceType": "Organization", "id": "bv", "name": "Bệnh viện Bạch Mai"}
    repo.update(org, "Organization", "bv")
    repo.update({**org, "name": "Bệnh viện Bạch Mai Hà Nội"}, "Organization", "bv")
    assert repo.read("Organization", "bv").patient_id is None
    found = repo.search(repo.parse_query("Organization", [("name", "benh vien bach mai ha")]))
    assert _ids(found.matches) == {"Organization/bv"}
    versions, total = repo.history("Organization", "bv", None, 10, 0)
    assert total == 2 and [v.version_id for v in versions] == [2, 1]
    assert repo.vread("Organization", "bv", "1").content["name"] == "Bệnh viện Bạch Mai"  # type: ignore[index]
    # every row without a patient is in one partition
    assert len(_partition_of(store, "resource_history", "patient_id IS NULL")) == 1


def test_history_and_vread_of_a_patient(repo: FhirRepository) -> None:
    for n, family in enumerate(("Lê", "Lý", "Lưu"), start=1):
        out = repo.update(patient("chi", family), "Patient", "chi")
        assert out.resource.version_id == n
    repo.delete("Patient", "chi")
    versions, total = repo.history("Patient", "chi", None, 10, 0)
    assert total == 4 and [v.version_id for v in versions] == [4, 3, 2, 1]
    assert versions[0].deleted
    for n, family in enumerate(("Lê", "Lý", "Lưu"), start=1):
        content = repo.vread("Patient", "chi", str(n)).content
        assert content is not None and content["name"][0]["family"] == family


def test_a_purged_id_may_be_created_again(store: SqlStore, repo: FhirRepository) -> None:
    repo.update(patient("dung", "Võ"), "Patient", "dung")
    with store.begin(write=True) as tx:
        assert tx.purge("Patient", "dung") == 1
    assert _rows(store)["resource_key"] == []
    assert repo.update(patient("dung", "Võ"), "Patient", "dung").resource.version_id == 1


def test_a_refused_transaction_bundle_leaves_the_partitioned_store_as_it_was(
    store: SqlStore, repo: FhirRepository
) -> None:
    repo.update(patient("em", "Đỗ"), "Patient", "em")
    repo.create(observation("x", "em"), "Observation")
    before = _rows(store)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": patient("giang", "Phan"),
                "request": {"method": "PUT", "url": "Patient/giang"},
            },
            {
                "resource": observation("y", "giang"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {  # a lost update (Patient/em is at version 1): the whole bundle is refused
                "resource": patient("em", "Đỗ", "Bình"),
                "request": {"method": "PUT", "url": "Patient/em", "ifMatch": 'W/"7"'},
            },
        ],
    }
    with pytest.raises(FhirError):
        process_bundle(repo, bundle)
    assert _rows(store) == before


def _statements(store: SqlStore, work: Any) -> list[tuple[str, Any]]:
    """The SELECTs ``work`` sends to the database, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(store.reader, "before_cursor_execute", listen)
    try:
        work()
    finally:
        event.remove(store.reader, "before_cursor_execute", listen)
    return seen


def _partitions_in_plan(store: SqlStore, statement: str, params: Any) -> dict[str, set[str]]:
    """Each partitioned table's partitions that the plan of ``statement`` reads."""
    with store.reader.connect() as conn:
        plan = "\n".join(
            r[0] for r in conn.exec_driver_sql(f"EXPLAIN (COSTS OFF) {statement}", params)
        )
    read: dict[str, set[str]] = {}
    for table in PARTITIONED_TABLES:
        found = set(re.findall(rf"\b{table}_p\d\d\b", plan))
        if found:
            read[table] = found
    return read


def _population(repo: FhirRepository) -> dict[str, str]:
    """Patients in every partition, each with two Observations; their glucose's ids."""
    glucose: dict[str, str] = {}
    for n in range(12):
        pid = f"p{n}"
        repo.update(patient(pid, "Hoàng"), "Patient", pid)
        repo.create(observation("o", pid), "Observation")
        glucose[pid] = repo.create(observation("g", pid, code="2339-0"), "Observation").resource.id
    return glucose


def test_everything_and_a_compartment_search_read_one_partition(
    store: SqlStore, repo: FhirRepository
) -> None:
    glucose = _population(repo)
    statements = _statements(
        store, lambda: repo.everything("p3", since=None, types=None, count=100, offset=0)
    )
    # the Patient read (its own compartment), its links, the page and its total: every
    # statement of $everything reads one partition
    assert sum("FROM resource" in s[0] for s in statements) >= 4
    for statement, params in statements:
        assert {t: len(p) for t, p in _partitions_in_plan(store, statement, params).items()} == {
            "resource": 1
        }, statement
    query = repo.parse_query("Observation", [("code", "http://loinc.org|2339-0")])
    query.patient_ids = ["p3"]  # Patient/p3/Observation?code=… (``web/fhir_api.py``)
    page: list[Any] = []
    statements = _statements(store, lambda: page.append(repo.search(query)))
    assert _ids(page[0].matches) == {f"Observation/{glucose['p3']}"}
    searched = [s for s in statements if "sp_token" in s[0]]
    assert searched
    for statement, params in searched:
        read = _partitions_in_plan(store, statement, params)
        assert set(read) == {"resource", "sp_token"}, statement
        assert all(len(p) == 1 for p in read.values()), read


def test_a_populated_database_is_not_converted(pg_server: PostgresServer) -> None:
    """Only a new database is created partitioned: one that holds records at migration 0021
    is refused with a clear error and left as it was."""
    url = pg_server.create_database("sokhoe_part_populated")
    try:
        engine = make_engine(url, write=True)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0020")
            conn.execute(
                text(
                    "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, "
                    "pk) VALUES ('Organization', 'x', 1, now(), false, 1)"
                )
            )
        cfg = alembic_config()
        cfg.attributes[PARTITIONS] = 4
        with pytest.raises(RuntimeError, match="already holds records"):
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert partitions_of(conn, "resource") == []
            assert conn.execute(text("SELECT count(*) FROM resource")).scalar_one() == 1
        engine.dispose()
    finally:
        pg_server.drop_database("sokhoe_part_populated")


def test_every_command_creates_the_layout_the_settings_ask_for(pg_server: PostgresServer) -> None:
    """The server, the HL7 listener, an import: whichever first opens the empty database
    (``Settings.open_store``) makes it partitioned when ``SOKHOE_PG_PARTITIONS`` says so."""
    from sokhoe.config import Settings

    url = pg_server.create_database("sokhoe_part_settings")
    try:
        store = Settings(database_url=url, pg_partitions=3).open_store()
        try:
            assert store.partitioned
            with store.reader.connect() as conn:
                assert len(partitions_of(conn, "resource")) == 3
        finally:
            store.close()
    finally:
        pg_server.drop_database("sokhoe_part_settings")
