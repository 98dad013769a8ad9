"""The one-line summary of each indicator family on the dashboard's index page."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from sokhoe.warehouse.indicators import SUPPRESSED, Result

_HEADLINE: Final = {"coverage": "ehr_coverage", "emr": "emr_deployment"}
"""Families whose summary comes from one indicator: adding the by-commune coverage or the
visits per facility to the headline would count the same people twice."""


def _total(rows: list[dict[str, Any]], column: str) -> float:
    return float(sum(r[column] for r in rows if r.get(column) not in (None, SUPPRESSED)))


def summary(family: str, results: list[Result]) -> str:
    """One line per family for the index page, added up from the **published** cells only
    (and saying so): adding the hidden cells back into a total would let a reader subtract the
    published ones and recover them, so every figure here can be recomputed from the pages."""
    if family in _HEADLINE:  # one indicator speaks for the family (others break it down)
        results = [r for r in results if r.indicator.name == _HEADLINE[family]]
    rows = [r for result in results for r in result.rows if not r.get("suppressed")]
    if not results:
        return "Not available: the warehouse needs a rebuild (see the family's page)."
    if not rows:
        return "No data for these filters (or every cell is suppressed)."
    if family == "coverage":
        counted = [r for r in rows if r.get("population")]
        if not counted:
            have = _total(rows, "people_with_record")
            return f"{have:,.0f} people with a record shown; no population table loaded."
        have, population = _total(counted, "people_with_record"), _total(counted, "population")
        return (
            f"{100 * have / population:.1f}% of residents have a record "
            f"(the {len(counted)} provinces whose counts are shown)."
        )
    if family == "emr":
        live, facilities = _total(rows, "emr_live"), _total(rows, "facilities")
        share = 100 * live / facilities if facilities else 0.0
        return f"EMR live in {live:,.0f} of {facilities:,.0f} facilities ({share:.1f}%)."
    if family == "diseases":
        chapters: Counter[str] = Counter()
        for r in rows:
            if r.get("chapter") and r.get("people"):
                chapters[str(r["chapter"])] += int(r["people"])
        top = chapters.most_common(1)
        return f"Most frequent ICD-10 chapter: {top[0][0]}." if top else "No diagnoses shown."
    if family == "ncd":
        parts = []
        for disease in ("hypertension", "diabetes"):
            mine = [r for r in rows if r.get("disease") == disease]
            people = _total(mine, "people")
            if people:
                parts.append(f"{disease} {100 * _total(mine, 'controlled') / people:.0f}%")
        shown = "Controlled, in the provinces shown: "
        return shown + ", ".join(parts) + "." if parts else "No patients shown."
    if family == "repeats":
        tests, cost = _total(rows, "repeated_tests"), _total(rows, "cost_vnd")
        return (
            f"{tests:,.0f} tests repeated elsewhere within 30 days, {cost:,.0f} VND "
            "(in the cells shown)."
        )
    if family == "surveillance":
        alerts = sum(1 for r in rows if r.get("alarm"))
        cases = _total(rows, "people")
        return f"{cases:,.0f} notified cases shown; {alerts} outbreak alert(s) raised."
    if family == "immunisation":
        children, given = _total(rows, "children"), _total(rows, "vaccinated")
        if not children:
            return ""
        return f"{100 * given / children:.1f}% of scheduled vaccines given (in the cells shown)."
    return ""


__all__ = ["summary"]
