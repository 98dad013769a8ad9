"""What the portal's tests share: the clinic world (a commune station in Phường Hoàn Kiếm, a
person known at a hospital) and a citizen signed in through the pages with the code the SMS
outbox received."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from sokhoe.access.guardians import with_wards
from sokhoe.access.otp import citizen_principal
from sokhoe.portal import declaration
from sokhoe.portal.sections import BY_LINK
from sokhoe.web.i18n import catalogue
from tests.clinic.clinic_world import World
from tests.conftest import BASE

WARD = "00070"
"""Phường Hoàn Kiếm, Thành phố Hà Nội: the ward of the world's commune station A."""


def last_code(world: World, phone: str) -> str:
    """The one-time code last sent to ``phone`` (read from the development SMS outbox)."""
    outbox = Path(world.settings.var_dir) / "sms-outbox.jsonl"
    digits = phone[-9:]
    for line in reversed(outbox.read_text(encoding="utf-8").splitlines()):
        message = json.loads(line)
        if str(message["to"]).endswith(digits):
            found = re.search(r"\b(\d{6})\b", message["text"])
            assert found is not None, message
            return found.group(1)
    raise AssertionError(f"no SMS to {phone}")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


def sign_in(
    world: World,
    phone: str,
    user_agent: str = "Mozilla/5.0 (Linux; Android 10) Chrome/120.0 Mobile Safari/537.36",
) -> TestClient:
    """A phone signed in to the portal the way a citizen does it."""
    client = TestClient(world.app, base_url=BASE, headers={"User-Agent": user_agent})
    page = client.post("/portal/sign-in", data={"phone": phone, "next": "/portal"})
    assert page.status_code == 200, page.text
    challenge = re.search(r'name="challenge" value="([^"]*)"', page.text)
    assert challenge is not None
    form = {"phone": phone, "code": last_code(world, phone), "challenge": challenge.group(1)}
    done = client.post("/portal/verify", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client


def declare_the_rest(world: World, patient_id: str, phone: str) -> None:
    """Answer "no" or the plainest answer to the sections a browser test does not walk
    through (the HTTP tests cover each screen), as the citizen of ``phone``."""
    who = with_wards(world.platform, citizen_principal(phone, patient_id))
    repo = world.platform.for_caller(who)
    vi = catalogue("vi", "portal").gettext
    answers: dict[str, dict[str, Any]] = {
        "about": {"occupation": "Giáo viên"},
        "blood": {"abo": "unknown"},
        "surgeries": {"surgeries-any": False},
        "disabilities": {"disabilities-any": False},
        "family": {"family-any": False},
        "vaccines": {"vaccines-any": False},
        "tobacco": {"tobacco": "never"},
        "alcohol": {"alcohol": "never"},
        "activity": {"activity-days": 2},
        "exposure": {"exposure-any": False},
        "birth": {},
    }
    for link, given in answers.items():
        declaration.save(repo, patient_id, BY_LINK[link], given, done=True, translate=vi)
