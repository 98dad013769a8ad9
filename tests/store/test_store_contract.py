"""The FhirStore contract, one body for every backend (memory, SQLite, PostgreSQL; STYLE §9).

Versions, history order, lost updates, rollback and search are checked directly on the store,
with :class:`FhirRepository` only to build index rows and parse queries, so a backend that
drifts from the others fails here before it fails in the API tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.errors import Conflict
from sokhoe.fhir.repository import FhirRepository
from sokhoe.store import FhirStore, StoredResource, WriteItem
from tests.conftest import BASE

T0 = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)


class StepClock:
    """Each call is one minute after the previous: history order is then known."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def repo(store: FhirStore) -> FhirRepository:
    return platform_repository(store, f"{BASE}/fhir", clock=StepClock())


def patient(rid: str, family: str, given: str = "An", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": rid,
        "name": [{"family": family, "given": [given]}],
        **extra,
    }


def observation(rid: str, subject: str, code: str = "8867-4") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
    }


def item(repo: FhirRepository, resource: dict[str, Any], version: int, at: int = 0) -> WriteItem:
    """Version ``version`` of ``resource``, written ``at`` minutes after T0."""
    method = "POST" if version == 1 else "PUT"
    previous = None if version == 1 else version - 1
    when = T0 + timedelta(minutes=at)
    return repo.prepare(resource, resource["id"], version, method, previous, when)


def write(store: FhirStore, *items: WriteItem) -> None:
    with store.begin(write=True) as tx:
        tx.write(items)


def ids(page: list[StoredResource]) -> list[str]:
    return [r.id for r in page]


def search_ids(repo: FhirRepository, rtype: str, *params: tuple[str, str]) -> list[str]:
    return ids(repo.search(repo.parse_query(rtype, list(params))).matches)


# -- versions and history ---------------------------------------------------------------------


def test_write_read_vread_and_history_order(store: FhirStore, repo: FhirRepository) -> None:
    p1 = patient("p1", "Nguyễn")
    write(store, item(repo, p1, 1, at=1), item(repo, patient("p2", "Trần"), 1, at=1))
    write(store, item(repo, patient("p1", "Lê"), 2, at=2))
    with store.begin(write=True) as tx:
        current = tx.read("Patient", "p1")
        assert current is not None
        tx.write([repo.deletion(current, T0 + timedelta(minutes=3))])

    with store.begin() as tx:
        gone = tx.read("Patient", "p1")
        assert gone is not None and gone.deleted and gone.content is None
        assert gone.version_id == 3
        v1, v2 = tx.vread("Patient", "p1", 1), tx.vread("Patient", "p1", 2)
        assert v1 is not None and v1.content is not None
        assert v1.content["name"][0]["family"] == "Nguyễn"
        assert v1.last_updated == T0 + timedelta(minutes=1)
        assert v2 is not None and v2.content is not None
        assert v2.content["name"][0]["family"] == "Lê"
        assert tx.vread("Patient", "p1", 4) is None
        assert ids(tx.read_many([("Patient", "p1"), ("Patient", "p2")])) == ["p2"]

        own, total = tx.history("Patient", "p1", None, 10, 0)
        assert [(v.version_id, v.method) for v in own] == [(3, "DELETE"), (2, "PUT"), (1, "POST")]
        assert total == 3
        every, total = tx.history(None, None, None, 10, 0)
        assert [(v.id, v.version_id) for v in every] == [
            ("p1", 3),
            ("p1", 2),
            ("p1", 1),  # same instant as p2/1: ordered by type, then id
            ("p2", 1),
        ]
        assert total == 4
        recent, total = tx.history("Patient", None, T0 + timedelta(minutes=2), 10, 0)
        assert [(v.id, v.version_id) for v in recent] == [("p1", 3), ("p1", 2)]
        assert total == 2
        page, total = tx.history(None, None, None, 2, 1)
        assert [(v.id, v.version_id) for v in page] == [("p1", 2), ("p1", 1)]
        assert total == 4


