"""The harness of ``make bench-peers`` (sokhoe beside HAPI FHIR): the load order of the Synthea
bundles, the orientation of the ratios, the printed table, and one pass of ingest and every
query against a real ``sokhoe serve`` through the benchmark's own client.

HAPI itself is not started here: its Spring Boot application takes about a minute to build
from a warm Maven cache and two to three minutes to start on this machine, too long for the
suite; ``make bench-peers`` builds and starts it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import pytest

from sokhoe.bench.peer_client import Server, fetch_all
from sokhoe.bench.peer_servers import Sokhoe
from sokhoe.bench.peers import (
    QUERIES,
    Person,
    advantage,
    disagreements,
    ingest,
    limited,
    load_order,
    measure,
    rows,
    table,
)
from tests.conftest import SHARED_DATA

SYNTHEA = SHARED_DATA / "synthea"


def test_load_order_registries_one_by_one_then_conditional_then_self_contained() -> None:
    phases = load_order(SYNTHEA)
    names = [[p.name for p in phase] for phase in phases]
    assert [len(n) for n in names] == [1, 1, 40, 20]
    assert names[0][0].startswith("hospitalInformation")
    assert names[1][0].startswith("practitionerInformation")
    assert all(b"?identifier=" in p.read_bytes() for p in phases[2])
    assert not any(b"?identifier=" in p.read_bytes() for p in phases[3])
    everything = {p.name for p in SYNTHEA.glob("*.json")}
    assert {n for phase in names for n in phase} == everything


def test_limited_keeps_the_registries_and_the_first_patient_bundles_in_order() -> None:
    phases = load_order(SYNTHEA)
    small = limited(phases, 42)
    assert [len(p) for p in small] == [1, 1, 40, 2]
    assert small[3] == phases[3][:2]
    assert [len(p) for p in limited(phases, 3)] == [1, 1, 3]
    assert [len(p) for p in limited(phases, 0)] == [1, 1]


def test_ratio_above_one_means_sokhoe_ahead_for_rates_and_latencies() -> None:
    assert advantage("per_second", 300.0, 100.0) == 3.0  # more requests per second
    assert advantage("ingest", 50.0, 100.0) == 0.5
    assert advantage("p95", 5.0, 20.0) == 4.0  # a quarter of HAPI's latency
    assert advantage("p50", 40.0, 20.0) == 0.5
    assert advantage("bytes", 1500.0, 6000.0) == 4.0  # a quarter of HAPI's disk
    assert advantage("p99", 0.0, 20.0) is None  # a figure missing is not a ratio


def _result(scale: float) -> dict[str, Any]:
    figures = {"p50": 2.0 * scale, "p95": 4.0 * scale, "p99": 8.0 * scale}
    query = {**figures, "per_second": 100.0 / scale, "entries_by_file": {"a.json": 1}}
    return {
        "ingest": {"per_second": 1000.0 / scale},
        "bytes_per_resource": 3000.0 * scale,
        **{k: dict(query) for k in QUERIES},
    }


def test_table_has_a_column_per_server_and_a_ratio_per_sokhoe() -> None:
    results = {"sokhoe-sqlite": _result(1.0), "sokhoe-postgres": _result(4.0), "hapi": _result(2.0)}
    grid = rows(results)
    assert grid[0] == [
        "figure",
        "sokhoe-sqlite",
        "sokhoe-postgres",
        "hapi",
        "sokhoe-sqlite vs hapi",
        "sokhoe-postgres vs hapi",
    ]
    by_label = {row[0]: row for row in grid[1:]}
    assert by_label["ingest, resources/s"][1:] == ["1,000.0", "250.0", "500.0", "2.00", "0.50"]
    assert by_label["read p95 ms"][1:] == ["4.0", "16.0", "8.0", "2.00", "0.50"]
    assert by_label["disk, bytes per resource"][-2:] == ["2.00", "0.50"]  # smaller is better
    assert by_label["everything requests/s"][-2:] == ["2.00", "0.50"]
    assert len(grid) == 1 + 2 + 4 * len(QUERIES)
    printed = table(grid).splitlines()
    assert len({len(line) for line in printed}) == 1  # aligned columns
    assert printed[1].startswith("---")


def test_disagreements_name_the_query_where_answers_differ_in_size() -> None:
    ours, theirs = _result(1.0), _result(1.0)
    theirs["everything"] = {**theirs["everything"], "entries_by_file": {"a.json": 7}}
    notes = disagreements({"sokhoe-sqlite": ours, "hapi": theirs})
    assert notes == ["everything: sokhoe-sqlite and hapi differ for 1 people"]
    assert disagreements({"sokhoe-sqlite": ours, "hapi": _result(1.0)}) == []


@pytest.fixture(scope="module")
def sokhoe(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("peers")
    server = Sokhoe(f"sqlite:///{folder / 'peers.db'}", 1, folder, "sqlite")
    try:
        yield server
    finally:
        server.stop()


def _smallest_self_contained(count: int) -> list[Path]:
    plain = load_order(SYNTHEA)[-1]
    return sorted(plain, key=lambda p: p.stat().st_size)[:count]


def test_one_pass_over_sokhoe_serve_loads_and_answers_every_query(sokhoe: Sokhoe) -> None:
    bundles = _smallest_self_contained(2)
    server = Server("sokhoe", sokhoe.base, sokhoe.headers)
    report, people = ingest(server, [bundles], clients=2)
    assert report["failed"] == []
    sent = sum(len(orjson.loads(p.read_bytes())["entry"]) for p in bundles)
    assert report["resources"] == sent
    assert report["per_second"] > 0
    assert sorted(p.file for p in people) == sorted(p.name for p in bundles)
    for person in people:
        raw = orjson.loads((SYNTHEA / person.file).read_bytes())
        patient = next(
            e["resource"] for e in raw["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        assert person.family == patient["name"][0]["family"]
        assert server.get_json(f"Patient/{person.id}")["name"] == patient["name"]
    args = argparse.Namespace(clients=2, page=20)
    found = {k: measure(server, people, k, 4, args.clients, args.page) for k in QUERIES}
    for kind in ("read", "identifier", "name"):
        assert set(found[kind]["entries_by_file"].values()) == {1}, kind
        assert found[kind]["n"] == 4
        assert found[kind]["p50"] > 0
    # $everything follows the next links: more entries than one page holds
    everything = found["everything"]["entries_by_file"]
    assert all(n > 20 for n in everything.values()), everything
    for person in people:
        entries, pages = fetch_all(server, f"Patient/{person.id}/$everything?_count=20")
        assert entries == everything[person.file]
        assert pages == -(-entries // 20)
    # the patient's most frequent Observation code: every one of them, over every page
    for person in people:
        raw = orjson.loads((SYNTHEA / person.file).read_bytes())
        codings = [
            e["resource"]["code"]["coding"][0]
            for e in raw["entry"]
            if e["resource"]["resourceType"] == "Observation"
        ]
        expected = sum(1 for c in codings if f"{c['system']}|{c['code']}" == person.code)
        assert expected >= 2
        assert found["observations"]["entries_by_file"][person.file] == expected


def test_the_benchmarks_client_is_refused_without_sokhoes_token(sokhoe: Sokhoe) -> None:
    """sokhoe is measured with its door shut: the same request without the token is 401."""
    status, _ = Server("anonymous", sokhoe.base).request("GET", "Patient?_count=1")
    assert status == 401
    status, _ = Server("sokhoe", sokhoe.base, sokhoe.headers).request("GET", "Patient?_count=1")
    assert status == 200


def test_person_of_a_bundle_response_reads_the_patients_location() -> None:
    from sokhoe.bench.peers import _person_of

    path = _smallest_self_contained(1)[0]
    bundle = orjson.loads(path.read_bytes())
    response = {
        "entry": [
            {"response": {"location": f"{e['request']['url']}/{n}/_history/1"}}
            for n, e in enumerate(bundle["entry"])
        ]
    }
    person = _person_of(path, bundle, response)
    assert isinstance(person, Person)
    index = next(
        n for n, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Patient"
    )
    assert person.id == str(index)
    assert person.identifier in path.name
