"""The clinic pages' bench runs end to end on a tiny world (no timing is asserted: this proves
the bench works, the numbers come from ``make bench``)."""

from __future__ import annotations

import json

import pytest

from sokhoe.bench.clinic_pages import main


def test_the_clinic_pages_bench_runs_on_a_tiny_world(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--visits", "5", "--requests", "3", "--warmup", "1", "--labs", "1"])
    report = json.loads(capsys.readouterr().out)
    assert report["visits"] == 5 and report["requests"] == 3
    assert report["chart_visits_shown"] == 6  # the five finished visits and today's
    for name in ("chart", "icd10_typeahead", "draft_autosave", "visit_page"):
        measured = report["latency_ms"][name]
        assert measured["n"] == 3 and 0 < measured["p50"] <= measured["p95"] <= measured["max"]
    assert {"target_p95", "met"} <= set(report["latency_ms"]["chart"])
    for page in ("chart", "visit"):
        load = report["first_load"][page]
        urls = [f["url"] for f in load["files"]]
        assert "/static/vendor/htmx.min.js" in urls and "/clinic/static/clinic.css" in urls
        assert load["total_bytes"] == load["body_bytes"] + load["header_bytes"] > 0
    assert report["floor"]["sql_chart_rows_ms"]["rows"] > 5
    assert report["floor"]["http_trivial_route_ms"]["n"] == 3
    assert report["machine"]["nproc"] >= 1
