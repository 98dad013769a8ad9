"""Of several criteria on index rows, the one naming the fewest resources drives the SQLite
search and the others are probed per candidate (``store/sql/search.py``, ``Compiler.ids``):
``name=nguyen`` names a third of the country, and listing it whole before intersecting it
with a birth date made ``$match`` ten times slower at 100,000 people than at 20,000.

Whichever criterion drives, the answer must be the one every criterion gives on its own; the
store must pick the rare one; and the probe must go through the per-resource index, not scan
the searched values again for every candidate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.fhir.repository import FhirRepository
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.repository import SqlSession
from sokhoe.store.sql.schema import resource
from sokhoe.store.sql.search import Compiler
from tests.conftest import BASE
from tests.store.test_store_contract import StepClock, item, write

GIVEN = ["An", "Bình", "Chi", "Dũng", "Hà", "Lan", "Minh", "Nam", "Tâm", "Yến"]


@pytest.fixture
def town(tmp_path: Path) -> Iterator[tuple[SqlStore, FhirRepository]]:
    """Forty Nguyễns born in 1990 (one of them Khuê, on 11 April), ten Trầns born in 1985."""
    store = SqlStore(f"sqlite:///{tmp_path / 'town.db'}")
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    people = [
        {
            "resourceType": "Patient",
            "id": f"n{i}",
            "name": [{"family": "Nguyễn", "given": [GIVEN[i % 10]]}],
            "birthDate": f"1990-{1 + i % 12:02d}-{1 + i % 28:02d}",
        }
        for i in range(39)
    ]
    people.append(
        {
            "resourceType": "Patient",
            "id": "khue",
            "name": [{"family": "Nguyễn", "given": ["Khuê"]}],
            "birthDate": "1990-04-11",
        }
    )
    people += [
        {
            "resourceType": "Patient",
            "id": f"t{i}",
            "name": [{"family": "Trần", "given": [GIVEN[i]]}],
            "birthDate": f"1985-06-{10 + i:02d}",
        }
        for i in range(10)
    ]
    write(store, *(item(repo, p, 1) for p in people))
    yield store, repo
    store.close()


CASES = [
    # (criteria, the criterion that must drive, the answer)
    ([("name", "nguyen"), ("birthdate", "1990-04-11")], 1, ["khue"]),
    ([("given", "khue"), ("birthdate", "1990")], 0, ["khue"]),
    ([("birthdate", "1985"), ("name", "tran"), ("given", "lan")], 2, ["t5"]),
    # a two-sided range is one unit, after the criteria of other parameters
    (
        [("birthdate", "ge1990-01-01"), ("birthdate", "le1990-12-31"), ("given", "khue")],
        0,
        ["khue"],
    ),
    ([("family", "nguyen"), ("given", "an,binh"), ("birthdate", "ge1990-01-05")], 1, None),
]


@pytest.mark.parametrize(("params", "driver", "expected"), CASES)
def test_the_rarest_criterion_drives_and_every_driver_answers_alike(
    town: tuple[SqlStore, FhirRepository],
    params: list[tuple[str, str]],
    driver: int,
    expected: list[str] | None,
) -> None:
    store, repo = town
    query = repo.parse_query("Patient", params)
    with store.begin() as tx:
        assert isinstance(tx, SqlSession)
        assert tx._driver(query, None) == driver
        units = len(Compiler().units(query))
        answers = {
            d: sorted(row[0] for row in tx.conn.execute(Compiler().ids(query, d)))
            for d in (None, *range(units))
        }
    # each criterion on its own, intersected in Python: what the answer must be
    alone = [
        {m.id for m in repo.search(repo.parse_query("Patient", [p, ("_count", "100")])).matches}
        for p in params
    ]
    truth = sorted(set.intersection(*alone))
    assert truth, params  # the case finds someone, so an empty answer would be caught
    if expected is not None:
        assert truth == expected
    assert all(found == truth for found in answers.values()), answers
    assert sorted(m.id for m in repo.search(query).matches) == truth


def test_the_other_criteria_are_probed_through_the_per_resource_index(
    town: tuple[SqlStore, FhirRepository],
) -> None:
    store, repo = town
    query = repo.parse_query("Patient", [("name", "nguyen"), ("birthdate", "1990-04-11")])
    stmt = Compiler().ids(query, 1).order_by(resource.c.id)
    with store.begin() as tx:
        assert isinstance(tx, SqlSession)
        sql = str(stmt.compile(tx.conn, compile_kwargs={"literal_binds": True}))
        plan = [row[-1] for row in tx.conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("ix_sp_date_0" in step for step in plan), plan  # the birth date drives
    assert any("ix_sp_string_resource" in step for step in plan), plan  # the name is probed
    assert not any("ix_sp_string_0" in step for step in plan), plan  # never listed whole


def test_one_criterion_has_no_driver_to_choose(town: tuple[SqlStore, FhirRepository]) -> None:
    store, repo = town
    with store.begin() as tx:
        assert isinstance(tx, SqlSession)
        for params in ([("name", "nguyen")], [("birthdate", "ge1990"), ("birthdate", "le1991")]):
            assert tx._driver(repo.parse_query("Patient", params), None) is None


def test_when_every_criterion_passes_the_cap_they_are_counted_further(
    town: tuple[SqlStore, FhirRepository], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a million people a birth month and a given name both pass the first count: the
    first criterion then drove, a given name's 8,577 rows instead of a month's 1,349."""
    store, repo = town
    query = repo.parse_query(
        "Patient", [("family", "nguyen"), ("birthdate", "1990"), ("given", "an,binh")]
    )  # 40, 40 and 10 resources
    monkeypatch.setattr("sokhoe.store.sql.search.PROBE_ROWS", 5)
    monkeypatch.setattr("sokhoe.store.sql.search.WIDE_PROBE_ROWS", 100)
    with store.begin() as tx:
        assert isinstance(tx, SqlSession)
        assert tx._driver(query, None) == 2
        monkeypatch.setattr("sokhoe.store.sql.search.WIDE_PROBE_ROWS", 5)
        assert tx._driver(query, None) == 0  # all tied again: the first drives
    found = sorted(m.id for m in repo.search(query).matches)
    assert found == ["n0", "n1", "n10", "n11", "n20", "n21", "n30", "n31"]
