"""The health department's indicators as published: every cell suppressed together, and a
request's area and period choosing among them.

Every indicator of :mod:`sokhoe.warehouse.catalogue` is published on fixed cells: its
:class:`~sokhoe.warehouse.cells.Cube` is computed for every area (nation, province, commune or
facility) and every period of its own (month, ISO week, calendar year, or a snapshot) at once,
and **suppressed together**: counts from 1 to 4 people are hidden, and so are the complementary
cells a reader would otherwise recover them from by subtraction (``warehouse/suppression.py``
says how and why it holds). A request's area and period filters only choose among those cells;
nothing is ever added up over a reader's own selection, so every combination of requests
yields only cells the suppression accounted for. What leaves this module is always an
aggregate; 5 is configurable per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import duckdb

from sokhoe.errors import InvalidRequest, NotFound
from sokhoe.warehouse.catalogue import FAMILIES, INDICATORS, REPEAT_DAYS, VISITS, Indicator
from sokhoe.warehouse.cells import SUPPRESSED
from sokhoe.warehouse.cells import publish as publish_cells
from sokhoe.warehouse.reading import Reading

SUPPRESS_BELOW: Final = 5


@dataclass
class Result:
    indicator: Indicator
    columns: list[str]
    rows: list[dict[str, Any]]
    suppressed: int = 0
    """Rows with hidden counts (small, or hidden so that a small one cannot be worked out)."""
    filters: dict[str, Any] = field(default_factory=dict)


_BY_NAME: Final = {i.name: i for i in INDICATORS}


def indicator(name: str) -> Indicator:
    found = _BY_NAME.get(name)
    if found is None:
        raise NotFound(f"No indicator '{name}'; known: {', '.join(sorted(_BY_NAME))}")
    return found


def in_family(family: str) -> list[Indicator]:
    if family not in FAMILIES:
        raise NotFound(f"No indicator family '{family}'; known: {', '.join(FAMILIES)}")
    return [i for i in INDICATORS if i.family == family]


def _month(value: str | None, default: str, name: str) -> str:
    if value is None or value == "":
        return default
    text = value.strip()
    if len(text) != 7 or text[4] != "-" or not (text[:4] + text[5:]).isdigit():
        raise InvalidRequest(f"{name} must be a month like 2026-01, got '{value}'", name)
    return text


def _in_period(ind: Indicator, row: dict[str, Any], start: str, end: str) -> bool:
    """Whether the cell's own period falls in the months asked for (a week by the month of its
    Monday, a year by its year)."""
    if ind.period is None:
        return True
    value = str(row[ind.period])
    if ind.period == "year":
        return start[:4] <= value <= end[:4]
    return start <= value[:7] <= end


def _sort_key(row: dict[str, Any], column: str) -> tuple[int, Any]:
    """Hidden and missing values last, whatever the direction: a hidden cell's place in the
    order must not tell its size."""
    value = row.get(column)
    if value is None or value is SUPPRESSED:
        return (1, 0)
    return (0, value)


def _ordered(rows: list[dict[str, Any]], order: tuple[str, ...]) -> list[dict[str, Any]]:
    for spec in reversed(order):  # stable sorts, least significant key first
        column = spec.removeprefix("-")
        shown = [r for r in rows if _sort_key(r, column)[0] == 0]
        hidden = [r for r in rows if _sort_key(r, column)[0] == 1]
        shown.sort(key=lambda r: r[column], reverse=spec.startswith("-"))
        rows = shown + hidden
    return rows


def run(
    con: duckdb.DuckDBPyConnection,
    ind: Indicator,
    *,
    province: str | None = None,
    start: str | None = None,
    end: str | None = None,
    suppress_below: int = SUPPRESS_BELOW,
) -> Result:
    """The published cells of ``ind`` for an area and a period (see the module docstring).

    ``province`` chooses the area (None: the nation); ``start`` and ``end`` (months, inclusive)
    choose the cells whose own period falls between them. Snapshot indicators ignore them.
    """
    today = date.today()
    first = _month(start, "1900-01", "from")
    last = _month(end, f"{today.year:04d}-{today.month:02d}", "to")
    params = {"province": province or None, "start": first, "end": last}
    if province is not None and province and not province.isdigit():
        raise InvalidRequest(f"province must be a statistics-office code, got '{province}'")
    tiers = publish_cells(con, ind.cube, suppress_below)
    if ind.by == "area":
        rows = tiers["province"] if province else tiers["nation"]
    else:
        rows = tiers[ind.by]
    rows = [
        r
        for r in rows
        if (not province or r.get("province_code") == province) and _in_period(ind, r, first, last)
    ]
    rows = _ordered(rows, ind.order)[: ind.limit]
    columns = list(ind.columns)
    if ind.people:
        columns.append("suppressed")
    shown = [{c: r.get(c) for c in columns} for r in rows]
    suppressed = sum(1 for r in shown if r.get("suppressed"))
    return Result(ind, columns, shown, suppressed, params)


def open_warehouse(folder: Path) -> Reading:
    """A read-only look at the built warehouse (``with … as con`` gives the connection; see
    :mod:`sokhoe.warehouse.reading`), or :class:`NotFound` saying how to build it."""
    path = folder / "warehouse.duckdb"
    if not path.exists():
        raise NotFound("The warehouse has not been built yet: run 'sokhoe warehouse build'")
    return Reading(path)


__all__ = [
    "FAMILIES",
    "INDICATORS",
    "REPEAT_DAYS",
    "SUPPRESSED",
    "SUPPRESS_BELOW",
    "VISITS",
    "Indicator",
    "Result",
    "in_family",
    "indicator",
    "open_warehouse",
    "run",
]
