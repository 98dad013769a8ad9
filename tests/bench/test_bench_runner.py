"""``sokhoe bench`` on a tiny population: every figure the issue asks for is there, and the
timed queries answer what they are meant to (a fast query that misses the person proves
nothing)."""

from __future__ import annotations

from pathlib import Path

from sokhoe.bench.runner import render, run_bench


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
