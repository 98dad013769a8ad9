"""A citizen's one-time code reaches their phone (in development: the SMS outbox file) and
nothing else: no log record at any level carries it or the message that holds it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sokhoe.config import Settings
from sokhoe.store.ports import FhirStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_PASSWORDS

PHONE = "0912345678"


def test_one_time_codes_never_reach_the_log(
    store: FhirStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url="sqlite://", var_dir=tmp_path)
    caplog.set_level(logging.DEBUG)  # every logger, every level
    with TestClient(create_app(settings, store), base_url=BASE) as api:
        sent = api.post("/auth/citizen/code", json={"phone": "+84 912 345 678"})
        assert sent.status_code == 202, sent.text
        outbox = tmp_path / "sms-outbox.jsonl"
        text = json.loads(outbox.read_text(encoding="utf-8").splitlines()[-1])["text"]
        found = re.search(r"\b(\d{6})\b", text)
        assert found is not None, text
        code = found.group(1)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert api.post("/auth/citizen/verify", json={"phone": PHONE, "code": wrong}).is_error
        r = api.post(
            "/auth/citizen/verify",
            json={"phone": PHONE, "code": code, "challenge": sent.json()["challenge"]},
        )
        assert r.status_code == 200, r.text

    for record in caplog.records:
        message = record.getMessage()
        assert code not in message and text not in message, (record.name, message)
    assert code not in caplog.text  # formatted, with any exception text
    # not because nothing was logged: the outbox said where the code went
    sms = [r.getMessage() for r in caplog.records if r.name == "sokhoe.access.sms"]
    assert any(PHONE in m and str(outbox) in m for m in sms), sms
