"""The prescribing bench runs end to end on a tiny world (no timing is asserted: this proves the
bench works; the numbers come from ``make bench``)."""

from __future__ import annotations

from sokhoe.bench.prescribing import run


def test_the_prescribing_bench_runs_on_a_tiny_world() -> None:
    report = run(patients=3, past=4, pharmacy_count=2)
    assert report["prescribe_ms"]["n"] == 3 and report["floor_door_write_ms"]["n"] == 3
    assert report["findings_per_prescription"] > 0  # the checks ran against the history
    dispensing = report["dispense"]
    assert dispensing["pharmacies"] == 2 and dispensing["dispenses"] == 3
    assert 0 < dispensing["latency_ms"]["p50"] <= dispensing["latency_ms"]["p95"]
