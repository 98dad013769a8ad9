"""Id searches compiled once per shape answer exactly as the searches compiled each time.

The oracle is the memory store (its own search code in Python); the SQL stores answer the
same queries through the shape cache, and the patient index finds the same candidates on
SQLite as on memory (its blocking runs through the cache).
"""

from __future__ import annotations

from typing import Any

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.demo.duplicates import make_duplicates
from sokhoe.fhir.repository import FhirRepository
from sokhoe.mpi.identifiers import CCCD
from sokhoe.mpi.matching import Matcher
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.schema import resource
from sokhoe.store.sql.search import Compiler
from sokhoe.store.sql.search_cache import ID_STATEMENTS, IdStatements, template
from tests.conftest import BASE

PEOPLE = make_duplicates(60, 7, rate=0.3)

QUERIES: list[list[tuple[str, str]]] = [
    [("family", "nguyen")],
    [("family", "Nguyễn"), ("birthdate", "1980")],
    [("name", "tran"), ("birthdate", "ge1970"), ("birthdate", "lt1990-06")],
    [("given", "an"), ("gender", "male")],
    [("name:exact", "Lê")],
    [("identifier", f"{CCCD}|")],
    [("identifier", "0")],
    [("gender", "female,male"), ("birthdate", "sa1960,eb1940")],
    [("birthdate", "ne1985"), ("gender", "|female")],
    [("name:contains", "an")],  # not cached: LIKE built from the value
    [("birthdate", "ap1980")],  # not cached: arithmetic on the value
    [("_id", "x")],
]


def _plain(content: dict[str, Any] | None) -> dict[str, Any]:
    """The content without what each store stamps (``meta``)."""
    return {k: v for k, v in (content or {}).items() if k != "meta"}


def _load(store: FhirStore) -> FhirRepository:
    repo = platform_repository(store, BASE)
    for p in PEOPLE.patients:
        repo.update(p, "Patient", p["id"])
    return repo


@pytest.fixture(scope="module")
def oracle() -> FhirRepository:
    return _load(MemoryStore())


def _ids(repo: FhirRepository, params: list[tuple[str, str]], limit: int) -> list[str]:
    query = repo.parse_query("Patient", params)
    with repo.snapshot() as tx:
        return tx.search_ids(query, limit)


def test_cached_ids_equal_the_oracle_on_every_store(
    store: FhirStore, oracle: FhirRepository
) -> None:
    repo = _load(store)
    for limit in (3, 1000):
        for params in QUERIES:
            assert _ids(repo, params, limit) == _ids(oracle, params, limit), params
    for params in QUERIES:  # a page of whole resources (SQLite: ids by the cached statement)
        paged = [*params, ("_count", "4"), ("_total", "none")]
        mine = repo.search(repo.parse_query("Patient", paged))
        theirs = oracle.search(oracle.parse_query("Patient", paged))
        assert [(m.id, _plain(m.content)) for m in mine.matches] == [
            (m.id, _plain(m.content)) for m in theirs.matches
        ], params
        assert mine.total is None


def test_cached_statement_equals_the_fresh_one(tmp_path: Any) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    try:
        repo = _load(store)
        family = [
            n["family"] for p in PEOPLE.patients for n in p.get("name", [])[:1] if "family" in n
        ]
        cache = IdStatements()
        shapes = 0
        with store.begin() as tx:
            for value in sorted(set(family)):
                query = repo.parse_query("Patient", [("family", value), ("birthdate", "ge1900")])
                made = cache.statement(query, 25)
                assert made is not None
                cached = [r[-1] for r in tx.conn.execute(*made)]  # type: ignore[attr-defined]
                fresh = Compiler(None).ids(query).order_by(resource.c.id).limit(25)
                assert cached == [r[-1] for r in tx.conn.execute(fresh)]  # type: ignore[attr-defined]
                assert cached, value
                shapes += 1
        assert shapes > 3
        assert cache.misses == 1 and cache.hits == shapes - 1  # one statement, new values
    finally:
        store.close()


def test_shapes_that_are_not_cached() -> None:
    repo = platform_repository(MemoryStore(), BASE)
    for params in (
        [("name:contains", "an")],
        [("identifier:text", "an")],
        [("birthdate", "ap1980")],
        [("_id", "x")],
        [("family:missing", "true")],
        [("gender:not", "male")],
        [("general-practitioner:Practitioner.name", "an")],
        [("_has:Observation:patient:code", "x")],
    ):
        assert template(repo.parse_query("Patient", params)) is None, params
    system = repo.parse_query("Patient", [("identifier", "s|1")])
    none = repo.parse_query("Patient", [("identifier", "|1")])
    anyone = repo.parse_query("Patient", [("identifier", "1")])
    shapes = {template(q)[0] for q in (system, none, anyone)}  # type: ignore[index]
    assert len(shapes) == 3  # a system, explicitly none, any: three different statements


def test_confined_searches_never_use_the_cache(tmp_path: Any) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    try:
        repo = _load(store)
        facility = repo.for_caller(  # type: ignore[attr-defined]
            _facility_principal(), audit_reads=False
        )
        before = ID_STATEMENTS.hits + ID_STATEMENTS.misses
        query = facility.parse_query("Patient", [("family", "nguyen")])
        with facility.snapshot() as tx:
            assert tx.search_ids(query, 10, facility.access) == []  # no relationship: nothing
        assert ID_STATEMENTS.hits + ID_STATEMENTS.misses == before
        assert _ids(repo, [("family", "nguyen")], 10)  # the platform sees them
    finally:
        store.close()


def _facility_principal() -> Any:
    from sokhoe.access.principal import system_principal

    return system_principal("hl7:79001", "HIS", frozenset({"system/*.cruds"}), "79001")


def test_matcher_finds_the_same_candidates_on_sqlite_as_on_memory(
    tmp_path: Any, oracle: FhirRepository
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    try:
        sql = Matcher(_load(store))
        memory = Matcher(oracle)
        for extra in PEOPLE.extras:
            probe = {k: v for k, v in extra.items() if k != "id"}
            assert sql.candidates(probe) == memory.candidates(probe)
        assert any(memory.candidates(dict(e, id=None)) for e in PEOPLE.extras)
    finally:
        store.close()
