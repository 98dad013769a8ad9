"""``sokhoe bench`` on a tiny population: every figure the issue asks for is there, and the
timed queries answer what they are meant to (a fast query that misses the person proves
nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sokhoe.bench.runner import render, rerun_queries, run_bench


def test_the_bench_times_every_query_and_they_find_the_person(tmp_path: Path) -> None:
    results = run_bench(40, 3, tmp_path / "work", tmp_path / "results", ndjson=False)
    assert results["resources"] > 40 * 5
    assert results["ingest_bundles"]["resources_per_s"] > 0
    latencies = results["latency_ms"]
    for name in [
        "read Patient",
        "search identifier (CCCD)",
        "search name, accent-insensitive",
        "search birthdate month range",
        "$everything (largest patients)",
        "$match (name, birth date, sex, address)",
        "search name, confined to a facility",
    ]:
        assert 0 < latencies[name]["p50"] <= latencies[name]["p99"], name
    answers = results["answers"]
    assert answers["confined"]["asked"] >= 30
    assert answers["confined"]["found the person"] == answers["confined"]["asked"]
    assert answers["$match"]["asked"] == 40
    assert answers["$match"]["found the person"] >= 36  # twins and namesakes may outrank
    assert "found the person" in render(results)
    assert list((tmp_path / "results").glob("*-40.json"))

    # the queries again on what the run left, by the code of now: the same people asked
    again = rerun_queries(40, 3, tmp_path / "work", tmp_path / "results")
    assert again["resources"] == results["resources"]
    assert again["latency_ms"].keys() == latencies.keys()
    assert again["answers"] == answers
    assert "ingest" not in render(again) and "found the person" in render(again)
    assert list((tmp_path / "results").glob("*-40-queries.json"))
    with pytest.raises(ValueError, match="does not hold a run of 400 people"):
        rerun_queries(400, 3, tmp_path / "work", tmp_path / "results")
    with pytest.raises(FileNotFoundError):
        rerun_queries(40, 3, tmp_path / "elsewhere", tmp_path / "results")
