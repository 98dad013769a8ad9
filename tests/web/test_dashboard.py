"""The health department's dashboard: who may see it, what each page shows, downloads that
parse with small cells marked ``<5``, filters that narrow, and a clear page when the warehouse
is not built. Over a real SQLite store, a real DuckDB warehouse and the real app."""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from sokhoe.access.accounts import create_user
from sokhoe.access.audit import AuditLog
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.guard import platform_repository
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.demo import write_demo
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from sokhoe.warehouse import indicators as ind
from sokhoe.warehouse.build import Warehouse, warehouse_key
from sokhoe.warehouse.demo import build_demo_warehouse, residents_with_record
from sokhoe.web.app import create_app
from sokhoe.web.sessions import CSRF_COOKIE
from tests.conftest import BASE, platform_token

PASSWORD = "mật-khẩu-dài-2026"
PEOPLE = 300
SEED = 7


@dataclass
class Dashboard:
    """A demo population loaded into SQLite, its warehouse built, staff accounts made."""

    settings: Settings
    store: SqlStore

    def app(self) -> FastAPI:
        return create_app(self.settings, self.store)


def make_dashboard(folder: Path, people: int = PEOPLE, seed: int = SEED) -> Dashboard:
    """Used by the browser test too (over a real server)."""
    db = f"sqlite:///{folder / 'dashboard.db'}"
    store = SqlStore(db)
    settings = Settings(base_url=BASE, database_url=db, var_dir=folder / "var")
    write_demo(folder / "demo", people, seed, "ndjson", progress=False)
    report = load_paths(
        platform_repository(store, settings.fhir_base), [folder / "demo"], workers=0
    )
    assert report.errors == []
    build_demo_warehouse(store, settings, seed)
    engine = create_app(settings, store).state.tokens.engine
    create_user(engine, "phantich", PASSWORD, "analyst", "Phân tích viên")
    create_user(engine, "bacsi", PASSWORD, "doctor", "BS. Demo", facility="79001")
    return Dashboard(settings, store)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    made = make_dashboard(tmp_path_factory.mktemp("dashboard"))
    try:
        yield made
    finally:
        made.store.close()


@pytest.fixture
def browser(dashboard: Dashboard) -> Iterator[TestClient]:
    """A client with its own cookie jar, signed in as nobody."""
    with TestClient(dashboard.app(), base_url=BASE) as c:
        yield c


def sign_in(c: TestClient, username: str) -> str:
    r = c.post(
        "/auth/staff/sign-in",
        params={"session": "cookie"},
        json={"username": username, "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["csrf_token"])


@pytest.fixture
def analyst(browser: TestClient) -> TestClient:
    sign_in(browser, "phantich")
    return browser


def charts(html: str) -> dict[str, Any]:
    """The figure JSON blocks of a page, by the id of the element they are drawn in."""
    found = re.findall(
        r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>', html, re.S
    )
    return {target: orjson.loads(text) for target, text in found}


def table(html: str, name: str) -> list[list[str]]:
    """The body cells of the indicator's table, as text."""
    match = re.search(rf'<table class="data" id="table-{name}">(.*?)</table>', html, re.S)
    assert match, f"no table for {name}"
    body = match.group(1).split("<tbody>")[1]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).replace("&lt;", "<")
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def download_csv(c: TestClient, url: str) -> list[dict[str, str]]:
    r = c.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(r.text)))


