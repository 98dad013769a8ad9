"""``/dashboard``: the health department's pages over the de-identified warehouse.

One page per indicator family (``warehouse/catalogue.py``): each indicator as an interactive
chart drawn in the browser by Plotly from the figure JSON embedded in the page, its table, and
CSV/Excel downloads, all filtered by area (province) and period (months) through GET query
parameters, so a filtered view is a link that can be shared. Only aggregates reach this
module, already suppressed by :func:`sokhoe.warehouse.indicators.run`; no page ever reads a
record. Every route (the pages, their embedded chart JSON, the index summaries, CSV and Excel)
takes its numbers from that one call, and the filters only choose among the indicator's fixed
cells (``warehouse/cells.py``): no page adds up a reader's selection, so no combination of
requests yields a number the suppression did not account for.

Who may look: staff with the ``analyst`` or ``system-admin`` role (the cookie session of
``web/sessions.py``, or a bearer token), and the platform's own connected systems (no
facility) for API use. Anonymous visitors get the sign-in page, other callers a 403 page.

Hospital and health-department networks are often isolated, so every asset is served from
here: Plotly's bundle from the installed ``plotly`` package, the page's own CSS and script
from ``web/static/dashboard``. Nothing is fetched from a CDN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import duckdb
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from markupsafe import Markup
from starlette.responses import HTMLResponse, Response

from sokhoe.access.audit import AuditLog
from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError, Forbidden, InvalidRequest, Issue, NotFound, Unauthorized
from sokhoe.registry.places import provinces
from sokhoe.warehouse import indicators
from sokhoe.warehouse.indicators import FAMILIES, SUPPRESSED, Indicator, Result
from sokhoe.warehouse.publish import SUPPRESSED_MARK, cell, figure, to_csv, to_xlsx
from sokhoe.web import deps
from sokhoe.web.dashboard_summaries import summary
from sokhoe.web.sessions import SESSION_COOKIE

router = APIRouter(prefix="/dashboard", tags=["Dashboard"])

DASHBOARD_ROLES: Final = frozenset({"analyst", "system-admin"})
"""Staff roles that see the dashboard (analysts see aggregates only, never a record)."""
LOCAL_TIME: Final = ZoneInfo("Asia/Ho_Chi_Minh")
BUILD_COMMAND: Final = "sokhoe warehouse build"
REBUILD_COMMAND: Final = "sokhoe warehouse build --full"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_STATIC: Final = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


def may_see_dashboard(who: Principal) -> bool:
    """Analysts and system administrators; the platform's connected systems (no facility)."""
    if who.kind == "staff":
        return who.role in DASHBOARD_ROLES
    return who.kind == "client" and who.role == "system" and who.facility is None


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


def _filters(province: str | None, start: str | None, end: str | None) -> Filters:
    """Validated filters; :class:`InvalidRequest` names the bad one."""
    province = (province or "").strip() or None
    if province is not None and province not in _PROVINCE_NAMES:
        raise InvalidRequest(
            f"Unknown province code '{province}' (a 2-digit statistics-office code)", "province"
        )
    start, end = (start or "").strip() or None, (end or "").strip() or None
    for name, value in (("from", start), ("to", end)):
        if value is not None and not _is_month(value):
            raise InvalidRequest(f"{name} must be a month like 2026-01, got '{value}'", name)
    if start and end and start > end:
        raise InvalidRequest(f"The period starts ({start}) after it ends ({end})", "from")
    return Filters(province, start, end)


def _is_month(text: str) -> bool:
    year, dash, month = text.partition("-")
    return (
        dash == "-"
        and len(year) == 4
        and year.isdigit()
        and month in {f"{m:02d}" for m in range(1, 13)}
    )


ProvinceQuery = Annotated[str | None, Query(description="2-digit province code")]
FromQuery = Annotated[str | None, Query(alias="from", description="First month, YYYY-MM")]
ToQuery = Annotated[str | None, Query(alias="to", description="Last month, YYYY-MM")]


# -- access and errors, as pages -------------------------------------------------------------
_LOCKED: Final = (duckdb.IOException, duckdb.ConnectionException)
"""A build holds the warehouse's write lock: in another process (IOException, the file lock)
or in this one (ConnectionException, e.g. ``sokhoe serve --demo`` building in a thread)."""


