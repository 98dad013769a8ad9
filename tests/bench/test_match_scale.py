"""``python -m sokhoe.bench.match_scale``: only Patients (and their facilities) are loaded, and
``$match`` finds the people typed again without an identifier."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sokhoe.bench.match_scale import run


def test_match_is_timed_on_the_patients_alone(tmp_path: Path) -> None:
    result = run(60, 2, tmp_path / "work")
    assert result["asked"] == 60 and result["found first"] >= 55  # twins may outrank
    assert 0 < result["$match"]["p50"] <= result["$match"]["p99"]
    con = sqlite3.connect(tmp_path / "work" / "patients.db")
    try:
        types = dict(con.execute("SELECT resource_type, count(*) FROM resource GROUP BY 1"))
    finally:
        con.close()
    assert types["Patient"] == 60
    assert not {"Encounter", "Observation", "Condition"} & types.keys()
