"""Weekly counts of notifiable diseases by province, with outbreak alerts, computed at each
warehouse build into the table ``notifiable_alerts``.

Diseases: dengue (ICD-10 A90–A91), measles (B05), hand-foot-and-mouth disease (B08.4). The
detectors are those of ``surveillance.py``, back-tested in ``backtest.py``: the improved
Farrington where a series has three years of history, EARS C2 otherwise. Detection needs the
true counts and the weeks before those it judges, and each Farrington week costs two GLM fits,
so it runs once per build over the last :data:`ALERT_WEEKS` weeks rather than per dashboard
request; the ``notifiable_weekly`` indicator only reads the table (and suppresses small cells).

The expected count and the threshold of a week are computed from the counts of earlier weeks,
hidden ones included (EARS C2's expected value is the mean of seven of them: a reader who
knows six recovers the seventh). So each row also keeps ``smallest_week``, the smallest
non-zero weekly count in its whole series, and the indicator shows the expected count and the
threshold only for series where that is not a small count.
"""

from __future__ import annotations

from typing import Final

import duckdb
import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from sokhoe.warehouse.catalogue import VISITS
from sokhoe.warehouse.surveillance import ears_series, farrington_series, series_table

ALERT_WEEKS: Final = 52
FARRINGTON_MIN_WEEKS: Final = 3 * 52 + 10
"""The improved Farrington needs three years of comparable weeks; shorter series use C2."""

WEEKLY_COUNTS: Final = f"""
    WITH d AS (
        SELECT v.patient_key, v.province_code, v.province_name, v.day,
               replace(upper(c.icd10), '.', '') AS code
        FROM condition c JOIN ({VISITS}) v USING (encounter_key)
        WHERE c.icd10 IS NOT NULL AND v.province_code IS NOT NULL
    )
    SELECT strftime(date_trunc('week', day), '%Y-%m-%d') AS week, province_code,
           any_value(province_name) AS province,
           CASE WHEN code LIKE 'A90%' OR code LIKE 'A91%' THEN 'dengue'
                WHEN code LIKE 'B05%' THEN 'measles'
                WHEN code LIKE 'B084%' THEN 'hand-foot-mouth' END AS disease,
           count(DISTINCT patient_key) AS people
    FROM d
    WHERE disease IS NOT NULL
    GROUP BY week, province_code, disease
    ORDER BY week, province_code, disease
"""  # noqa: S608 - module constants only

_COLUMNS: Final = (
    "week VARCHAR, province_code VARCHAR, province VARCHAR, disease VARCHAR, people BIGINT, "
    "expected DOUBLE, threshold DOUBLE, alarm BOOLEAN, smallest_week BIGINT"
)


def alerts(counts: pd.DataFrame, weeks: int = ALERT_WEEKS) -> pd.DataFrame:
    """Expected value, threshold and alarm for the last ``weeks`` weeks of every series of a
    tidy table (``area``, ``disease``, ``week``, ``count``); weeks without a case are left out
    of the result (they cannot alarm)."""
    out = []
    if counts.empty:
        return pd.DataFrame(columns=["area", "disease", "week", "expected", "threshold", "alarm"])
    last = counts["week"].max()
    span = (last - counts["week"].min()).days // 7 + 1
    first_shown = last - pd.Timedelta(weeks=weeks - 1)
    for (area, disease), series in series_table(counts).items():
        index = pd.DatetimeIndex(series.index)
        y = series.to_numpy()
        if span >= FARRINGTON_MIN_WEEKS:
            judged = [i for i, week in enumerate(index) if week >= first_shown and y[i] > 0]
            found = farrington_series(y, at=judged)
        else:
            found = ears_series(y, "C2")
        for i, week in enumerate(index):
            if week < first_shown or y[i] == 0:
                continue
            out.append(
                {
                    "area": area,
                    "disease": disease,
                    "week": week,
                    "expected": None
                    if np.isnan(found.expected[i])
                    else round(float(found.expected[i]), 1),
                    "threshold": None
                    if np.isnan(found.threshold[i])
                    else round(float(found.threshold[i]), 1),
                    "alarm": bool(found.alarm[i]),
                }
            )
    return pd.DataFrame(out, columns=["area", "disease", "week", "expected", "threshold", "alarm"])


def refresh_alerts(con: duckdb.DuckDBPyConnection, weeks: int = ALERT_WEEKS) -> int:
    """Recompute ``notifiable_alerts`` from the warehouse's tables; returns its rows."""
    counted = con.execute(WEEKLY_COUNTS).fetchdf()
    con.execute(f"CREATE OR REPLACE TABLE notifiable_alerts ({_COLUMNS})")
    if counted.empty:
        return 0
    counts = pd.DataFrame(
        {
            "area": counted["province_code"],
            "disease": counted["disease"],
            "week": pd.to_datetime(counted["week"]),
            "count": counted["people"].astype(int),
        }
    )
    found = alerts(counts, weeks)
    if found.empty:
        return 0
    found["week"] = found["week"].dt.strftime("%Y-%m-%d")
    series = counted.rename(columns={"province_code": "area"})
    smallest = (
        series.groupby(["area", "disease"], as_index=False)["people"]
        .min()
        .rename(columns={"people": "smallest_week"})
    )
    merged = found.merge(series, on=["area", "disease", "week"]).merge(
        smallest, on=["area", "disease"]
    )
    table = merged.rename(columns={"area": "province_code"})[
        [
            "week",
            "province_code",
            "province",
            "disease",
            "people",
            "expected",
            "threshold",
            "alarm",
            "smallest_week",
        ]
    ]
    con.register("_alerts", table)
    try:
        con.execute("INSERT INTO notifiable_alerts SELECT * FROM _alerts")
    finally:
        con.unregister("_alerts")
    return len(table)


__all__ = ["ALERT_WEEKS", "WEEKLY_COUNTS", "alerts", "refresh_alerts"]
