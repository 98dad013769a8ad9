"""An indicator result as the department receives it: CSV, Excel, or a Plotly chart.

Only results of :func:`sokhoe.warehouse.indicators.run` come here, so every cell is already an
aggregate, suppressed together with everything else the dashboard publishes
(``warehouse/suppression.py``). A hidden cell holds :data:`~sokhoe.warehouse.cells.SUPPRESSED`
and is written as :data:`SUPPRESSED_MARK` (the reader must see it was hidden, not that it was
zero); charts leave it out rather than draw it as zero.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import IO, Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
from openpyxl import Workbook
from openpyxl.styles import Font

from sokhoe.warehouse.cells import SUPPRESSED, SUPPRESSED_MARK
from sokhoe.warehouse.indicators import SUPPRESS_BELOW, Result

SUPPRESSION_NOTE = (
    f"'{SUPPRESSED_MARK}': hidden, either a count of 1 to {SUPPRESS_BELOW - 1} people or a count "
    "hidden with it so that it cannot be worked out from totals (and every rate computed from it)"
)


def cell(row: dict[str, Any], column: str) -> Any:
    """A cell as published: a hidden one reads :data:`SUPPRESSED_MARK`."""
    value = row.get(column)
    return SUPPRESSED_MARK if value is SUPPRESSED else value


def _columns(result: Result) -> list[str]:
    return [c for c in result.columns if c != "suppressed"]


def write_csv(result: Result, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(result)
    writer.writerow(columns)
    for row in result.rows:
        writer.writerow(["" if (v := cell(row, c)) is None else v for c in columns])


def to_csv(result: Result) -> str:
    buffer = io.StringIO()
    write_csv(result, buffer)
    return buffer.getvalue()


def to_xlsx(result: Result) -> bytes:
    """One sheet with the table, a second with what it is and the filters used."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # noqa: S101 - a new Workbook always has one sheet
    sheet.title = result.indicator.name[:31]
    columns = _columns(result)
    sheet.append(columns)
    for heading in sheet[1]:
        heading.font = Font(bold=True)
    for row in result.rows:
        sheet.append([cell(row, c) for c in columns])
    about = book.create_sheet("about")
    about.append(["indicator", result.indicator.title])
    about.append(["note", result.indicator.note])
    for key, value in result.filters.items():
        about.append([key, "" if value is None else str(value)])
    about.append(["suppressed rows", result.suppressed])
    about.append(["suppression", SUPPRESSION_NOTE])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _as_is(column: str, value: Any) -> str:
    return str(value)


def figure(
    result: Result,
    *,
    title: str | None = None,
    heading: Callable[[str], str] = str,
    label: Callable[[str, Any], str] = _as_is,
) -> dict[str, Any]:
    """A Plotly figure (as JSON-ready dict) of the indicator's chart; suppressed cells are
    left out of the bars, not drawn as zero. When the rows span several of the indicator's
    periods and the period is not the x axis, each bar is labelled with its period too (bars
    of two years are never stacked into one).

    The words are the warehouse's unless a page gives its reader's: ``title`` for the
    indicator's, ``heading(column)`` for an axis, ``label(column, value)`` for a bar's category
    and its trace's name."""
    ind = result.indicator
    title = title or ind.title
    x, y, color = ind.x, ind.y, ind.color
    fig = go.Figure()
    if x is None or y is None:
        return dict(fig.to_plotly_json())
    period = ind.period if ind.period and ind.period != x else None
    several = period is not None and len({r.get(period) for r in result.rows}) > 1
    groups: dict[str, tuple[list[Any], list[Any]]] = {}
    for row in result.rows:
        value = row.get(y)
        if value is None or value is SUPPRESSED:
            continue
        key = label(color, row.get(color)) if color else title
        xs, ys = groups.setdefault(key, ([], []))
        category = label(x, row.get(x))
        xs.append(f"{row.get(period)} · {category}" if several and period else category)
        ys.append(value)
    for name, (xs, ys) in groups.items():
        fig.add_trace(go.Bar(name=name, x=xs, y=ys))
    fig.update_layout(
        title={"text": title},
        barmode="stack" if ind.chart == "bar-stacked" else "group",
        xaxis={"title": {"text": heading(x)}},
        yaxis={"title": {"text": heading(y)}},
        margin={"l": 60, "r": 20, "t": 60, "b": 80},
        legend={"orientation": "h"},
    )
    return dict(fig.to_plotly_json())


__all__ = [
    "SUPPRESSED_MARK",
    "SUPPRESSION_NOTE",
    "cell",
    "figure",
    "to_csv",
    "to_xlsx",
    "write_csv",
]
