"""``sokhoe prescriptions deliver --once`` and ``outbox`` on a SQLite database, with the
settings from the environment as a deployment gives them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sokhoe.cli import app
from sokhoe.prescribing.national.outbox import pending
from sokhoe.store.sql import SqlStore
from tests.prescribing.national_standin import APP_KEY, APP_NAME
from tests.prescribing.national_world import CCHN, SECRET, A, make_world


def test_deliver_once_sends_what_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url)
    world = make_world(store)
    try:
        code, _ = world.issue()
        login = {"code": "LT-79001", "password": SECRET}
        for name, value in {
            "SOKHOE_NATIONAL_RX_URL": world.standin.url,
            "SOKHOE_NATIONAL_RX_APP_NAME": APP_NAME,
            "SOKHOE_NATIONAL_RX_APP_KEY": APP_KEY,
            "SOKHOE_NATIONAL_RX_FACILITIES": json.dumps({A: login}),
            "SOKHOE_NATIONAL_RX_DOCTORS": json.dumps(
                {CCHN: {"code": "BS-0001", "password": SECRET}}
            ),
            "SOKHOE_VAR_DIR": str(tmp_path / "var"),
        }.items():
            monkeypatch.setenv(name, value)

        waiting = CliRunner().invoke(app, ["prescriptions", "outbox", "--db", url])
        assert waiting.exit_code == 0, waiting.output
        assert json.loads(waiting.output)["key"] == f"{code.upper()}:prescription"

        result = CliRunner().invoke(app, ["prescriptions", "deliver", "--once", "--db", url])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["delivered"] == 1
        assert pending(world.engine) == []
        assert code[:-1] + "c" in world.standin.prescriptions
        assert world.standin.invalid == []
    finally:
        world.standin.stop()
        store.close()


def test_the_server_delivers_by_itself_when_asked(tmp_path: Path) -> None:
    import time

    from fastapi.testclient import TestClient

    from sokhoe.config import NationalLogin, Settings
    from sokhoe.web.app import create_app
    from tests.conftest import BASE

    store = SqlStore(f"sqlite:///{tmp_path / 'server.db'}")
    world = make_world(store)
    try:
        code, _ = world.issue()
        settings = Settings(
            base_url=BASE,
            var_dir=tmp_path / "var",
            national_rx_url=world.standin.url,
            national_rx_facilities={A: NationalLogin(code="LT-79001", password=SECRET)},
            national_rx_doctors={CCHN: NationalLogin(code="BS-0001", password=SECRET)},
            national_rx_deliver=True,
            national_rx_poll_seconds=0.2,
        )
        with TestClient(create_app(settings, store), base_url=BASE):
            deadline = time.monotonic() + 20
            while pending(world.engine) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert pending(world.engine) == []
        assert world.standin.sends_of(code[:-1] + "c") == 1
    finally:
        world.standin.stop()
        store.close()
