"""The health department's dashboard: who may see it, what each page shows, downloads that
parse with hidden cells marked ``x``, filters that narrow, a clear page when the warehouse is
not built; an analyst who requests every area and period and subtracts gets no hidden count
back; coverage against a denominator the test chooses; every page in Vietnamese whatever the
browser's language, in English on request. Over a real SQLite store, a real DuckDB warehouse
and the real app."""

from __future__ import annotations

import csv
import io
import math
import random
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from scipy.optimize import linprog  # type: ignore[import-untyped]
from sqlalchemy import select

from sokhoe.access.accounts import create_user
from sokhoe.access.audit import AuditLog
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.guard import platform_repository
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.demo import write_demo
from sokhoe.interop.load import load_paths
from sokhoe.registry.places import province_by_code, provinces
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from sokhoe.warehouse import indicators as ind
from sokhoe.warehouse.build import Warehouse, warehouse_key
from sokhoe.warehouse.demo import build_demo_warehouse, residents_with_record
from sokhoe.web import i18n
from sokhoe.web.app import create_app
from sokhoe.web.dashboard_labels import label
from sokhoe.web.sessions import CSRF_COOKIE
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS, platform_token

PASSWORD = "mật-khẩu-dài-2026"
MARK = "x"
"""How a hidden cell reads (typed here, not imported: the pages are checked against it)."""
PEOPLE = 300
SEED = 7


@dataclass
class Dashboard:
    """A demo population loaded into SQLite, its warehouse built, staff accounts made."""

    settings: Settings
    store: SqlStore
    demo: Path
    """The generated NDJSON the store was loaded from."""

    def app(self) -> FastAPI:
        return create_app(self.settings, self.store)


def make_dashboard(folder: Path, people: int = PEOPLE, seed: int = SEED) -> Dashboard:
    """Used by the browser test too (over a real server)."""
    db = f"sqlite:///{folder / 'dashboard.db'}"
    store = SqlStore(db)
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url=db, var_dir=folder / "var")
    write_demo(folder / "demo", people, seed, "ndjson", progress=False)
    report = load_paths(
        platform_repository(store, settings.fhir_base), [folder / "demo"], workers=0
    )
    assert report.errors == []
    build_demo_warehouse(store, settings, seed)
    engine = create_app(settings, store).state.tokens.engine
    create_user(engine, "phantich", PASSWORD, "analyst", "Phân tích viên", hasher=FAST_HASHER)
    create_user(
        engine, "bacsi", PASSWORD, "doctor", "BS. Demo", facility="79001", hasher=FAST_HASHER
    )
    return Dashboard(settings, store, folder / "demo")


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


def plain(value: object) -> object:
    """A cell from a CSV or a workbook, comparable across both (Excel keeps 100.0 as 100)."""
    if value is None or value == "":
        return ""
    try:
        return float(str(value))
    except ValueError:
        return str(value)


def vi(message: str) -> str:
    """``message`` as the Vietnamese catalogue says it (and it must be translated)."""
    found = i18n.catalogue("vi", "dashboard").gettext(message)
    assert found != message, f"no Vietnamese for {message!r}"
    return found


def as_row(indicator: ind.Indicator, row: dict[str, str]) -> list[str]:
    """A downloaded row as the page's Vietnamese table prints it."""
    words = {"True": "có", "False": "không"}
    cube = indicator.cube
    names = {c for tier in cube.tiers for c in (*tier.key, *tier.labels)}
    names |= {*cube.dimensions, cube.period or ""}
    return [
        words[v]
        if v in words
        else as_date(v)
        if k in ("month", "week")
        else label("vi", k, v)
        if k in names
        else as_shown(v)
        for k, v in row.items()
    ]


def as_shown(text: str) -> str:
    """A number from a CSV as the Vietnamese page prints it: ``1.234`` and ``12,5``."""
    if text == MARK or not text:
        return text
    shown = f"{float(text):,.1f}" if "." in text else f"{int(text):,}"
    return shown.translate(str.maketrans(",.", ".,"))


