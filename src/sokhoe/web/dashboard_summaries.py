"""The one-line summary of each indicator family on the dashboard's index page, in the reader's
language."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from sokhoe.warehouse.indicators import SUPPRESSED, Result
from sokhoe.web.dashboard_labels import gettext, label
from sokhoe.web.i18n import format_number

_HEADLINE: Final = {"coverage": "ehr_coverage", "emr": "emr_deployment"}
"""Families whose summary comes from one indicator: adding the by-commune coverage or the
visits per facility to the headline would count the same people twice."""


def _total(rows: list[dict[str, Any]], column: str) -> float:
    return float(sum(r[column] for r in rows if r.get(column) not in (None, SUPPRESSED)))


def summary(family: str, results: list[Result], lang: str) -> str:
    """One line per family for the index page, added up from the **published** cells only
    (and saying so): adding the hidden cells back into a total would let a reader subtract the
    published ones and recover them, so every figure here can be recomputed from the pages."""
    if family in _HEADLINE:  # one indicator speaks for the family (others break it down)
        results = [r for r in results if r.indicator.name == _HEADLINE[family]]
    rows = [r for result in results for r in result.rows if not r.get("suppressed")]

    def number(value: float, decimals: int = 0) -> str:
        return format_number(value, lang, decimals)

    if not results:
        return gettext(
            lang, "Not available: the warehouse needs a rebuild (see the family's page)."
        )
    if not rows:
        return gettext(lang, "No data for these filters (or every cell is suppressed).")
    if family == "coverage":
        counted = [r for r in rows if r.get("population")]
        if not counted:
            have = _total(rows, "people_with_record")
            return gettext(
                lang,
                "%(people)s people with a record shown; no population table loaded.",
                people=number(have),
            )
        have, population = _total(counted, "people_with_record"), _total(counted, "population")
        return gettext(
            lang,
            "%(share)s%% of residents have a record "
            "(the %(provinces)s provinces whose counts are shown).",
            share=number(100 * have / population, 1),
            provinces=len(counted),
        )
    if family == "emr":
        live, facilities = _total(rows, "emr_live"), _total(rows, "facilities")
        share = 100 * live / facilities if facilities else 0.0
        return gettext(
            lang,
            "EMR live in %(live)s of %(facilities)s facilities (%(share)s%%).",
            live=number(live),
            facilities=number(facilities),
            share=number(share, 1),
        )
    if family == "diseases":
        chapters: Counter[str] = Counter()
        for r in rows:
            if r.get("chapter") and r.get("people"):
                chapters[str(r["chapter"])] += int(r["people"])
        top = chapters.most_common(1)
        if not top:
            return gettext(lang, "No diagnoses shown.")
        return gettext(lang, "Most frequent ICD-10 chapter: %(chapter)s.", chapter=top[0][0])
    if family == "ncd":
        parts = []
        for disease in ("hypertension", "diabetes"):
            mine = [r for r in rows if r.get("disease") == disease]
            people = _total(mine, "people")
            if people:
                controlled = number(100 * _total(mine, "controlled") / people)
                parts.append(f"{label(lang, 'disease', disease)} {controlled}%")
        if not parts:
            return gettext(lang, "No patients shown.")
        return gettext(
            lang, "Controlled, in the provinces shown: %(shares)s.", shares=", ".join(parts)
        )
    if family == "repeats":
        tests, cost = _total(rows, "repeated_tests"), _total(rows, "cost_vnd")
        return gettext(
            lang,
            "%(tests)s tests repeated elsewhere within 30 days, %(cost)s VND (in the cells shown).",
            tests=number(tests),
            cost=number(cost),
        )
    if family == "surveillance":
        alerts = sum(1 for r in rows if r.get("alarm"))
        cases = _total(rows, "people")
        return gettext(
            lang,
            "%(cases)s notified cases shown; outbreak alerts raised: %(alerts)s.",
            cases=number(cases),
            alerts=number(alerts),
        )
    if family == "medication":
        visits, given = _total(rows, "visits"), _total(rows, "antibiotic_prescriptions")
        prescribed, filled = _total(rows, "prescribed"), _total(rows, "filled")
        if not visits:
            return gettext(lang, "No visits shown.")
        rate = number(100 * given / visits, 1)
        if not prescribed:
            return gettext(
                lang,
                "%(rate)s antibiotic prescriptions per 100 visits (in the cells shown).",
                rate=rate,
            )
        return gettext(
            lang,
            "%(rate)s antibiotic prescriptions per 100 visits; %(filled)s%% of prescriptions "
            "filled in full (in the cells shown).",
            rate=rate,
            filled=number(100 * filled / prescribed, 1),
        )
    if family == "immunisation":
        children, given = _total(rows, "children"), _total(rows, "vaccinated")
        if not children:
            return ""
        return gettext(
            lang,
            "%(share)s%% of scheduled vaccines given (in the cells shown).",
            share=number(100 * given / children, 1),
        )
    return ""


__all__ = ["summary"]
