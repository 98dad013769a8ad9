"""The health book's bench runs end to end on a tiny world (no timing is asserted: this proves
the bench works, the numbers come from ``python -m sokhoe.bench.portal``)."""

from __future__ import annotations

import json

import pytest

from sokhoe.bench.portal import main


def test_the_portal_bench_runs_on_a_tiny_world(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--visits", "3", "--requests", "3", "--warmup", "1", "--labs", "1"])
    report = json.loads(capsys.readouterr().out)
    assert report["visits"] == 3 and report["resources"] > report["resources_read_by_the_book"]
    for name in ("book", "book_service", "visit", "record_json", "book_pdf"):
        measured = report["latency_ms"][name]
        assert 0 < measured["p50"] <= measured["p95"] <= measured["max"], name
    assert {"target_p95", "met", "p50_over_sql_floor"} <= set(report["latency_ms"]["book"])
    assert report["sizes"]["book_pdf_kb"] > 1 and report["sizes"]["record_json_kb"] > 1
    urls = [f["url"] for f in report["first_load"]["files"]]
    assert urls == ["/portal/book", "/portal/static/portal.css"]
    assert report["floor"]["sql_record_rows_ms"]["rows"] == report["resources"]