def test_current_versions_include_deleted_and_skip_unknown(
    store: FhirStore, repo: FhirRepository
) -> None:
    write(store, item(repo, patient("a", "Lý"), 1), item(repo, patient("b", "Hồ"), 1))
    write(store, item(repo, patient("a", "Lý", "Bình"), 2))
    repo.delete("Patient", "b")
    with store.begin(write=True) as tx:
        assert tx.current_versions("Patient", ["a", "b", "zz", "a"]) == {"a": 2, "b": 2}
        assert tx.current_versions("Observation", ["a"]) == {}


def test_stored_content_cannot_be_changed_by_callers(
    store: FhirStore, repo: FhirRepository
) -> None:
    write(store, item(repo, patient("a", "Lý"), 1))
    with store.begin() as tx:
        got = tx.read("Patient", "a")
        assert got is not None and got.content is not None
        got.content["name"][0]["family"] = "changed"
    again = repo.read("Patient", "a").content
    assert again is not None and again["name"][0]["family"] == "Lý"


# -- concurrency and transactions ---------------------------------------------------------------


def test_lost_update_is_detected(store: FhirStore, repo: FhirRepository) -> None:
    write(store, item(repo, patient("p", "Phạm"), 1))
    write(store, item(repo, patient("p", "Phạm", "Bình"), 2))
    with pytest.raises(Conflict):  # a second writer that also read version 1
        write(store, item(repo, patient("p", "Phạm", "Châu"), 2))
    with pytest.raises(Conflict):  # creating what already exists
        write(store, item(repo, patient("p", "Phạm", "Dung"), 1))
    got = repo.read("Patient", "p")
    assert got.version_id == 2
    assert got.content is not None and got.content["name"][0]["given"] == ["Bình"]
    assert search_ids(repo, "Patient", ("given", "chau")) == []


def test_concurrent_writers_of_one_version_one_wins(store: FhirStore, repo: FhirRepository) -> None:
    write(store, item(repo, patient("p", "Võ"), 1))
    start = threading.Barrier(2)

    def writer(given: str) -> Callable[[], str]:
        def run() -> str:
            start.wait(timeout=30)
            try:
                write(store, item(repo, patient("p", "Võ", given), 2))
            except Conflict:
                return "conflict"
            return "ok"

        return run

    with ThreadPoolExecutor(2) as pool:
        results = sorted(f.result(timeout=120) for f in [pool.submit(writer(g)) for g in "XY"])
    assert results == ["conflict", "ok"]
    with store.begin() as tx:
        assert tx.current_versions("Patient", ["p"]) == {"p": 2}
        assert tx.history("Patient", "p", None, 10, 0)[1] == 2


def test_exception_in_write_transaction_rolls_back_everything(
    store: FhirStore, repo: FhirRepository
) -> None:
    write(store, item(repo, patient("p1", "Đặng"), 1))
    with pytest.raises(RuntimeError, match="abort"), store.begin(write=True) as tx:
        tx.write(
            [
                item(repo, patient("p1", "Bùi"), 2),
                item(repo, patient("p2", "Bùi", "Chi"), 1),
                item(repo, observation("o1", "p2"), 1),
            ]
        )
        inside = tx.read("Patient", "p1")  # the transaction sees its own writes
        assert inside is not None and inside.version_id == 2
        assert tx.search(repo.parse_query("Patient", [("family", "bui")])).total == 2
        raise RuntimeError("abort")

    with store.begin() as tx:
        assert tx.current_versions("Patient", ["p1", "p2"]) == {"p1": 1}
        assert tx.read("Observation", "o1") is None
        assert tx.vread("Patient", "p1", 2) is None
        assert tx.history(None, None, None, 10, 0)[1] == 1
        assert tx.compartment(["p2"], None, None, 10, 0) == ([], 0)
    assert search_ids(repo, "Patient", ("family", "bui")) == []
    assert search_ids(repo, "Patient", ("family", "dang")) == ["p1"]
    assert search_ids(repo, "Observation", ("code", "8867-4")) == []
    assert [r.id for r in store.iter_all()] == ["p1"]
    write(store, item(repo, patient("p1", "Bùi"), 2))  # version 2 is free again