def as_date(text: str) -> str:
    """A month (``2026-01``) or a week's Monday (``2026-01-05``) as the pages write them."""
    return "/".join(reversed(text.split("-")))


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
    assert "cán bộ phân tích số liệu và quản trị hệ thống" in r.text
    assert "đang đăng nhập với vai trò bác sĩ" in r.text
    assert "<table" not in r.text and 'id="sign-out"' in r.text
    r = browser.get("/dashboard/coverage?lang=en")
    assert r.status_code == 403
    assert "analysts and system administrators" in r.text and "signed in as doctor" in r.text
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
        r'id="summary-coverage">(\d+,\d)% người dân đã có hồ sơ sức khỏe điện tử '
        r"\(tính trên (\d+) tỉnh/thành phố có số liệu được công bố\)",
        r.text,
    )
    assert coverage and 80 <= float(coverage.group(1).replace(",", ".")) <= 100
    assert int(coverage.group(2)) <= 34  # the by-commune breakdown is not counted again
    assert re.search(
        r'id="summary-emr">\d+ trên \d+ cơ sở đã triển khai bệnh án điện tử \(\d+,\d%\)', r.text
    )
    english = analyst.get("/dashboard?lang=en").text
    assert re.search(r'id="summary-coverage">\d+\.\d% of residents have a record', english)
    assert re.search(r'id="summary-emr">EMR live in \d+ of \d+ facilities', english)


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
            assert fig["layout"]["title"]["text"] == vi(member.title)
            assert fig["layout"]["separators"] == ",."  # 1.234,5
    assert "</script" not in "".join(re.findall(r'data-chart="[^"]+">(.*?)</script>', r.text, re.S))


def test_the_prescribing_family_reads_in_vietnamese(analyst: TestClient) -> None:
    """The demo's prescriptions (without codes: one per visit) against its visits, per facility
    and month: no ATC codes, so no antibiotic; a small demo over many facilities, so most
    cells are hidden, their counts and rates together."""
    page = analyst.get("/dashboard/medication").text
    assert "Đơn thuốc có kháng sinh trên 100 lượt khám, theo cơ sở và tháng" in page
    assert '<th scope="col">Đơn có kháng sinh trên 100 lượt khám</th>' in page
    rows = table(page, "antibiotic_prescriptions")
    assert len(rows) > 10
    for row in rows:  # visits ... antibiotic per 100 visits, share with an antibiotic
        counts, rates = row[4:7], row[7:9]
        assert (MARK in counts) == (rates == [MARK, MARK]), row
        assert rates in ([MARK, MARK], ["0,0", "0,0"]), row
    assert 'id="summary-medication">' in analyst.get("/dashboard").text


def test_charts_and_tables_are_drawn_where_the_demo_has_data(analyst: TestClient) -> None:
    figures = charts(analyst.get("/dashboard/coverage").text)
    fig = figures["chart-ehr_coverage"]
    assert sum(len(t["y"]) for t in fig["data"]) >= 10
    assert all(0 < y <= 100 for t in fig["data"] for y in t["y"])
    emr = charts(analyst.get("/dashboard/emr").text)["chart-emr_deployment"]
    assert {t["name"] for t in emr["data"]} >= {"Công lập", "Tư nhân"}
    assert emr["layout"]["xaxis"]["title"]["text"] == "Tuyến"
    assert "Bệnh viện tuyến tỉnh" in {x for trace in emr["data"] for x in trace["x"]}
    english = charts(analyst.get("/dashboard/emr?lang=en").text)["chart-emr_deployment"]
    assert {t["name"] for t in english["data"]} >= {"Public", "Private"}
    assert "separators" not in english["layout"]
    weekly = charts(analyst.get("/dashboard/diseases").text)["chart-disease_chapters"]
    assert weekly["layout"]["xaxis"]["tickformat"] == "%m/%Y"  # months as the tables write them


