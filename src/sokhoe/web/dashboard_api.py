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

Pages are Vietnamese whatever the browser's language, English by ``?lang=en`` or the switch in
their header, remembered in a cookie (``web/i18n.py``, the clinic's mechanism, with the
``dashboard`` message catalogue); the words for the warehouse's columns and codes are in
``web/dashboard_labels.py``, what a page shows of the warehouse in ``web/dashboard_panels.py``.
Downloads keep the warehouse's names (scripts read them); their errors are in the caller's
language like the pages'.

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
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

import duckdb
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from starlette.responses import HTMLResponse, Response

from sokhoe.access.audit import AuditLog
from sokhoe.access.principal import Principal
from sokhoe.errors import FhirError, Forbidden, Issue, NotFound, Unauthorized
from sokhoe.registry.places import provinces
from sokhoe.warehouse import indicators
from sokhoe.warehouse.indicators import FAMILIES
from sokhoe.warehouse.publish import SUPPRESSED_MARK, cell, to_csv, to_xlsx
from sokhoe.web import deps, i18n
from sokhoe.web.dashboard_labels import (
    chart_locale,
    gettext,
    role,
)
from sokhoe.web.dashboard_panels import (
    PERIOD_NOTES,
    BuildInfo,
    Filters,
    OutdatedWarehouse,
    available,
    build_info,
    follows_period,
    json_script,
    panel,
    parse_filters,
    run,
)
from sokhoe.web.dashboard_summaries import summary
from sokhoe.web.i18n import N_
from sokhoe.web.pages import common
from sokhoe.web.sessions import SESSION_COOKIE

router = APIRouter(prefix="/dashboard", tags=["Dashboard"])

DASHBOARD_ROLES: Final = frozenset({"analyst", "system-admin"})
"""Staff roles that see the dashboard (analysts see aggregates only, never a record)."""
BUILD_COMMAND: Final = "sokhoe warehouse build"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_STATIC: Final = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


def may_see_dashboard(who: Principal) -> bool:
    """Analysts and system administrators; the platform's connected systems (no facility)."""
    if who.kind == "staff":
        return who.role in DASHBOARD_ROLES
    return who.kind == "client" and who.role == "system" and who.facility is None


ProvinceQuery = Annotated[str | None, Query(description="2-digit province code")]
FromQuery = Annotated[str | None, Query(alias="from", description="First month, YYYY-MM")]
ToQuery = Annotated[str | None, Query(alias="to", description="Last month, YYYY-MM")]


# -- access and errors, as pages -------------------------------------------------------------
_LOCKED: Final = (duckdb.IOException, duckdb.ConnectionException, duckdb.ResourceInUseException)
"""A build holds the warehouse's write lock: in another process (IOException, the file lock)
or in this one (ResourceInUseException, e.g. ``sokhoe serve --demo`` building in a thread)."""


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
        lang = i18n.choose(request)
        raise Forbidden(
            gettext(
                lang,
                "The dashboard is for analysts and system administrators; "
                "%(who)s signed in as %(role)s",
                who=who.display,
                role=role(lang, who.role or who.kind),
            )
        )
    return who


def _switch(request: Request, lang: str) -> str:
    """The same page in the other language: its filters kept, ``lang`` swapped."""
    other = "en" if lang == "vi" else "vi"
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return f"{request.url.path}?{urlencode([*kept, ('lang', other)])}"


def _render(
    request: Request, template: str, status: int = 200, *, title: str, **context: Any
) -> HTMLResponse:
    """``template`` in the caller's language (``title`` is translated here), through the
    pages' one renderer (``web/pages/common.py``), which keeps a ``?lang=`` in its cookie."""
    lang = i18n.choose(request)
    who: Principal | None = context.get("who")
    return common.render(
        request,
        f"dashboard/{template}",
        status,
        domain="dashboard",
        title=gettext(lang, title),
        families={key: gettext(lang, name) for key, name in FAMILIES.items()},
        signed_in_with_cookie=SESSION_COOKIE in request.cookies,
        switch=_switch(request, lang),
        role=role(lang, who.role or who.kind) if who is not None else "",
        **context,
    )