# -- search ----------------------------------------------------------------------------------


@pytest.fixture
def people(store: FhirStore, repo: FhirRepository) -> None:
    nss = "https://sokhoe.vn/ns/bhyt"
    write(
        store,
        item(
            repo,
            patient(
                "an",
                "Nguyễn",
                "Văn An",
                gender="male",
                birthDate="1990-05-01",
                identifier=[{"system": nss, "value": "HS4010"}],
            ),
            1,
        ),
        item(
            repo, patient("binh", "Nguyễn", "Thị Bình", gender="female", birthDate="1990-12-31"), 1
        ),
        item(repo, patient("chi", "Trần", "Chi", gender="female", birthDate="1985"), 1),
        item(repo, patient("dung", "Ngô", "Dũng"), 1),
    )


@pytest.mark.usefixtures("people")
def test_search_string_token_date(repo: FhirRepository) -> None:
    assert sorted(search_ids(repo, "Patient", ("family", "nguyen"))) == ["an", "binh"]
    assert search_ids(repo, "Patient", ("name", "NGUY")) == ["an", "binh"]  # prefix, folded
    assert search_ids(repo, "Patient", ("given", "dung")) == ["dung"]
    assert search_ids(repo, "Patient", ("family:exact", "Nguyen")) == []
    assert search_ids(repo, "Patient", ("family:exact", "Nguyễn")) == ["an", "binh"]
    assert search_ids(repo, "Patient", ("name:contains", "inh")) == ["binh"]

    assert search_ids(repo, "Patient", ("gender", "female")) == ["binh", "chi"]
    assert search_ids(repo, "Patient", ("gender:not", "female")) == ["an", "dung"]
    assert search_ids(repo, "Patient", ("gender:missing", "true")) == ["dung"]
    ident = ("identifier", "https://sokhoe.vn/ns/bhyt|HS4010")
    assert search_ids(repo, "Patient", ident) == ["an"]
    assert search_ids(repo, "Patient", ("identifier", "other|HS4010")) == []
    assert search_ids(repo, "Patient", ("identifier", "|HS4010")) == []
    assert search_ids(repo, "Patient", ("_id", "chi,dung")) == ["chi", "dung"]

    assert search_ids(repo, "Patient", ("birthdate", "1990")) == ["an", "binh"]
    assert search_ids(repo, "Patient", ("birthdate", "1990-05")) == ["an"]
    assert search_ids(repo, "Patient", ("birthdate", "lt1990-06-01")) == ["an", "chi"]
    assert search_ids(repo, "Patient", ("birthdate", "ge1990-06")) == ["binh"]
    assert search_ids(repo, "Patient", ("birthdate", "1985-06-01")) == []  # 1985 is wider
    assert search_ids(repo, "Patient", ("birthdate", "ap1985-06-01")) == ["chi"]
    both = [("gender", "female"), ("birthdate", "1990")]  # criteria are ANDed
    assert search_ids(repo, "Patient", *both) == ["binh"]


@pytest.mark.usefixtures("people")
def test_search_sort_paging_total(repo: FhirRepository) -> None:
    q = [("_sort", "-birthdate"), ("_count", "2")]
    first = repo.search(repo.parse_query("Patient", q))
    assert ids(first.matches) == ["binh", "an"] and first.total == 4
    second = repo.search(repo.parse_query("Patient", [*q, ("_offset", "2")]))
    assert ids(second.matches) == ["chi", "dung"]  # no birth date: last either way
    asc = [("_sort", "birthdate")]
    assert search_ids(repo, "Patient", *asc) == ["chi", "an", "binh", "dung"]
    counted = repo.search(repo.parse_query("Patient", [("_summary", "count")]))
    assert counted.matches == [] and counted.total == 4
    none = repo.search(repo.parse_query("Patient", [("_total", "none"), ("_count", "1")]))
    assert none.total is None and len(none.matches) == 1