def test_hidden_cells_read_x_on_the_page_and_in_both_downloads(analyst: TestClient) -> None:
    rows = table(analyst.get("/dashboard/diseases").text, "disease_chapters")
    assert any(r[2] == MARK for r in rows) and any(r[2] != MARK for r in rows)
    published = download_csv(analyst, "/dashboard/download/disease_chapters.csv")
    assert [r["people"] for r in published] == [r[2] for r in rows]
    marked = [r for r in published if r["people"] == MARK]
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
    ("query", "message", "english"),
    [
        ("province=99", "không tồn tại (mã thống kê gồm 2 chữ số)", "Unknown province code"),
        ("from=2026/01", "“Từ tháng” phải là một tháng dạng 2026-01", "“From” must be a month"),
        (
            "from=2026-06&to=2026-01",
            "bắt đầu (06/2026) sau khi kết thúc (01/2026)",
            "starts (06/2026) after it ends (01/2026)",
        ),
    ],
)
def test_bad_filters_get_a_clear_error(
    analyst: TestClient, query: str, message: str, english: str
) -> None:
    r = analyst.get(f"/dashboard/diseases?{query}")
    assert r.status_code == 400 and message in r.text
    d = analyst.get(f"/dashboard/download/disease_chapters.csv?{query}")
    assert d.status_code == 400 and message in d.json()["issue"][0]["diagnostics"]
    r = analyst.get(f"/dashboard/diseases?{query}&lang=en")
    assert r.status_code == 400 and english in r.text
    d = analyst.get(f"/dashboard/download/disease_chapters.csv?{query}")  # the cookie says en
    assert d.status_code == 400 and english in d.json()["issue"][0]["diagnostics"]


def test_unknown_families_and_indicators_are_404(analyst: TestClient) -> None:
    assert analyst.get("/dashboard/nosuchfamily").status_code == 404
    assert analyst.get("/dashboard/download/nosuch.csv").status_code == 404
    assert analyst.get("/dashboard/download/ehr_coverage.pdf").status_code == 404


def test_the_about_page_names_the_build_and_the_rule(analyst: TestClient) -> None:
    r = analyst.get("/dashboard/about")
    assert r.status_code == 200
    assert "Ẩn các ô có số liệu nhỏ" in r.text and f"“{MARK}”" in r.text
    assert "<em>ẩn bổ sung</em>" in r.text
    assert re.search(r"lần gần nhất lúc <strong>\d\d:\d\d \d\d/\d\d/\d{4}</strong>", r.text)
    assert "sokhoe warehouse build" in r.text
    r = analyst.get("/dashboard/about?lang=en")
    assert "Small-cell suppression" in r.text and "complementary suppression" in r.text
    assert re.search(r"last built at <strong>\d\d:\d\d \d\d/\d\d/\d{4}</strong>", r.text)


