"""What the portal's tests share: the clinic world (a commune station in Phường Hoàn Kiếm, a
person known at a hospital) and a citizen signed in through the pages with the code the SMS
outbox received."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

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