@pytest.mark.usefixtures("people")
def test_search_reference_chain_has_and_includes(store: FhirStore, repo: FhirRepository) -> None:
    write(
        store,
        item(repo, observation("o1", "an"), 1),
        item(repo, observation("o2", "chi", code="29463-7"), 1),
    )
    assert search_ids(repo, "Observation", ("subject", "Patient/an")) == ["o1"]
    assert search_ids(repo, "Observation", ("patient", "chi")) == ["o2"]
    assert search_ids(repo, "Observation", ("subject:Patient.gender", "female")) == ["o2"]
    assert search_ids(repo, "Patient", ("_has:Observation:subject:code", "29463-7")) == ["chi"]
    page = repo.search(
        repo.parse_query("Observation", [("code", "8867-4"), ("_include", "Observation:subject")])
    )
    assert ids(page.matches) == ["o1"] and ids(page.included) == ["an"]
    page = repo.search(
        repo.parse_query("Patient", [("_id", "chi"), ("_revinclude", "Observation:subject")])
    )
    assert ids(page.matches) == ["chi"] and ids(page.included) == ["o2"]


def test_compartment_pages_by_type_then_id(store: FhirStore, repo: FhirRepository) -> None:
    write(
        store,
        item(repo, patient("p", "Hoàng"), 1, at=1),
        item(repo, patient("q", "Dương"), 1, at=1),
        *[item(repo, observation(f"o{i}", "p"), 1, at=i) for i in range(5)],
        item(repo, observation("other", "q"), 1, at=1),
    )
    repo.delete("Observation", "o2")
    seen: list[tuple[str, str]] = []
    with store.begin() as tx:
        for offset in range(0, 10, 2):
            page, total = tx.compartment(["p"], None, None, 2, offset)
            assert total == 5
            seen += [(r.resource_type, r.id) for r in page]
        only_obs, total = tx.compartment(["p"], ["Observation"], None, 10, 0)
        late, late_total = tx.compartment(["p"], None, T0 + timedelta(minutes=3), 10, 0)
        both = tx.compartment(["p", "q"], ["Patient"], None, 10, 0)
    assert seen == [("Observation", f"o{i}") for i in (0, 1, 3, 4)] + [("Patient", "p")]
    assert ids(only_obs) == ["o0", "o1", "o3", "o4"] and total == 4
    assert ids(late) == ["o3", "o4"] and late_total == 2
    assert ids(both[0]) == ["p", "q"] and both[1] == 2


def test_a_forked_memory_store_goes_its_own_way() -> None:
    """``MemoryStore.fork`` shares committed state without copying: a write to either side
    is not seen by the other."""
    from sokhoe.store import MemoryStore

    base = MemoryStore()
    repo = platform_repository(base, f"{BASE}/fhir")
    write(base, item(repo, patient("p1", "Nguyễn"), 1))
    fork = base.fork()
    write(fork, item(repo, patient("p2", "Trần"), 1))
    write(base, item(repo, patient("p1", "Lê"), 2, at=1))
    with base.begin() as tx:
        assert tx.read("Patient", "p2") is None
        assert (tx.read("Patient", "p1").content or {})["name"][0]["family"] == "Lê"  # type: ignore[union-attr]
    with fork.begin() as tx:
        assert tx.read("Patient", "p2") is not None
        assert (tx.read("Patient", "p1").content or {})["name"][0]["family"] == "Nguyễn"  # type: ignore[union-attr]
