"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against a real
``sokhoe serve`` over a demo warehouse. Signs in through the form, waits for Plotly to draw,
checks that no script failed (a CSP violation is a console error) and that no request left
the loopback host, filters by province, downloads a CSV and signs out; every page in
Vietnamese for a browser set to English, checked by axe-core, at desktop and phone sizes, and
the switch to English reached and used from the keyboard."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
)

from tests.browser import axe_violations, free_port, shoot
from tests.web.test_dashboard import (
    MARK,
    PASSWORD,
    Dashboard,
    largest_province,
    make_dashboard,
)

DRAWN = "#chart-ehr_coverage.js-plotly-plot .plot-container svg.main-svg"
"""Plotly marks the element it drew in with ``js-plotly-plot`` and adds its SVG inside."""
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    made = make_dashboard(tmp_path_factory.mktemp("browser"), people=400, seed=5)
    try:
        yield made
    finally:
        made.store.close()


@pytest.fixture(scope="module")
def server(dashboard: Dashboard) -> Iterator[str]:
    """``sokhoe serve`` on a free loopback port over the demo database and warehouse."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = dashboard.settings
    env = {
        **os.environ,
        "SOKHOE_VAR_DIR": str(settings.var_dir),
        "SOKHOE_BASE_URL": base,
    }
    log = (settings.var_dir / "server.log").open("wb")
    command = [str(Path(sys.executable).with_name("sokhoe")), "serve", "--db"]
    command += [settings.database_url, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1"]  # one process is enough for the pages (and quicker to start)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {(settings.var_dir / 'server.log').read_text()}"
                )
            try:
                with urlopen(f"{base}/dashboard/static/dashboard.css", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except (URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


class Watch:
    """What a page did: console errors, uncaught exceptions, every URL it requested, and the
    requests that failed."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.failed: list[tuple[int, str]] = []
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("request", self._request)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _page_error(self, error: Error) -> None:
        self.errors.append(str(error))

    def _request(self, request: Request) -> None:
        self.urls.append(request.url)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append((response.status, response.url))


def sign_in(page: Page, server: str, path: str = "/dashboard") -> None:
    page.goto(f"{server}{path}")
    page.fill("#username", "phantich")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#sign-in-button")


