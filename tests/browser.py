"""What the browser tests share: Debian's Chromium driven by Playwright (one per module), a
free loopback port, axe-core's serious and critical violations, and screenshots kept when
``SOKHOE_SCREENSHOTS`` names a folder (the guides in ``docs/`` use them)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = (
    Path(os.environ.get("SOKHOE_SCREENSHOTS", "")) if os.environ.get("SOKHOE_SCREENSHOTS") else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[None]:
    """``app`` served by uvicorn on the loopback ``port`` in a thread, for a real browser."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One Chromium per test module, not per test process: while Playwright's synchronous API
    is open it leaves its event loop set as the thread's running loop, so a later test's
    ``asyncio.run`` fails ("cannot be called from a running event loop"; it did, in
    ``tests/web/test_workers.py``, when the browser outlived its module)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations axe-core finds on the page (only the
    violations are asked for: collecting every pass takes seconds a page)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def leave_autofocus(page: Page, field: str) -> None:
    """Wait for the page's ``autofocus`` to land on ``field`` (an id), then press Escape to
    leave it, so that the next key is a page shortcut.

    Chromium gives an ``autofocus`` field its focus at a rendering opportunity, which on a
    busy machine comes after the load event ``goto`` waits for; a shortcut pressed before it
    lands is typed into the field instead (the clinic tests' rare "#visit-form" timeouts)."""
    page.wait_for_function(
        "id => document.activeElement && document.activeElement.id === id", arg=field
    )
    page.keyboard.press("Escape")


TALLEST = 2400
"""A screenshot taller than this (CSS pixels) is cut: the guide shows the top of the page."""


def shoot(page: Page, name: str, at: str | None = None) -> None:
    """Keep a screenshot ``name`` (``area/file``, without ``.png``) when screenshots are asked
    for, at one image pixel per CSS pixel (a phone's 360 px stay 360 px, whatever the
    context's device scale) so that the guides' images stay small.

    The whole page (its top :data:`TALLEST` pixels) is taken through a window as tall as the
    page, so that a bar fixed to the bottom of the screen sits at the bottom of the picture
    and not over the middle of the form; with ``at`` (a selector), one screen from just above
    that element, for what sits far down a long page."""
    if SHOTS is None:
        return
    path = SHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    screen = page.viewport_size or {"width": 1280, "height": 800}
    if at is not None:
        top = page.locator(at).first.evaluate(_PAGE_TOP)
        page.evaluate("y => window.scrollTo(0, y)", max(0, top - 16))
        page.screenshot(path=str(path), scale="css")
        return
    page.evaluate("window.scrollTo(0, 0)")  # a page opened at an anchor: its top
    height = page.evaluate("document.documentElement.scrollHeight")
    tall = min(max(height, screen["height"]), TALLEST)
    page.set_viewport_size({"width": screen["width"], "height": tall})
    try:
        page.screenshot(path=str(path), scale="css")
    finally:
        page.set_viewport_size(screen)


_PAGE_TOP = "e => e.getBoundingClientRect().top + window.scrollY"
"""An element's distance from the top of the page, in CSS pixels."""
