"""What a dashboard page shows of the warehouse, in its reader's language: the area and period
asked for, and each indicator as a panel (title, note, chart, table).

Every number comes from :func:`sokhoe.warehouse.indicators.run` (published cells, suppressed
together); this module only chooses among them and words them (``web/dashboard_labels.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import duckdb
import orjson
from markupsafe import Markup

from sokhoe.errors import FhirError, InvalidRequest, Issue
from sokhoe.registry.places import provinces
from sokhoe.warehouse import indicators
from sokhoe.warehouse.indicators import SUPPRESSED, Indicator, Result
from sokhoe.warehouse.publish import cell, figure
from sokhoe.web import i18n
from sokhoe.web.dashboard_labels import DATES, Cell, gettext, heading, label
from sokhoe.web.dashboard_labels import cell as shown
from sokhoe.web.i18n import N_

LOCAL_TIME: Final = ZoneInfo("Asia/Ho_Chi_Minh")
REBUILD_COMMAND: Final = "sokhoe warehouse build --full"


@dataclass(frozen=True)
class Filters:
    """The area and period the page shows; kept in every link of the page."""

    province: str | None = None
    start: str | None = None
    end: str | None = None

    @property
    def query(self) -> str:
        """``?province=…&from=…&to=…`` with the filters that are set ("" when none)."""
        pairs = {"province": self.province, "from": self.start, "to": self.end}
        text = urlencode({k: v for k, v in pairs.items() if v})
        return f"?{text}" if text else ""

    @property
    def province_name(self) -> str | None:
        return _PROVINCE_NAMES.get(self.province) if self.province else None


_PROVINCE_NAMES: Final = {p.code: p.name for p in provinces()}


def parse_filters(lang: str, province: str | None, start: str | None, end: str | None) -> Filters:
    """Validated filters; :class:`InvalidRequest` names the bad one (in ``lang``)."""
    province = (province or "").strip() or None
    if province is not None and province not in _PROVINCE_NAMES:
        raise InvalidRequest(
            gettext(
                lang,
                "Unknown province code '%(code)s' (a 2-digit statistics-office code)",
                code=province,
            ),
            "province",
        )
    start, end = (start or "").strip() or None, (end or "").strip() or None
    for name, field, value in (("from", N_("From"), start), ("to", N_("To"), end)):
        if value is not None and not _is_month(value):
            raise InvalidRequest(
                gettext(
                    lang,
                    "“%(field)s” must be a month like 2026-01, got '%(value)s'",
                    field=gettext(lang, field),
                    value=value,
                ),
                name,
            )
    if start and end and start > end:
        raise InvalidRequest(
            gettext(
                lang,
                "The period starts (%(start)s) after it ends (%(end)s)",
                start=i18n.format_date(start),
                end=i18n.format_date(end),
            ),
            "from",
        )
    return Filters(province, start, end)


def _is_month(text: str) -> bool:
    year, dash, month = text.partition("-")
    return (
        dash == "-"
        and len(year) == 4
        and year.isdigit()
        and month in {f"{m:02d}" for m in range(1, 13)}
    )


@dataclass(frozen=True)
class BuildInfo:
    built: datetime | None
    data_until: datetime | None
    """The newest change to the record the warehouse holds (its watermark)."""
    builds: int


def build_info(con: duckdb.DuckDBPyConnection) -> BuildInfo:
    """When the warehouse was last built and up to which change it holds (``_build``)."""
    try:
        row = con.execute(
            "SELECT epoch(max(built)), max(watermark), count(*) FROM _build"
        ).fetchone()
    except duckdb.CatalogException:  # a DuckDB file that no build of ours finished
        return BuildInfo(None, None, 0)
    if row is None or row[0] is None:
        return BuildInfo(None, None, 0)
    built = datetime.fromtimestamp(float(row[0]), LOCAL_TIME)
    until = datetime.fromisoformat(str(row[1])).astimezone(LOCAL_TIME) if row[1] else None
    return BuildInfo(built, until, int(row[2]))


def json_script(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` can close it)."""
    text = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY, default=str).decode()
    return Markup(  # noqa: S704 - escaped below: no markup character is left in it
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    )