def _page(request: Request, body: Callable[[Principal | None], HTMLResponse]) -> HTMLResponse:
    """Run ``body`` for an allowed caller, or answer with the page that explains why not."""
    try:
        who = _viewer(request)
    except Unauthorized:
        return _render(request, "signin.html", title=N_("Sign in"), page="signin")
    except Forbidden as exc:
        return _render(request, "forbidden.html", 403, title=N_("Not allowed"), message=str(exc))
    try:
        return body(who)
    except WarehouseUnavailable as exc:
        return _render(
            request,
            "unavailable.html",
            503,
            title=N_("Warehouse not available"),
            message=str(exc),
            command=exc.command,
        )
    except FhirError as exc:
        return _render(request, "error.html", exc.status, title=N_("Error"), message=str(exc))


@contextmanager
def _warehouse(request: Request) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse for one request."""
    folder = deps.settings(request).warehouse_dir
    lang = i18n.choose(request)
    try:
        reading = indicators.open_warehouse(folder)
    except NotFound as exc:
        raise WarehouseUnavailable(
            gettext(
                lang,
                "The warehouse has not been built yet: run '%(command)s'",
                command=BUILD_COMMAND,
            ),
            BUILD_COMMAND,
        ) from exc
    except _LOCKED as exc:
        raise WarehouseUnavailable(
            gettext(lang, "The warehouse is being rebuilt right now; try again in a minute"),
            None,
        ) from exc
    try:
        yield reading.connection
    finally:
        reading.close()


# -- pages -----------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse, include_in_schema=False)
def index(
    request: Request, province: ProvinceQuery = None, start: FromQuery = None, end: ToQuery = None
) -> HTMLResponse:
    """The families, each with a one-line summary under the current filters."""

    def body(who: Principal | None) -> HTMLResponse:
        lang = i18n.choose(request)
        filters = parse_filters(lang, province, start, end)
        with _warehouse(request) as con:
            info = build_info(con)
            lines = {
                family: summary(
                    family, available(con, indicators.in_family(family), filters, lang), lang
                )
                for family in FAMILIES
            }
        return _render(
            request,
            "index.html",
            title=N_("Dashboard"),
            page="index",
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
            title=N_("About these numbers"),
            page="about",
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
    lang = i18n.choose(request)
    name, _, extension = filename.rpartition(".")
    if extension not in ("csv", "xlsx"):
        raise NotFound(gettext(lang, "Downloads are .csv or .xlsx, not '%(file)s'", file=filename))
    try:
        ind = indicators.indicator(name)
    except NotFound as exc:
        known = ", ".join(sorted(i.name for i in indicators.INDICATORS))
        raise NotFound(
            gettext(lang, "No indicator '%(name)s'; known: %(known)s", name=name, known=known)
        ) from exc
    filters = parse_filters(lang, province, start, end)
    with _warehouse(request) as con:
        result = run(con, ind, filters, lang)
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
        lang = i18n.choose(request)
        if family not in FAMILIES:
            raise NotFound(gettext(lang, "There is no page '%(family)s' here", family=family))
        members = indicators.in_family(family)
        filters = parse_filters(lang, province, start, end)
        with _warehouse(request) as con:
            info = build_info(con)
            panels = [panel(con, i, filters, lang) for i in members]
        return _render(
            request,
            "family.html",
            title=FAMILIES[family],
            page=family,
            who=who,
            filters=filters,
            provinces=provinces(),
            build=info,
            panels=panels,
            family=family,
            mark=SUPPRESSED_MARK,
            period_notes={k: gettext(lang, v) for k, v in PERIOD_NOTES.items()},
            chart_locale=json_script(locale) if (locale := chart_locale(lang)) else None,
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
