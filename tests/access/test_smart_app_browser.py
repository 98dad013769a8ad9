"""A SMART app nobody here wrote connects by discovery alone: the SMART JavaScript client
``fhirclient`` (npm, pinned by ``smart_app/package-lock.json``), in Debian's Chromium, on the
test's own static pages at another origin, completes a standalone launch against a served
sokhoe: the citizen signs in with the SMS code, sees the Vietnamese consent screen (checked by
axe-core, screenshots on a desktop and a 360 px phone), allows, and the app reads its patient
and gets nothing of another person's.
See: https://hl7.org/fhir/smart-app-launch/app-launch.html and https://docs.smarthealthit.org/client-js/
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import Browser

from sokhoe.access.apps import create_app_client
from tests.browser import axe_violations, free_port, serving, shoot
from tests.clinic.clinic_world import PHONE, World, make_world
from tests.portal.privacy_world import link, person

APP_DIR = Path(__file__).parent / "smart_app"
OTHER_PHONE = "0987000111"

LAUNCH = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Launch</title>
<script src="fhir-client.js"></script></head><body><p>Connecting…</p><script>
const q = new URLSearchParams(location.search);
FHIR.oauth2.authorize({
  clientId: q.get("client"), iss: q.get("iss"), redirectUri: "app.html",
  scope: "launch/patient openid fhirUser offline_access patient/*.rs", pkceMode: "required"
});
</script></body></html>"""

APP = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>App</title>
<script src="fhir-client.js"></script></head><body><pre id="out">waiting</pre><script>
const out = document.getElementById("out");
FHIR.oauth2.ready().then(async (client) => {
  const me = await client.patient.read();
  const every = await client.request("Patient");
  let other;
  try { other = "read " + (await client.request("Patient/p-binh")).id; }
  catch (e) { other = "refused " + (e.status || e.statusCode || e.message); }
  out.textContent = JSON.stringify({
    patient: client.patient.id, id: me.id, family: me.name[0].family,
    others: (every.entry || []).map((e) => e.resource.id), other,
    user: client.getFhirUser(), refresh: !!client.state.tokenResponse.refresh_token,
  });
}).catch((e) => { out.textContent = "error " + e; });
</script></body></html>"""


def _install() -> Path:
    """``npm ci`` from the lock file when fhirclient is missing or not the locked version,
    one process at a time (as ``tests/access/oidc_provider`` is installed)."""
    lock = APP_DIR / "package-lock.json"
    wanted = json.loads(lock.read_text())["packages"]["node_modules/fhirclient"]["version"]
    installed = APP_DIR / "node_modules" / "fhirclient" / "package.json"
    with lock.open() as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (installed.is_file() and json.loads(installed.read_text())["version"] == wanted):
            npm = shutil.which("npm")
            assert npm is not None, "npm (Node.js 20) is needed: `make system-deps`"
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=APP_DIR,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-2000:]
    return APP_DIR / "node_modules" / "fhirclient" / "build" / "fhir-client.js"


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, str, str]]:
    """sokhoe served on one port (allowing the app's origin through CORS, as a deployment
    that hosts such an app would), the app's static pages on another."""
    port, app_port = free_port(), free_port()
    base, origin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{app_port}"
    pages = tmp_path_factory.mktemp("smart-app")
    shutil.copy(_install(), pages / "fhir-client.js")
    (pages / "launch.html").write_text(LAUNCH, encoding="utf-8")
    (pages / "app.html").write_text(APP, encoding="utf-8")
    os.environ["SOKHOE_CORS_ORIGINS"] = json.dumps([origin])
    try:
        world = make_world(tmp_path_factory.mktemp("smart-world"), base)
    finally:
        del os.environ["SOKHOE_CORS_ORIGINS"]
    link(world)
    person(world, "p-binh", ("Trần", "Văn Bình"), "1990-01-01")
    link(world, OTHER_PHONE, "p-binh")
    made = create_app_client(
        world.app.state.tokens.engine, "Sổ tay Sức khỏe", [f"{origin}/app.html"], public=True
    )
    static = FastAPI()
    static.mount("/", StaticFiles(directory=pages, html=True))
    with serving(world.app, port), serving(static, app_port):
        yield world, base, origin, made.client_id


def _sms_code(world: World) -> str:
    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return str(re.findall(r"\b\d{6}\b", text)[0])


def test_fhirclient_completes_a_standalone_launch_and_reads_only_its_patient(
    chromium: Browser, launched: tuple[World, str, str, str]
) -> None:
    world, base, origin, client_id = launched
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    problems: dict[str, Any] = {}
    page.goto(f"{origin}/launch.html?client={client_id}&iss={base}/fhir")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/auth/authorize\?"))
    page.get_by_role("link", name="Tôi là người dân: đăng nhập bằng số điện thoại").click()
    page.get_by_label("Số điện thoại di động").fill(PHONE)
    page.get_by_role("button", name="Gửi mã cho tôi").click()
    page.wait_for_selector("#code")
    page.keyboard.type(_sms_code(world))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/auth/authorize\?"))
    heading = page.locator("h1").inner_text()
    assert heading == "Cho phép “Sổ tay Sức khỏe” dùng sổ sức khỏe của bạn?"
    assert "Đọc hồ sơ sức khỏe của bạn" in page.locator("main").inner_text()
    problems["desktop"] = axe_violations(page)
    shoot(page, "portal/ket-noi-ung-dung")
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for button in ("Cho phép", "Từ chối"):
        box = page.get_by_role("button", name=button).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44
    problems["phone"] = axe_violations(page)
    shoot(page, "portal/ket-noi-ung-dung-dien-thoai")
    assert problems == {"desktop": [], "phone": []}
    page.get_by_role("button", name="Cho phép").click()
    page.wait_for_url(re.compile(rf"^{re.escape(origin)}/app\.html"))
    page.wait_for_function("document.getElementById('out').textContent !== 'waiting'")
    text = page.locator("#out").inner_text()
    assert not text.startswith("error"), text
    result = json.loads(text)
    assert result["patient"] == result["id"] == world.patient_id == "p-an"
    assert result["family"] == "Nguyễn" and result["others"] == ["p-an"]
    assert result["other"] in ("refused 403", "refused 404"), result["other"]
    assert result["user"] == "Patient/p-an" and result["refresh"] is True  # from the id_token
    # the citizen's access log names the app
    log = page.context.new_page()
    log.goto(f"{base}/portal/access-log")
    assert "Ứng dụng Sổ tay Sức khỏe" in log.locator("main").inner_text()
    context.close()
