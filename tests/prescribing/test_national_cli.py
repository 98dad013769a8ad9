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