def test_assets_are_served_locally(browser: TestClient) -> None:
    js = browser.get("/dashboard/static/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert b"plotly" in js.content[:2000].lower() and len(js.content) > 1_000_000
    assert browser.get("/dashboard/static/dashboard.js").status_code == 200
    assert browser.get("/dashboard/static/dashboard.css").status_code == 200
    assert browser.get("/dashboard/static/..%2Fapp.py").status_code == 404


# -- Vietnamese first, English on request -----------------------------------------------------
PAGES = ["/dashboard", *(f"/dashboard/{family}" for family in ind.FAMILIES), "/dashboard/about"]
ENGLISH_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


def lang_of(html: str) -> str:
    found = re.search(r'<html lang="([a-z]+)">', html)
    assert found, "no <html lang>"
    return found.group(1)


def own_words(path: str) -> list[str]:
    """English messages a page shows (its heading, its indicators' titles and headings)."""
    family = path.removeprefix("/dashboard").strip("/")
    if family == "":
        return ["Health department dashboard", "Electronic health record coverage"]
    if family == "about":
        return ["Small-cell suppression", "Source"]
    titles = [member.title for member in ind.in_family(family)]
    return [ind.FAMILIES[family], *titles, "Download:"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_vietnamese_whatever_the_browser_says(analyst: TestClient, path: str) -> None:
    r = analyst.get(path, headers=ENGLISH_BROWSER)
    assert r.status_code == 200, r.text
    assert lang_of(r.text) == "vi"
    assert "sokhoe_lang" not in r.headers.get("set-cookie", "")  # nothing chosen, nothing kept
    for words in ("Tổng quan", "Về số liệu", "Mô hình bệnh tật", "Xét nghiệm lặp lại"):
        assert words in r.text
    assert "Giám sát bệnh truyền nhiễm và cảnh báo dịch" in r.text
    assert "Chỉ công bố số liệu tổng hợp" in r.text  # the footer
    assert "Overview" not in r.text and "About these numbers" not in r.text
    for message in own_words(path):
        assert vi(message) in r.text and f">{message}<" not in r.text
    # the switch to English, in the header, keeping the page
    switch = re.search(
        r'<a id="lang-switch" href="([^"]+)" lang="en" hreflang="en">English</a>', r.text
    )
    assert switch and switch.group(1) == f"{path}?lang=en"


@pytest.mark.parametrize("path", PAGES)
def test_english_on_request_then_remembered(browser: TestClient, path: str) -> None:
    sign_in(browser, "phantich")
    r = browser.get(f"{path}?lang=en")
    assert r.status_code == 200
    assert lang_of(r.text) == "en"
    assert "sokhoe_lang=en" in r.headers["set-cookie"]
    assert browser.cookies["sokhoe_lang"] == "en"
    for message in own_words(path):
        assert message in r.text
    assert "Overview" in r.text and "Tổng quan" not in r.text
    assert (
        '<a id="lang-switch" href="' + path + '?lang=vi" lang="vi" hreflang="vi">Tiếng Việt</a>'
        in r.text
    )
    again = browser.get(path, headers={"Accept-Language": "vi"})  # no ?lang=: the cookie says
    assert lang_of(again.text) == "en" and "Overview" in again.text
    assert "set-cookie" not in again.headers
    back = browser.get(f"{path}?lang=vi")
    assert lang_of(back.text) == "vi" and browser.cookies["sokhoe_lang"] == "vi"
    assert lang_of(browser.get(path).text) == "vi"


def test_the_switch_keeps_the_filters(dashboard: Dashboard, analyst: TestClient) -> None:
    code = largest_province(dashboard)
    page = analyst.get(f"/dashboard/diseases?province={code}&from=2025-01").text
    switch = re.search(r'id="lang-switch" href="([^"]+)"', page)
    assert (
        switch
        and switch.group(1) == f"/dashboard/diseases?province={code}&amp;from=2025-01&amp;lang=en"
    )
    english = analyst.get(f"/dashboard/diseases?province={code}&from=2025-01&lang=en").text
    assert (
        'href="/dashboard/diseases?province=' + code + '&amp;from=2025-01&amp;lang=vi"' in english
    )


def test_the_sign_in_and_error_pages_are_vietnamese_too(browser: TestClient) -> None:
    r = browser.get("/dashboard", headers=ENGLISH_BROWSER)
    assert lang_of(r.text) == "vi" and 'id="lang-switch"' in r.text
    assert "Đăng nhập" in r.text and "Tên đăng nhập" in r.text and "Mật khẩu" in r.text
    assert 'data-wrong="Sai tên đăng nhập, mật khẩu hoặc mã xác thực."' in r.text
    english = browser.get("/dashboard?lang=en").text
    assert lang_of(english) == "en" and "Username" in english and "Password" in english
    sign_in(browser, "phantich")
    missing = browser.get("/dashboard/nosuchfamily?lang=vi")
    assert missing.status_code == 404 and lang_of(missing.text) == "vi"
    assert "Không thể hiển thị trang này" in missing.text


def test_tables_write_numbers_dates_and_codes_the_vietnamese_way(analyst: TestClient) -> None:
    rows = table(analyst.get("/dashboard/coverage").text, "ehr_coverage")
    shown = [r[4] for r in rows if r[4] != MARK]
    assert shown and all(re.fullmatch(r"\d{1,3},\d", v) for v in shown)  # 87,5 (per cent)
    months = [r[0] for r in table(analyst.get("/dashboard/diseases").text, "disease_chapters")]
    assert months and all(re.fullmatch(r"\d\d/\d{4}", m) for m in months)  # 01/2026
    emr = table(analyst.get("/dashboard/emr").text, "emr_deployment")
    assert {r[0] for r in emr} <= {"Công lập", "Tư nhân", "Y tế bộ, ngành"}
    assert "Trạm y tế xã" in {r[1] for r in emr}
    english = table(analyst.get("/dashboard/emr?lang=en").text, "emr_deployment")
    assert "Commune health station" in {r[1] for r in english}


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
            assert "Kho dữ liệu chưa được dựng" in r.text and "sokhoe warehouse build" in r.text
        d = c.get("/dashboard/download/ehr_coverage.csv?lang=en")
        assert d.status_code == 503 and "not been built" in d.json()["issue"][0]["diagnostics"]


# -- coverage against a denominator the test chooses -----------------------------------------
def residents(demo: Path) -> Counter[tuple[str, str]]:
    """Living people per (province code, commune code), counted from the generated NDJSON: the
    home address (``use`` home or absent, the first), named as the registry names the units."""
    province_codes = {p.name: p.code for p in provinces()}
    ward_codes = {(p.code, w.name): w.code for p in provinces() for w in p.wards}
    found: Counter[tuple[str, str]] = Counter()
    for line in (demo / "Patient.ndjson").read_bytes().splitlines():
        patient = orjson.loads(line)
        if patient.get("deceasedBoolean") or "deceasedDateTime" in patient:
            continue
        homes = [a for a in patient.get("address", []) if a.get("use", "home") == "home"]
        if homes:
            province = province_codes[homes[0]["state"]]
            found[(province, ward_codes[(province, homes[0]["city"])])] += 1
    return found


def percent(part: int, whole: int) -> float:
    """``100 * part / whole`` to one decimal, halves away from zero (as published)."""
    exact = Decimal(100 * part) / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def test_coverage_is_counted_against_a_denominator_the_test_chooses(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    """A population table of the test's own (coverage from 100% down to a few percent, and a
    commune per province with residents but nobody with a record), the warehouse rebuilt with
    it: every published coverage is the test's count of residents from the NDJSON over the
    test's population, small counts are hidden, and so is a second commune wherever one is."""
    have = residents(dashboard.demo)
    rng = random.Random(2026)  # the test's own numbers, unrelated to the demo's
    population = {area: n + rng.choice([0, 1, 3, 10, 40, 200]) for area, n in sorted(have.items())}
    for code in sorted({p for p, _ in have}):
        spare = next(w for w in province_by_code(code).wards if (code, w.code) not in have)
        population[(code, spare.code)] = 25
    table_csv = tmp_path / "population.csv"
    table_csv.write_text(
        "province_code,commune_code,population\n"
        + "".join(f"{p},{c},{n}\n" for (p, c), n in sorted(population.items())),
        encoding="utf-8",
    )
    settings = dashboard.settings.model_copy(update={"var_dir": tmp_path / "var"})
    Warehouse(settings.warehouse_dir, warehouse_key(settings.var_dir)).build(
        dashboard.store, population=table_csv
    )
    counted = Counter[str]()
    for (p, _), n in have.items():
        counted[p] += n
    residents_of = Counter[str]()
    for (p, _), n in population.items():
        residents_of[p] += n

    with TestClient(create_app(settings, dashboard.store), base_url=BASE) as c:
        sign_in(c, "phantich")
        rows = download_csv(c, "/dashboard/download/ehr_coverage.csv")
        assert {r["province_code"] for r in rows} == set(counted)
        shown = []
        for row in rows:
            code, n = row["province_code"], counted[row["province_code"]]
            assert int(row["population"]) == residents_of[code]
            if n < ind.SUPPRESS_BELOW:
                assert row["people_with_record"] == row["coverage_pct"] == MARK
            if row["people_with_record"] == MARK:
                assert row["coverage_pct"] == MARK
                continue
            assert int(row["people_with_record"]) == n
            assert float(row["coverage_pct"]) == percent(n, residents_of[code])
            shown.append(code)
            communes = download_csv(
                c, f"/dashboard/download/ehr_coverage_commune.csv?province={code}"
            )
            mine = {commune: k for (p, commune), k in have.items() if p == code}
            assert {r["commune_code"] for r in communes} == set(mine)
            hidden = [mine[r["commune_code"]] for r in communes if r["people_with_record"] == MARK]
            for r in communes:
                assert int(r["population"]) == population[(code, r["commune_code"])]
                if r["people_with_record"] != MARK:
                    assert int(r["people_with_record"]) == mine[r["commune_code"]]
                    assert float(r["coverage_pct"]) == percent(
                        mine[r["commune_code"]], population[(code, r["commune_code"])]
                    )
            # the province is published: the communes hidden under it are not one alone, hold
            # at least 5 people, and more than one each (else each would be exactly one)
            assert len(hidden) != 1
            assert not hidden or (sum(hidden) >= ind.SUPPRESS_BELOW and sum(hidden) > len(hidden))
        assert len(shown) >= 5, "the demo should publish some provinces' coverage"
        small = {p for (p, _), n in have.items() if n < ind.SUPPRESS_BELOW}
        for code in sorted(small):
            listed = download_csv(
                c, f"/dashboard/download/ehr_coverage_commune.csv?province={code}"
            )
            for r in listed:
                if have[(code, r["commune_code"])] < ind.SUPPRESS_BELOW:
                    assert r["people_with_record"] == r["coverage_pct"] == MARK

        page = c.get("/dashboard/coverage").text
        assert table(page, "ehr_coverage") == [
            as_row(ind.indicator("ehr_coverage"), r) for r in rows
        ]
        drawn = charts(page)["chart-ehr_coverage"]["data"][0]["y"]
        assert drawn == [float(r["coverage_pct"]) for r in rows if r["coverage_pct"] != MARK]
        index = c.get("/dashboard").text
        summary = re.search(r'id="summary-coverage">([\d,]+)% người dân', index)
        share = 100 * sum(counted[p] for p in shown) / sum(residents_of[p] for p in shown)
        assert summary and summary.group(1) == f"{share:.1f}".replace(".", ",")
    with ind.open_warehouse(settings.warehouse_dir) as con:  # the hidden rates are right too
        for code in sorted(counted):
            raw = ind.run(
                con, ind.indicator("ehr_coverage_commune"), province=code, suppress_below=1
            )
            for cell in raw.rows:
                key = (cell["province_code"], cell["commune_code"])
                assert cell["coverage_pct"] == percent(have[key], population[key])


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
        assert r.status_code == 503 and "Kho dữ liệu đang được dựng lại" in r.text
        assert c.get("/dashboard/download/ehr_coverage.csv").status_code == 503
        building.execute("ROLLBACK")


# -- an analyst who subtracts -----------------------------------------------------------------
Cells = dict[tuple[str, ...], dict[str, str]]
"""Published cells: (indicator, area, its other columns...) -> count column -> value as
downloaded. The area is the filter for indicators whose rows are the chosen area's own cells,
``-`` for those listing areas (their rows name them)."""


def measures(indicator: ind.Indicator) -> list[str]:
    return [*indicator.cube.measures, *(r.name for r in indicator.cube.rates)]


def dimensions(indicator: ind.Indicator) -> list[str]:
    return [c for c in indicator.columns if c not in measures(indicator)]


def collect(
    c: TestClient, indicator: ind.Indicator, area: str, query: str, into: Cells
) -> list[tuple[str, ...]]:
    """Download ``indicator`` for an area and a query, add its cells to ``into`` (asserting a
    cell downloaded twice reads the same both times) and return the cells' keys."""
    suffix = "&".join(q for q in (f"province={area}" if area != "nation" else "", query) if q)
    rows = download_csv(c, f"/dashboard/download/{indicator.name}.csv?{suffix}")
    keys = []
    for row in rows:
        where = area if indicator.by == "area" else "-"
        key = (indicator.name, where, *(row[d] for d in dimensions(indicator)))
        counts = {m: row[m] for m in indicator.people}
        assert into.setdefault(key, counts) == counts, f"{key} changed with the filters"
        keys.append(key)
    return keys


def attack(
    parent: dict[str, str] | None,
    children: list[dict[str, str]],
    counts: list[str],
    parts: list[tuple[str, str]],
) -> list[str]:
    """What subtraction gives away in one group (parent = sum of children, for every count,
    and each part at most its total): the hidden counts pinned to one positive value, found by
    a linear program over the group with every hidden row counting at least one person.
    Absent parent (nothing published at all) pins nothing."""
    if parent is None:
        return []
    cells = [parent, *children]
    unknowns = [(i, col) for i, cell in enumerate(cells) for col in counts if cell[col] == MARK]
    if not unknowns:
        return []
    index = {u: j for j, u in enumerate(unknowns)}
    a_eq, b_eq = [], []
    for col in counts:
        row, rhs = np.zeros(len(unknowns)), 0.0
        for i, cell in enumerate(cells):
            sign = -1.0 if i == 0 else 1.0
            if (i, col) in index:
                row[index[(i, col)]] += sign
            else:
                rhs -= sign * int(cell[col])
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    a_ub, b_ub = [], []  # part - total <= 0, per row
    for total, part in parts:
        for i, cell in enumerate(cells):
            row, rhs = np.zeros(len(unknowns)), 0.0
            for col, sign in ((part, 1.0), (total, -1.0)):
                if (i, col) in index:
                    row[index[(i, col)]] += sign
                else:
                    rhs -= sign * int(cell[col])
            if row.any():
                a_ub.append(row)
                b_ub.append(rhs)
    bounds = [(1 if col == counts[0] else 0, None) for _, col in unknowns]
    leaks = []
    objectives = [(f"{col}#{i}", {(i, col): 1.0}) for i, col in unknowns]
    objectives += [
        (f"{total}-{part}#{i}", {(i, total): 1.0, (i, part): -1.0})
        for total, part in parts
        for i in range(len(cells))
        if (i, total) in index or (i, part) in index
    ]
    for name, terms in objectives:
        goal, constant = np.zeros(len(unknowns)), 0.0
        for (i, col), weight in terms.items():
            if (i, col) in index:
                goal[index[(i, col)]] = weight
            else:
                constant += weight * int(cells[i][col])
        ranges = []
        for sign in (1.0, -1.0):
            found = linprog(
                sign * goal,
                A_eq=np.array(a_eq) if a_eq else None,
                b_eq=np.array(b_eq) if b_eq else None,
                A_ub=np.array(a_ub) if a_ub else None,
                b_ub=np.array(b_ub) if b_ub else None,
                bounds=bounds,
                method="highs",
            )
            assert found.status in (0, 3), found.message  # the truth is feasible
            ranges.append(None if found.status == 3 else sign * found.fun + constant)
        least, most = ranges
        if least is not None and most is not None:
            low, high = math.ceil(least - 1e-6), math.floor(most + 1e-6)
            if low == high and low > 0:
                leaks.append(name)
    return leaks


def test_no_combination_of_areas_and_periods_gives_a_hidden_count_back(
    analyst: TestClient, dashboard: Dashboard
) -> None:
    """Every indicator, for the nation and every province (the coverage by commune under each
    province), over the whole period and over overlapping ranges (years, a year without its
    last month, that month alone, the middle of a year); then, for every group the pages
    publish (the nation and its provinces, a province and its communes), nothing published
    minus the rest pins a hidden count, and no row's count minus its own part is small."""
    codes = [p.code for p in provinces()]
    over_time = {"nation", codes[0], largest_province(dashboard)}
    cells: Cells = {}
    for indicator in ind.INDICATORS:
        if not indicator.people:
            continue
        for area in ["nation", *codes]:
            everything = collect(analyst, indicator, area, "", cells)
            if indicator.period is None or area not in over_time:
                continue
            periods = {key[2 + dimensions(indicator).index(indicator.period)] for key in everything}
            years = sorted({p[:4] for p in periods})
            ranges = [(f"{y}-01", f"{y}-12") for y in years]
            ranges += [(f"{y}-01", f"{y}-11") for y in years] + [
                (f"{y}-12", f"{y}-12") for y in years
            ]
            ranges += [(f"{y}-04", f"{y}-09") for y in years]
            for start, end in ranges:
                some = collect(analyst, indicator, area, f"from={start}&to={end}", cells)
                # the filter only picks the area's own cells: nothing new to subtract
                assert set(some) <= set(everything)

    groups: list[tuple[dict[str, str] | None, list[dict[str, str]], ind.Indicator]] = []
    for indicator in ind.INDICATORS:
        if indicator.by != "area" or not indicator.people:
            continue
        slices: dict[tuple[str, ...], list[dict[str, str]]] = {}
        for (name, area, *columns), values in cells.items():
            if name == indicator.name:
                kids = slices.setdefault(tuple(columns), [])
                if area != "nation":
                    kids.append(values)
        for columns_, children in slices.items():
            parent = cells.get((indicator.name, "nation", *columns_))
            groups.append((parent, children, indicator))
    communes = ind.indicator("ehr_coverage_commune")
    for code in codes:
        province = next(
            (v for (name, _, p, *_), v in cells.items() if name == "ehr_coverage" and p == code),
            None,
        )
        mine = [v for (name, _, p, *_), v in cells.items() if name == communes.name and p == code]
        if province or mine:
            groups.append((province, mine, communes))
    assert len(groups) > 100
    hidden_somewhere = 0
    for parent, children, indicator in groups:
        protected = list(indicator.people)
        column = protected[0]
        hidden = [c for c in children if c[column] == MARK]
        hidden_somewhere += len(hidden)
        if parent is not None and parent[column] != MARK:
            # the plainest attack: the published total minus the published cells
            assert len(hidden) != 1, (indicator.name, parent, children)
        if parent is not None and parent[column] == MARK:
            assert hidden, f"{indicator.name}: a hidden total is the sum of published cells"
        leaks = attack(parent, children, protected, list(indicator.cube.parts))
        assert not leaks, (indicator.name, leaks, parent, children)
    assert hidden_somewhere > 100  # the demo is small: the attack had plenty to work on
    for (name, *_), values in cells.items():  # a row's total minus its part
        for total, part in ind.indicator(name).cube.parts:
            if MARK not in (values[total], values[part]):
                left = int(values[total]) - int(values[part])
                assert left == 0 or left >= ind.SUPPRESS_BELOW, (name, values)


def test_every_route_publishes_the_same_cells(analyst: TestClient, dashboard: Dashboard) -> None:
    """The page's table, its chart data, the CSV and the Excel download of each indicator hold
    the same cells, hidden ones marked the same way; the chart never draws a hidden one."""
    code = largest_province(dashboard)
    for indicator in ind.INDICATORS:
        for query in ("", f"?province={code}"):
            csv_rows = download_csv(analyst, f"/dashboard/download/{indicator.name}.csv{query}")
            page = analyst.get(f"/dashboard/{indicator.family}{query}").text
            if csv_rows:
                assert table(page, indicator.name) == [as_row(indicator, r) for r in csv_rows]
            x = analyst.get(f"/dashboard/download/{indicator.name}.xlsx{query}")
            sheet = load_workbook(io.BytesIO(x.content)).active
            assert sheet is not None
            values = [
                [plain(v) for v in row] for row in sheet.iter_rows(min_row=2, values_only=True)
            ]
            assert values == [[plain(v) for v in r.values()] for r in csv_rows]
            figure = charts(page).get(f"chart-{indicator.name}")
            if figure and indicator.y:
                shown = sorted(float(r[indicator.y]) for r in csv_rows if r[indicator.y] != MARK)
                drawn = sorted(float(y) for trace in figure["data"] for y in trace["y"])
                assert drawn == shown