def follows_period(ind: Indicator) -> bool:
    """Whether the period filter applies: the indicator has cells per month, week or year;
    coverage, facilities, disease management and immunisation are snapshots."""
    return ind.period is not None


PERIOD_NOTES: Final = {
    "week": N_("Counted per ISO week: the period filter picks the weeks starting in its months."),
    "year": N_("Counted per calendar year: the period filter picks the years it touches."),
}
_TICKS: Final = {"month": "%m/%Y", "week": "%d/%m/%Y"}
"""How a chart's date axis writes a month and a week (its Monday), as the tables do."""


@dataclass(frozen=True)
class Panel:
    """One indicator on a family page, in the reader's words."""

    indicator: Indicator
    title: str
    note: str
    result: Result
    columns: list[str]
    rows: list[list[Cell]]
    figure_json: Markup | None
    periodic: bool
    problem: str | None = None
    """Why this indicator cannot be shown (the rest of the page still is)."""


def chart(result: Result, lang: str) -> dict[str, Any]:
    """The indicator's chart in ``lang``: words, decimal and thousands separators, dates."""
    ind = result.indicator
    fig = figure(
        result,
        title=gettext(lang, ind.title),
        heading=partial(heading, lang),
        label=partial(label, lang),
    )
    layout = fig.setdefault("layout", {})
    if lang == "vi":
        layout["separators"] = ",."
    for axis in ("xaxis", "yaxis"):  # room for the (longer, Vietnamese) names
        layout.setdefault(axis, {})["automargin"] = True
    if ind.x in DATES:
        layout["xaxis"].update(tickformat=_TICKS[ind.x], hoverformat=_TICKS[ind.x])
    return fig


def panel(con: duckdb.DuckDBPyConnection, ind: Indicator, filters: Filters, lang: str) -> Panel:
    title, note = gettext(lang, ind.title), gettext(lang, ind.note) if ind.note else ""
    try:
        result = run(con, ind, filters, lang)
    except OutdatedWarehouse as exc:
        empty = Result(ind, [], [])
        return Panel(ind, title, note, empty, [], [], None, follows_period(ind), str(exc))
    columns = [c for c in result.columns if c != "suppressed"]
    rows = [[shown(lang, c, cell(row, c)) for c in columns] for row in result.rows]
    y = result.indicator.y
    drawn = y is not None and any(row.get(y) not in (None, SUPPRESSED) for row in result.rows)
    return Panel(
        indicator=result.indicator,
        title=title,
        note=note,
        result=result,
        columns=[heading(lang, c) for c in columns],
        rows=rows,
        figure_json=json_script(chart(result, lang)) if drawn else None,
        periodic=follows_period(result.indicator),
    )


class OutdatedWarehouse(FhirError):
    """The indicator reads a table or column the warehouse lacks: it was built by an older
    version of the platform. One indicator fails, not the page."""

    def __init__(self, message: str) -> None:
        super().__init__(503, [Issue("transient", message)])


def run(con: duckdb.DuckDBPyConnection, ind: Indicator, filters: Filters, lang: str) -> Result:
    try:
        return indicators.run(
            con, ind, province=filters.province, start=filters.start, end=filters.end
        )
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        raise OutdatedWarehouse(
            gettext(
                lang,
                "The warehouse lacks what “%(indicator)s” needs (built by an older version: "
                "%(detail)s); rebuild it with '%(command)s'",
                indicator=gettext(lang, ind.title),
                detail=str(exc).splitlines()[0],
                command=REBUILD_COMMAND,
            )
        ) from exc


def available(
    con: duckdb.DuckDBPyConnection, members: list[Indicator], filters: Filters, lang: str
) -> list[Result]:
    """The results of the indicators the warehouse can compute (for the summaries)."""
    results = []
    for ind in members:
        try:
            results.append(run(con, ind, filters, lang))
        except OutdatedWarehouse:
            continue
    return results


__all__ = [
    "PERIOD_NOTES",
    "REBUILD_COMMAND",
    "BuildInfo",
    "Filters",
    "OutdatedWarehouse",
    "Panel",
    "available",
    "build_info",
    "chart",
    "follows_period",
    "json_script",
    "panel",
    "parse_filters",
    "run",
]
