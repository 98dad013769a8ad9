"""The demo prints sign-ins that work: the doctor sees their patient, the citizen their own."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from sokhoe.bootstrap import demo_accounts
from sokhoe.config import Settings
from sokhoe.demo import write_demo
from sokhoe.interop.load import load_paths
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import BASE, FAST_HASHER, FAST_PASSWORDS


def test_demo_accounts_can_sign_in(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    store = SqlStore(db)
    settings = Settings(**FAST_PASSWORDS, base_url=BASE, database_url=db, var_dir=tmp_path)
    app = create_app(settings, store)
    repo = app.state.repository
    write_demo(tmp_path / "demo", 60, 3, "bundles")
    assert load_paths(repo, [tmp_path / "demo"], workers=0).errors == []
    text = demo_accounts(repo, app.state.tokens.engine, BASE, tmp_path, hasher=FAST_HASHER)
    again = demo_accounts(repo, app.state.tokens.engine, BASE, tmp_path, hasher=FAST_HASHER)
    assert text == again  # idempotent: the same accounts and password on every start
    password = (tmp_path / "demo-password.txt").read_text(encoding="utf-8").strip()
    assert password in text
    patient_url = next(w for w in text.split() if w.endswith("/$everything"))
    with TestClient(app, base_url=BASE) as c:
        r = c.post("/auth/staff/sign-in", json={"username": "bacsi", "password": password})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        everything = c.get(patient_url.replace(BASE, ""), headers=auth)
        assert everything.status_code == 200, everything.text
        assert everything.json()["total"] > 1
        analyst = c.post("/auth/staff/sign-in", json={"username": "phantich", "password": password})
        a_auth = {"Authorization": f"Bearer {analyst.json()['access_token']}"}
        assert c.get(patient_url.replace(BASE, ""), headers=a_auth).status_code == 403
    store.close()
