"""Deactivating a staff account or a connected system ends the tokens it holds at once.

The deactivation runs through the ``sokhoe`` command on its own database connection, as an
administrator would run it beside the server, so what the server sees is only the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sokhoe.access.accounts import create_user
from sokhoe.access.clients import create_client
from sokhoe.cli import app as cli_app
from sokhoe.config import Settings
from sokhoe.store.ports import FhirStore
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS

pytestmark = pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
PASSWORD = "mật-khẩu-dài-2026"


@pytest.fixture
def api(store: FhirStore, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, var_dir=tmp_path)
    with TestClient(create_app(settings, store), base_url=BASE) as c:
        yield c


def _cli(store: FhirStore, *args: str) -> str:
    assert isinstance(store, SqlStore)
    done = CliRunner().invoke(cli_app, [*args, "--db", store.url])
    assert done.exit_code == 0, done.output
    return done.output


def _staff_token(api: TestClient, username: str) -> dict[str, str]:
    r = api.post("/auth/staff/sign-in", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _refused(api: TestClient, headers: dict[str, str]) -> str:
    r = api.get("/fhir/Patient", headers=headers)
    assert r.status_code == 401, r.text
    return str(r.json()["issue"][0]["diagnostics"])


def test_a_deactivated_staff_member_s_token_is_refused(api: TestClient, store: FhirStore) -> None:
    engine = api.app.state.tokens.engine  # type: ignore[attr-defined]
    create_user(engine, "bs.an", PASSWORD, "doctor", "BS. An", "79001", hasher=FAST_HASHER)
    create_user(engine, "bs.binh", PASSWORD, "doctor", "BS. Bình", "79001", hasher=FAST_HASHER)
    an, binh = _staff_token(api, "bs.an"), _staff_token(api, "bs.binh")
    assert api.get("/fhir/Patient", headers=an).status_code == 200

    assert "deactivated bs.an" in _cli(store, "user", "deactivate", "bs.an")
    assert "not active" in _refused(api, an)
    assert api.get("/fhir/Patient", headers=binh).status_code == 200  # only hers end
    again = api.post("/auth/staff/sign-in", json={"username": "bs.an", "password": PASSWORD})
    assert again.status_code == 401


def test_a_deactivated_system_s_token_is_refused(api: TestClient, store: FhirStore) -> None:
    engine = api.app.state.tokens.engine  # type: ignore[attr-defined]
    his = create_client(engine, "HIS Bệnh viện A", ["system/*.cruds"], "79001")
    form = {
        "grant_type": "client_credentials",
        "client_id": his.client_id,
        "client_secret": his.client_secret,
    }
    r = api.post("/auth/token", data=form)
    assert r.status_code == 200, r.text
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert api.get("/fhir/Patient", headers=token).status_code == 200

    assert f"deactivated {his.client_id}" in _cli(store, "client", "deactivate", his.client_id)
    assert "not active" in _refused(api, token)
    assert api.post("/auth/token", data=form).status_code == 401


def test_deactivating_an_unknown_account_is_an_error(store: FhirStore) -> None:
    assert isinstance(store, SqlStore)
    for args in (["user", "deactivate", "nobody"], ["client", "deactivate", "c-nobody"]):
        done = CliRunner().invoke(cli_app, [*args, "--db", store.url])
        assert done.exit_code == 2
        assert "No " in done.output