class WarehouseUnavailable(FhirError):
    """The warehouse cannot be read now: not built yet, or locked by a running build (503;
    pages show what to run, downloads answer with the OperationOutcome)."""

    def __init__(self, message: str, command: str | None) -> None:
        super().__init__(503, [Issue("transient", message)])
        self.command = command


def _viewer(request: Request) -> Principal | None:
    """The caller (None when security is off). :class:`Unauthorized` when nobody is signed in,
    :class:`Forbidden` for a caller whose role does not see the dashboard."""
    if not deps.settings(request).security:
        return None
    who = deps.principal(request)
    if not may_see_dashboard(who):
        raise Forbidden(
            f"The dashboard is for analysts and system administrators; "
            f"{who.display} signed in as {who.role or who.kind}"
        )
    return who


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    # imported here: web/app.py imports this module to include its router
    from sokhoe.web.app import TEMPLATES

    html = TEMPLATES.get_template(f"dashboard/{template}").render(
        families=FAMILIES,
        signed_in_with_cookie=SESSION_COOKIE in request.cookies,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def _page(request: Request, body: Callable[[Principal | None], HTMLResponse]) -> HTMLResponse:
    """Run ``body`` for an allowed caller, or answer with the page that explains why not."""
    try:
        who = _viewer(request)
    except Unauthorized:
        return _render(request, "signin.html", title="Sign in")
    except Forbidden as exc:
        return _render(request, "forbidden.html", 403, title="Not allowed", message=str(exc))
    try:
        return body(who)
    except WarehouseUnavailable as exc:
        return _render(
            request,
            "unavailable.html",
            503,
            title="Warehouse not available",
            message=str(exc),
            command=exc.command,
        )
    except FhirError as exc:
        return _render(request, "error.html", exc.status, title="Error", message=str(exc))


@contextmanager
def _warehouse(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse for one request."""
    folder = deps.settings(request).warehouse_dir
    try:
        con = indicators.open_warehouse(folder)
    except NotFound as exc:
        raise WarehouseUnavailable(str(exc), BUILD_COMMAND) from exc
    except _LOCKED as exc:
        raise WarehouseUnavailable(
            "The warehouse is being rebuilt right now; try again in a minute", None
        ) from exc
    try:
        yield con
    finally:
        con.close()


# -- what a page shows -----------------------------------------------------------------------
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


def _json_script(data: Any) -> Markup:
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
    "week": "Counted per ISO week: the period filter picks the weeks starting in its months.",
    "year": "Counted per calendar year: the period filter picks the years it touches.",
}


@dataclass(frozen=True)
class Panel:
    """One indicator on a family page."""

    indicator: Indicator
    result: Result
    columns: list[str]
    rows: list[list[Any]]
    figure_json: Markup | None
    periodic: bool
    problem: str | None = None
    """Why this indicator cannot be shown (the rest of the page still is)."""


def _panel(con: duckdb.DuckDBPyConnection, ind: Indicator, filters: Filters) -> Panel:
    try:
        result = _run(con, ind, filters)
    except OutdatedWarehouse as exc:
        return Panel(ind, Result(ind, [], []), [], [], None, follows_period(ind), str(exc))
    columns = [c for c in result.columns if c != "suppressed"]
    rows = [[cell(row, c) for c in columns] for row in result.rows]
    y = result.indicator.y
    drawn = y is not None and any(row.get(y) not in (None, SUPPRESSED) for row in result.rows)
    return Panel(
        indicator=result.indicator,
        result=result,
        columns=columns,
        rows=rows,
        figure_json=_json_script(figure(result)) if drawn else None,
        periodic=follows_period(result.indicator),
    )


class OutdatedWarehouse(FhirError):
    """The indicator reads a table or column the warehouse lacks: it was built by an older
    version of the platform. One indicator fails, not the page."""

    def __init__(self, ind: Indicator, detail: str) -> None:
        super().__init__(
            503,
            [
                Issue(
                    "transient",
                    f"The warehouse lacks what '{ind.name}' needs (built by an older version: "
                    f"{detail.splitlines()[0]}); rebuild it with '{REBUILD_COMMAND}'",
                )
            ],
        )


def _run(con: duckdb.DuckDBPyConnection, ind: Indicator, filters: Filters) -> Result:
    try:
        return indicators.run(
            con, ind, province=filters.province, start=filters.start, end=filters.end
        )
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        raise OutdatedWarehouse(ind, str(exc)) from exc


def _available(
    con: duckdb.DuckDBPyConnection, members: list[Indicator], filters: Filters
) -> list[Result]:
    """The results of the indicators the warehouse can compute (for the summaries)."""
    results = []
    for ind in members:
        try:
            results.append(_run(con, ind, filters))
        except OutdatedWarehouse:
            continue
    return results


# -- pages -----------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse, include_in_schema=False)
def index(
    request: Request, province: ProvinceQuery = None, start: FromQuery = None, end: ToQuery = None
) -> HTMLResponse:
    """The families, each with a one-line summary under the current filters."""

    def body(who: Principal | None) -> HTMLResponse:
        filters = _filters(province, start, end)
        with _warehouse(request) as con:
            info = build_info(con)
            lines = {
                family: summary(family, _available(con, indicators.in_family(family), filters))
                for family in FAMILIES
            }
        return _render(
            request,
            "index.html",
            title="Dashboard",
            who=who,
            filters=filters,
            provinces=provinces(),
            build=info,
            summaries=lines,
            family=None,
        )

    return _page(request, body)


@router.get("/about", response_class=HTMLResponse, include_in_schema=False)
def about(request: Request) -> HTMLResponse:
    """Where the numbers come from and why some cells read ``<5``."""

    def body(who: Principal | None) -> HTMLResponse:
        with _warehouse(request) as con:
            info = build_info(con)
        return _render(
            request,
            "about.html",
            title="About these numbers",
            who=who,
            filters=Filters(),
            build=info,
            suppress_below=indicators.SUPPRESS_BELOW,
            mark=SUPPRESSED_MARK,
            command=BUILD_COMMAND,
            family=None,
        )

    return _page(request, body)


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    """Plotly's browser bundle, from the installed Python package (no CDN)."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    """The dashboard's own stylesheet and script (a fixed list: no path from the URL)."""
    media_type = _STATIC.get(name)
    if media_type is None:
        raise NotFound(f"No dashboard asset '{name}'")
    path = Path(str(resources.files("sokhoe.web") / "static" / "dashboard" / name))
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/download/{filename}", summary="Download one indicator as CSV or Excel")
def download(
    request: Request,
    filename: str,
    province: ProvinceQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    """``{indicator}.csv`` or ``{indicator}.xlsx`` under the same filters as the page; hidden
    cells read ``x``. Errors are OperationOutcomes (this is also an API)."""
    who = _viewer(request)
    name, _, extension = filename.rpartition(".")
    if extension not in ("csv", "xlsx"):
        raise NotFound(f"Downloads are .csv or .xlsx, not '{filename}'")
    ind = indicators.indicator(name)
    filters = _filters(province, start, end)
    with _warehouse(request) as con:
        result = _run(con, ind, filters)
    auditor: AuditLog = request.app.state.auditor
    auditor.record(
        who,
        "export",
        "success",
        query=f"{request.url.path}{filters.query}",
        source=request.client.host if request.client else None,
    )
    stem = "-".join(v for v in (ind.name, filters.province, filters.start, filters.end) if v)
    disposition = (
        f"attachment; filename=\"{stem}.{extension}\"; filename*=UTF-8''{quote(stem)}.{extension}"
    )
    if extension == "csv":
        return Response(
            to_csv(result).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": disposition},
        )
    return Response(to_xlsx(result), media_type=XLSX, headers={"Content-Disposition": disposition})


@router.get("/{family}", response_class=HTMLResponse, include_in_schema=False)
def family_page(
    request: Request,
    family: str,
    province: ProvinceQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> HTMLResponse:
    """Every indicator of one family: chart, table, downloads."""

    def body(who: Principal | None) -> HTMLResponse:
        members = indicators.in_family(family)  # NotFound for an unknown family
        filters = _filters(province, start, end)
        with _warehouse(request) as con:
            info = build_info(con)
            panels = [_panel(con, i, filters) for i in members]
        return _render(
            request,
            "family.html",
            title=FAMILIES[family],
            who=who,
            filters=filters,
            provinces=provinces(),
            build=info,
            panels=panels,
            family=family,
            mark=SUPPRESSED_MARK,
            period_notes=PERIOD_NOTES,
        )

    return _page(request, body)


__all__ = [
    "DASHBOARD_ROLES",
    "BuildInfo",
    "Filters",
    "OutdatedWarehouse",
    "WarehouseUnavailable",
    "build_info",
    "cell",
    "follows_period",
    "may_see_dashboard",
    "router",
    "summary",
]
