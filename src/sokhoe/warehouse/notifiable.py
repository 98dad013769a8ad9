"""Outbreak alerts and forecasts on the warehouse's weekly counts of notifiable diseases.

The counts come from the ``notifiable_weekly`` indicator (dengue A90–A91, measles B05,
hand-foot-and-mouth disease B08.4, by province and ISO week); the detectors and the forecaster
are those of ``surveillance.py`` and ``forecasting.py``, back-tested in ``backtest.py``. Detection
runs on the whole history of each series (a detector needs the weeks before the period shown),
then only the weeks of the requested period are returned.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd  # type: ignore[import-untyped]

from sokhoe.warehouse.surveillance import detect

FARRINGTON_MIN_WEEKS: Final = 3 * 52 + 10
"""The improved Farrington needs three years of comparable weeks; shorter series use C2."""


def add_alerts(rows: list[dict[str, Any]], start: str, end: str) -> list[dict[str, Any]]:
    """The rows of the weeks between months ``start`` and ``end``, with ``expected``,
    ``threshold`` and ``alarm`` from the detector suited to each series' length."""
    if not rows:
        return []
    counts = pd.DataFrame(
        {
            "area": [r["province_code"] for r in rows],
            "disease": [r["disease"] for r in rows],
            "week": pd.to_datetime([r["week"] for r in rows]),
            "count": [int(r["people"]) for r in rows],
        }
    )
    span = (counts["week"].max() - counts["week"].min()).days // 7 + 1
    method = "farrington" if span >= FARRINGTON_MIN_WEEKS else "C2"
    found = detect(counts, method)  # type: ignore[arg-type]
    keyed = {
        (str(r.area), str(r.disease), r.week.strftime("%Y-%m-%d")): r
        for r in found.itertuples(index=False)
    }
    out = []
    for row in rows:
        if not start <= str(row["week"])[:7] <= end:
            continue
        hit = keyed.get((row["province_code"], row["disease"], row["week"]))
        expected = getattr(hit, "expected", None)
        threshold = getattr(hit, "threshold", None)
        out.append(
            {
                **row,
                "expected": None
                if expected is None or pd.isna(expected)
                else round(float(expected), 1),
                "threshold": None
                if threshold is None or pd.isna(threshold)
                else round(float(threshold), 1),
                "alarm": bool(getattr(hit, "alarm", False)),
            }
        )
    return out


__all__ = ["add_alerts"]