def largest_province(dashboard: Dashboard) -> str:
    with ind.open_warehouse(dashboard.settings.warehouse_dir) as con:
        row = con.execute(
            "SELECT province_code FROM patient WHERE province_code IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0])


# -- who may look ----------------------------------------------------------------------------
def test_anonymous_visitors_get_the_sign_in_page_and_no_data(browser: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/coverage", "/dashboard/about"):
        r = browser.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert 'id="sign-in"' in r.text and 'name="totp"' in r.text
        assert "<table" not in r.text and "application/json" not in r.text
        assert "An Giang" not in r.text  # no province list, let alone numbers
    r = browser.get("/dashboard/download/ehr_coverage.csv")
    assert r.status_code == 401  # the download is also an API: an OperationOutcome
    assert r.json()["resourceType"] == "OperationOutcome"


def test_a_doctor_is_refused_with_a_clear_page(browser: TestClient) -> None:
    sign_in(browser, "bacsi")
    r = browser.get("/dashboard/coverage")
    assert r.status_code == 403
    assert "analysts and system administrators" in r.text and "doctor" in r.text
    assert "<table" not in r.text and 'id="sign-out"' in r.text
    assert browser.get("/dashboard/download/ehr_coverage.csv").status_code == 403


def test_a_wrong_password_changes_nothing_and_says_why(browser: TestClient) -> None:
    r = browser.post(
        "/auth/staff/sign-in",
        params={"session": "cookie"},
        json={"username": "phantich", "password": "not-the-password"},
    )
    assert r.status_code == 401
    assert "Wrong username or password" in r.json()["issue"][0]["diagnostics"]
    assert 'id="sign-in"' in browser.get("/dashboard").text


def test_platform_systems_may_download_facility_systems_may_not(
    dashboard: Dashboard, browser: TestClient
) -> None:
    app: Any = browser.app
    platform = {"Authorization": f"Bearer {platform_token(app)}"}
    assert (
        browser.get("/dashboard/download/emr_deployment.csv", headers=platform).status_code == 200
    )
    tokens: TokenService = app.state.tokens
    his = create_client(tokens.engine, "a hospital HIS", ["system/*.cruds"], facility="79001")
    token = tokens.issue(authenticate_client(tokens.engine, his.client_id, his.client_secret))[0]
    facility = {"Authorization": f"Bearer {token}"}
    assert (
        browser.get("/dashboard/download/emr_deployment.csv", headers=facility).status_code == 403
    )


def test_sign_out_ends_the_session(analyst: TestClient) -> None:
    assert 'id="sign-out"' in analyst.get("/dashboard").text
    out = analyst.post("/auth/sign-out", headers={"X-CSRF-Token": analyst.cookies[CSRF_COOKIE]})
    assert out.status_code == 200
    analyst.cookies.clear()
    assert 'id="sign-in"' in analyst.get("/dashboard").text


# -- what the analyst sees -------------------------------------------------------------------
def test_the_index_sums_up_every_family(analyst: TestClient) -> None:
    r = analyst.get("/dashboard")
    assert r.status_code == 200
    for family in ind.FAMILIES:
        assert f'href="/dashboard/{family}"' in r.text
        assert f'id="summary-{family}"' in r.text
    coverage = re.search(
        r'id="summary-coverage">([\d.]+)% of residents have a record \((\d+) provinces\)', r.text
    )
    assert coverage and 80 <= float(coverage.group(1)) <= 100
    assert int(coverage.group(2)) <= 34  # the by-commune breakdown is not counted again
    assert re.search(r'id="summary-emr">EMR live in \d+ of \d+ facilities', r.text)


@pytest.mark.parametrize("family", list(ind.FAMILIES))
def test_each_family_page_has_its_charts_and_tables(analyst: TestClient, family: str) -> None:
    r = analyst.get(f"/dashboard/{family}")
    assert r.status_code == 200, r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert '<script src="/dashboard/static/plotly.min.js">' in r.text
    # every script, stylesheet and link stays on this server: no CDN, no external font
    assert not re.search(r'(src|href)="(https?:)?//', r.text)
    figures = charts(r.text)
    for member in ind.in_family(family):
        assert f'id="indicator-{member.name}"' in r.text
        assert f'href="/dashboard/download/{member.name}.csv"' in r.text
        assert f'id="table-{member.name}"' in r.text
        if f"chart-{member.name}" in figures:
            fig = figures[f"chart-{member.name}"]
            assert fig["data"] and all(trace["type"] == "bar" for trace in fig["data"])
            assert fig["layout"]["title"]["text"] == member.title
    assert "</script" not in "".join(re.findall(r'data-chart="[^"]+">(.*?)</script>', r.text, re.S))


def test_charts_and_tables_are_drawn_where_the_demo_has_data(analyst: TestClient) -> None:
    figures = charts(analyst.get("/dashboard/coverage").text)
    fig = figures["chart-ehr_coverage"]
    assert sum(len(t["y"]) for t in fig["data"]) >= 10
    assert all(0 < y <= 100 for t in fig["data"] for y in t["y"])
    emr = charts(analyst.get("/dashboard/emr").text)["chart-emr_deployment"]
    assert {t["name"] for t in emr["data"]} >= {"public", "private"}


def test_small_cells_read_less_than_five_on_the_page_and_in_both_downloads(
    analyst: TestClient,
) -> None:
    rows = table(analyst.get("/dashboard/diseases").text, "disease_chapters")
    assert any(r[2] == "<5" for r in rows) and any(r[2] != "<5" for r in rows)
    published = download_csv(analyst, "/dashboard/download/disease_chapters.csv")
    assert [r["people"] for r in published] == [r[2] for r in rows]
    marked = [r for r in published if r["people"] == "<5"]
    assert marked and all(
        int(r["people"]) >= ind.SUPPRESS_BELOW for r in published if r not in marked
    )
    x = analyst.get("/dashboard/download/disease_chapters.xlsx")
    assert x.status_code == 200 and x.headers["content-disposition"].startswith("attachment;")
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == ["month", "chapter", "people"]
    assert [str(v[2]) for v in values[1:]] == [r["people"] for r in published]


def test_a_province_filter_gives_only_that_province(
    dashboard: Dashboard, analyst: TestClient
) -> None:
    code = largest_province(dashboard)
    everywhere = download_csv(analyst, "/dashboard/download/ehr_coverage.csv")
    only = download_csv(analyst, f"/dashboard/download/ehr_coverage.csv?province={code}")
    assert len(everywhere) > 10
    assert [r["province_code"] for r in only] == [code]
    page = analyst.get(f"/dashboard/coverage?province={code}").text
    assert [row[0] for row in table(page, "ehr_coverage")] == [code]
    assert f'href="/dashboard/emr?province={code}"' in page  # the filter follows the links
    assert f'href="/dashboard/download/ehr_coverage.xlsx?province={code}"' in page
    assert f'<option value="{code}" selected>' in page


def test_a_period_filter_narrows_the_months(analyst: TestClient) -> None:
    every = download_csv(analyst, "/dashboard/download/disease_chapters.csv")
    months = sorted({r["month"] for r in every})
    start, end = months[len(months) // 3], months[2 * len(months) // 3]
    some = download_csv(analyst, f"/dashboard/download/disease_chapters.csv?from={start}&to={end}")
    assert some and len(some) < len(every)
    assert {r["month"] for r in some} <= {m for m in months if start <= m <= end}
    page = analyst.get(f"/dashboard/diseases?from={start}&to={end}").text
    assert f'value="{start}"' in page and f'value="{end}"' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("province=99", "Unknown province code"),
        ("from=2026/01", "from must be a month"),
        ("from=2026-06&to=2026-01", "starts (2026-06) after it ends"),
    ],
)
def test_bad_filters_get_a_clear_error(analyst: TestClient, query: str, message: str) -> None:
    r = analyst.get(f"/dashboard/diseases?{query}")
    assert r.status_code == 400 and message in r.text
    d = analyst.get(f"/dashboard/download/disease_chapters.csv?{query}")
    assert d.status_code == 400 and message in d.json()["issue"][0]["diagnostics"]


def test_unknown_families_and_indicators_are_404(analyst: TestClient) -> None:
    assert analyst.get("/dashboard/nosuchfamily").status_code == 404
    assert analyst.get("/dashboard/download/nosuch.csv").status_code == 404
    assert analyst.get("/dashboard/download/ehr_coverage.pdf").status_code == 404


def test_the_about_page_names_the_build_and_the_rule(analyst: TestClient) -> None:
    r = analyst.get("/dashboard/about")
    assert r.status_code == 200
    assert "Small-cell suppression" in r.text and "&lt;5" in r.text
    assert re.search(r"last built on\s+<strong>\d{4}-\d\d-\d\d \d\d:\d\d</strong>", r.text)
    assert "sokhoe warehouse build" in r.text


def test_assets_are_served_locally(browser: TestClient) -> None:
    js = browser.get("/dashboard/static/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert b"plotly" in js.content[:2000].lower() and len(js.content) > 1_000_000
    assert browser.get("/dashboard/static/dashboard.js").status_code == 200
    assert browser.get("/dashboard/static/dashboard.css").status_code == 200
    assert browser.get("/dashboard/static/..%2Fapp.py").status_code == 404


# -- before the first build ------------------------------------------------------------------
def test_an_unbuilt_warehouse_gets_a_page_saying_what_to_run(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    settings = dashboard.settings.model_copy(update={"var_dir": tmp_path / "empty"})
    with TestClient(create_app(settings, dashboard.store), base_url=BASE) as c:
        sign_in(c, "phantich")
        for path in ("/dashboard", "/dashboard/diseases", "/dashboard/about"):
            r = c.get(path)
            assert r.status_code == 503
            assert "has not been built yet" in r.text and "sokhoe warehouse build" in r.text
        d = c.get("/dashboard/download/ehr_coverage.csv")
        assert d.status_code == 503 and "not been built" in d.json()["issue"][0]["diagnostics"]


# -- the demo's synthetic denominator --------------------------------------------------------
def test_the_demo_population_puts_every_province_between_80_and_100_percent(
    dashboard: Dashboard,
) -> None:
    with ind.open_warehouse(dashboard.settings.warehouse_dir) as con:
        result = ind.run(con, ind.indicator("ehr_coverage"), suppress_below=1)
        population = con.execute("SELECT sum(population) FROM population").fetchone()
    rows = result.rows
    assert rows and all(r["population"] >= r["people_with_record"] for r in rows)
    big = [r for r in rows if r["people_with_record"] >= 20]
    assert big and all(79.5 <= r["coverage_pct"] <= 99.5 for r in big)
    assert population and population[0] > sum(r["people_with_record"] for r in rows)


def test_the_demo_population_is_deterministic(dashboard: Dashboard, tmp_path: Path) -> None:
    from sokhoe.warehouse.demo import write_demo_population

    settings = dashboard.settings
    counts = residents_with_record(
        dashboard.store,
        Warehouse(settings.warehouse_dir, warehouse_key(settings.var_dir, settings.warehouse_key)),
    )
    assert sum(counts.values()) <= PEOPLE
    one, two = tmp_path / "a.csv", tmp_path / "b.csv"
    assert write_demo_population(counts, one, SEED) == write_demo_population(counts, two, SEED)
    assert one.read_bytes() == two.read_bytes()
    assert one.read_bytes() == (settings.var_dir / "population-demo.csv").read_bytes()


def test_an_indicator_the_warehouse_cannot_compute_yet_fails_alone(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    """A warehouse built by an older version lacks a newer indicator's table: that indicator
    says to rebuild, the rest of the page and the index still work."""
    var = tmp_path / "var"
    shutil.copytree(dashboard.settings.warehouse_dir, var / "warehouse")
    with duckdb.connect(str(var / "warehouse" / "warehouse.duckdb")) as con:
        con.execute("DROP TABLE test_price")
    settings = dashboard.settings.model_copy(update={"var_dir": var})
    with TestClient(create_app(settings, dashboard.store), base_url=BASE) as c:
        sign_in(c, "phantich")
        page = c.get("/dashboard/repeats")
        assert page.status_code == 200
        assert "sokhoe warehouse build --full" in page.text
        assert 'id="table-repeated_tests"' not in page.text
        assert c.get("/dashboard").status_code == 200
        assert c.get("/dashboard/emr").status_code == 200
        d = c.get("/dashboard/download/repeated_tests.csv")
        assert d.status_code == 503 and "--full" in d.json()["issue"][0]["diagnostics"]


def test_downloads_are_audited_as_exports(analyst: TestClient) -> None:
    auditor: AuditLog = analyst.app.state.auditor  # type: ignore[attr-defined]
    before = auditor.head().seq
    download_csv(analyst, "/dashboard/download/emr_deployment.csv?from=2026-01")
    seq = auditor.head().seq
    assert seq > before
    with auditor.engine.connect() as conn:
        row = conn.execute(select(audit_event).where(audit_event.c.seq == seq)).one()
    assert (row.action, row.outcome, row.patient_id) == ("export", "success", None)
    assert "phantich" in row.agent


def test_a_build_in_progress_gets_a_try_again_page(dashboard: Dashboard, tmp_path: Path) -> None:
    var = tmp_path / "var"
    shutil.copytree(dashboard.settings.warehouse_dir, var / "warehouse")
    settings = dashboard.settings.model_copy(update={"var_dir": var})
    with (
        TestClient(create_app(settings, dashboard.store), base_url=BASE) as c,
        duckdb.connect(str(var / "warehouse" / "warehouse.duckdb")) as building,
    ):
        building.execute("BEGIN")  # as Warehouse.build does, in this same process
        sign_in(c, "phantich")
        r = c.get("/dashboard/coverage")
        assert r.status_code == 503 and "being rebuilt" in r.text
        assert c.get("/dashboard/download/ehr_coverage.csv").status_code == 503
        building.execute("ROLLBACK")
