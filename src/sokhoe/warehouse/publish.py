"""An indicator result as the department receives it: CSV, Excel, or a Plotly chart.

Only results of :func:`sokhoe.warehouse.indicators.run` come here, so every cell is already an
aggregate with small counts suppressed; a suppressed cell is written as ``<5`` (the reader
must see it was hidden, not that it was zero).
"""

from __future__ import annotations

import csv
import io
from typing import IO, Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
from openpyxl import Workbook
from openpyxl.styles import Font

from sokhoe.warehouse.indicators import SUPPRESS_BELOW, Result

SUPPRESSED_MARK = f"<{SUPPRESS_BELOW}"


def _cell(result: Result, row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    hidden = (*result.indicator.people, *result.indicator.derived)
    if value is None and row.get("suppressed") and column in hidden:
        return SUPPRESSED_MARK
    return value


def _columns(result: Result) -> list[str]:
    return [c for c in result.columns if c != "suppressed"]


def write_csv(result: Result, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    columns = _columns(result)
    writer.writerow(columns)
    for row in result.rows:
        writer.writerow(["" if (v := _cell(result, row, c)) is None else v for c in columns])


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
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in result.rows:
        sheet.append([_cell(result, row, c) for c in columns])
    about = book.create_sheet("about")
    about.append(["indicator", result.indicator.title])
    about.append(["note", result.indicator.note])
    for key, value in result.filters.items():
        about.append([key, "" if value is None else str(value)])
    about.append(["suppressed rows", result.suppressed])
    about.append(
        ["suppression", f"counts of people under {SUPPRESS_BELOW} are shown as '{SUPPRESSED_MARK}'"]
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def figure(result: Result) -> dict[str, Any]:
    """A Plotly figure (as JSON-ready dict) of the indicator's chart; suppressed cells are
    left out of the bars, not drawn as zero."""
    ind = result.indicator
    x, y, color = ind.x, ind.y, ind.color
    fig = go.Figure()
    if x is None or y is None:
        return dict(fig.to_plotly_json())
    groups: dict[str, tuple[list[Any], list[Any]]] = {}
    for row in result.rows:
        if row.get(y) is None:
            continue
        key = str(row.get(color)) if color else ind.title
        xs, ys = groups.setdefault(key, ([], []))
        xs.append(str(row.get(x)))
        ys.append(row.get(y))
    for name, (xs, ys) in groups.items():
        fig.add_trace(go.Bar(name=name, x=xs, y=ys))
    fig.update_layout(
        title={"text": ind.title},
        barmode="stack" if ind.chart == "bar-stacked" else "group",
        xaxis={"title": {"text": x}},
        yaxis={"title": {"text": y}},
        margin={"l": 60, "r": 20, "t": 60, "b": 80},
        legend={"orientation": "h"},
    )
    return dict(fig.to_plotly_json())


__all__ = ["SUPPRESSED_MARK", "figure", "to_csv", "to_xlsx", "write_csv"]