def test_an_analyst_uses_the_dashboard_in_a_real_browser(
    chromium: Browser, server: str, dashboard: Dashboard, tmp_path: Path
) -> None:
    context = chromium.new_context(accept_downloads=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    # a blocked script (say Plotly needing 'unsafe-eval') raises this event: record them all
    page.add_init_script(
        "window.cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    watch = Watch(page)
    try:
        page.goto(f"{server}/dashboard/coverage")
        # a wrong password: the OperationOutcome's message appears, nothing else happens
        page.fill("#username", "phantich")
        page.fill("#password", "not-the-password")
        page.click("#sign-in-button")
        page.wait_for_selector("#sign-in-error:not([hidden])")
        assert page.locator("html").get_attribute("lang") == "vi"  # a browser set to English
        assert "Sai tên đăng nhập, mật khẩu hoặc mã xác thực" in page.inner_text("#sign-in-error")
        assert watch.failed == [(401, f"{server}/auth/staff/sign-in?session=cookie")]
        watch.errors, watch.failed = [], []  # the browser logs the refused POST itself

        page.fill("#password", PASSWORD)
        with page.expect_navigation():
            page.click("#sign-in-button")
        page.wait_for_selector(DRAWN)
        assert page.locator("#chart-ehr_coverage g.point").count() >= 10  # the bars
        assert page.locator("#table-ehr_coverage tbody tr").count() >= 10
        assert page.evaluate("window.cspViolations") == []

        code = largest_province(dashboard)
        page.select_option("#filter-province", code)
        with page.expect_navigation():
            page.click("#apply-filters")
        assert f"province={code}" in page.url
        page.wait_for_selector(DRAWN)
        cells = page.locator("#table-ehr_coverage tbody tr td:first-child").all_inner_texts()
        assert cells == [code]

        with page.expect_download() as info:
            page.click('a[href^="/dashboard/download/ehr_coverage.csv"]')
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.name == f"ehr_coverage-{code}.csv"
        with saved.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [r["province_code"] for r in rows] == [code]

        page.click(f'nav.families a[href="/dashboard/diseases?province={code}"]')
        page.wait_for_selector("#indicator-disease_chapters")
        hidden = page.locator("#table-disease_chapters td.suppressed").all_inner_texts()
        assert hidden and set(hidden) == {MARK}
        with page.expect_navigation():
            page.click("#clear-filters")  # all provinces: enough to draw
        assert page.url.endswith("/dashboard/diseases")
        page.wait_for_selector("#chart-disease_chapters.js-plotly-plot svg.main-svg")
        assert page.locator("#chart-disease_chapters g.point").count() > 0
        assert page.evaluate("window.cspViolations") == []

        with page.expect_navigation():
            page.click("#sign-out")
        page.wait_for_selector("#sign-in")
        assert page.locator("table").count() == 0
    finally:
        context.close()
    assert watch.failed == []
    assert watch.errors == []
    hosts = {urlsplit(u).hostname for u in watch.urls if not u.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, hosts
    assert any(u.endswith("/dashboard/static/plotly.min.js") for u in watch.urls)


PHONE_AXE = frozenset({"tong-quan", "do-bao-phu", "giam-sat"})
"""Pages axe checks again at phone size: one of each layout (cards, map and table, charts);
every page is checked at desktop size and for sideways scrolling at both."""


def test_vietnamese_pages_pass_axe_at_desktop_and_phone_sizes(
    chromium: Browser, server: str
) -> None:
    """Every page, as an English browser gets it: Vietnamese, no serious or critical axe-core
    violation, nothing wider than a phone's screen."""
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = chromium.new_context(viewport=viewport, locale="en-US", is_mobile=size == "phone")
        page = context.new_page()
        page.set_default_timeout(30_000)
        watch = Watch(page)
        try:
            page.goto(f"{server}/dashboard")
            assert page.locator("html").get_attribute("lang") == "vi"
            assert axe_violations(page) == [], "sign-in page"
            shoot(page, f"dashboard/{size}-dang-nhap")
            sign_in(page, server)
            for path, name in (
                ("/dashboard", "tong-quan"),
                ("/dashboard/coverage", "do-bao-phu"),
                ("/dashboard/emr", "benh-an-dien-tu"),
                ("/dashboard/diseases", "mo-hinh-benh-tat"),
                ("/dashboard/ncd", "benh-man-tinh"),
                ("/dashboard/repeats", "xet-nghiem-lap-lai"),
                ("/dashboard/immunisation", "tiem-chung"),
                ("/dashboard/surveillance", "giam-sat"),
                ("/dashboard/medication", "ke-don-cap-phat"),
                ("/dashboard/about", "ve-so-lieu"),
            ):
                page.goto(f"{server}{path}")
                page.wait_for_load_state("networkidle")
                assert page.locator("html").get_attribute("lang") == "vi", path
                assert "Tổng quan" in page.inner_text("nav.families")
                if size == "desktop" or name in PHONE_AXE:  # axe takes seconds a page
                    assert axe_violations(page) == [], path
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"] + 1, f"{path} scrolls sideways ({width} px)"
                shoot(page, f"dashboard/{size}-{name}")
        finally:
            context.close()
        assert watch.errors == [] and watch.failed == []


def test_the_language_switch_is_reached_and_used_from_the_keyboard(
    chromium: Browser, server: str
) -> None:
    context = chromium.new_context(viewport=DESKTOP, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        sign_in(page, server, "/dashboard/coverage")
        page.wait_for_selector(DRAWN)
        assert page.locator("html").get_attribute("lang") == "vi"
        for _ in range(10):  # the skip link, the brand, then the switch
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "lang-switch":
                break
        assert page.evaluate("document.activeElement.textContent") == "English"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/dashboard/coverage?lang=en")
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Overview" in page.inner_text("nav.families")
        page.wait_for_selector(DRAWN)
        assert axe_violations(page) == []
        assert {c["name"]: c["value"] for c in context.cookies()}["sokhoe_lang"] == "en"
        page.goto(f"{server}/dashboard")  # remembered: no ?lang= needed
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Electronic health record coverage" in page.inner_text("main")
        page.focus("#lang-switch")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.locator("html").get_attribute("lang") == "vi"
        assert "Độ bao phủ hồ sơ sức khỏe điện tử" in page.inner_text("main")
    finally:
        context.close()
