"""Token-signing keys at rest: sealed with the key-encryption key in the database and in its
backups, unusable (but harmless) under another key, and plain keys of older releases sealed."""

from __future__ import annotations

import base64
import logging
import secrets
import stat
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sokhoe.access.db import access_engine
from sokhoe.access.kek import KEY_FILE, KeyEncryptionKey, SealError, load_key_encryption_key
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.cli import app as cli_app
from sokhoe.config import Settings
from sokhoe.store.ports import FhirStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import auth_signing_key
from sokhoe.store.sql.backup import pg_tool
from sokhoe.web.app import create_app
from tests.conftest import BASE, platform_token

SQL_BACKENDS = pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
CITIZEN = Principal(kind="citizen", subject="0912345678", display="0912345678")


def _b64_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _sql(store: FhirStore) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def _database_bytes(store: SqlStore) -> bytes:
    """What lies on disk: the SQLite file and its write-ahead log, or the PostgreSQL heap file
    of the key table after a checkpoint."""
    if store.dialect == "sqlite":
        path = Path(str(make_url(store.url).database))
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with store.writer.connect() as conn:
        conn.execute(text("CHECKPOINT"))
        data = conn.execute(text("SHOW data_directory")).scalar_one()
        relation = conn.execute(text("SELECT pg_relation_filepath('auth_signing_key')")).scalar()
    return (Path(data) / str(relation)).read_bytes()


def _backup_text(store: SqlStore, out: Path) -> bytes:
    """The bytes of a ``sokhoe backup``; for PostgreSQL as the SQL its (compressed) dump holds."""
    done = CliRunner().invoke(cli_app, ["backup", "--db", store.url, "--out", str(out)])
    assert done.exit_code == 0, done.output
    if store.dialect == "sqlite":
        return out.read_bytes()
    return subprocess.run(
        [pg_tool("pg_restore"), "--file=-", str(out)], check=True, capture_output=True
    ).stdout


@SQL_BACKENDS
def test_signing_keys_are_sealed_in_the_database_and_its_backup(
    store: FhirStore, tmp_path: Path
) -> None:
    sql = _sql(store)
    kek = KeyEncryptionKey.generate()
    tokens = TokenService(sql.writer, kek=kek)
    kid, secret = tokens.rotate()
    token, _ = tokens.issue(CITIZEN)
    # the secret rotate() told us is the one that signs
    assert jwt.get_unverified_header(token)["kid"] == kid
    assert (
        jwt.decode(token, secret, algorithms=["HS256"], issuer="sokhoe")["sub"] == CITIZEN.subject
    )
    with sql.writer.begin() as conn:
        stored = conn.execute(
            select(auth_signing_key.c.secret).where(auth_signing_key.c.kid == kid)
        ).scalar_one()
    assert stored.startswith(f"kek1:{kek.key_id}:")
    assert kek.open(stored, kid) == secret
    with pytest.raises(SealError):
        kek.open(stored, "another-kid")  # a sealed secret copied onto another row does not open

    on_disk = _database_bytes(sql)
    assert stored.encode() in on_disk  # we are looking at the bytes that hold the key row
    assert secret.encode() not in on_disk
    backup = _backup_text(sql, tmp_path / "backup" / "sokhoe.backup")
    assert stored.encode() in backup
    assert secret.encode() not in backup


@SQL_BACKENDS
def test_under_another_key_old_tokens_get_401_and_new_ones_work(
    store: FhirStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server whose key-encryption key differs (a database restored on another machine)
    sees the same rows as the first server but cannot open their keys."""
    here = Settings(base_url=BASE, var_dir=tmp_path / "a", key_encryption_key=SecretStr(_b64_key()))
    elsewhere = here.model_copy(
        update={"var_dir": tmp_path / "b", "key_encryption_key": SecretStr(_b64_key())}
    )
    with TestClient(create_app(here, store), base_url=BASE) as first:
        old = {"Authorization": f"Bearer {platform_token(first.app)}"}  # type: ignore[arg-type]
        assert first.get("/fhir/Patient", headers=old).status_code == 200
    with TestClient(create_app(elsewhere, store), base_url=BASE) as second:
        refused = second.get("/fhir/Patient", headers=old)
        assert refused.status_code == 401, refused.text
        assert refused.json()["issue"][0]["code"] == "login"
        with caplog.at_level(logging.WARNING, logger="sokhoe.access.tokens"):
            new = {"Authorization": f"Bearer {platform_token(second.app)}"}  # type: ignore[arg-type]
        assert second.get("/fhir/Patient", headers=new).status_code == 200
        assert second.get("/fhir/Patient", headers=old).status_code == 401
    assert any("cannot be opened" in r.getMessage() for r in caplog.records)
    kids = [jwt.get_unverified_header(h["Authorization"][7:])["kid"] for h in (old, new)]
    assert kids[0] != kids[1]


def test_plain_keys_of_an_older_release_are_sealed_on_first_use(
    store: FhirStore, caplog: pytest.LogCaptureFixture
) -> None:
    engine = access_engine(store)
    now = datetime.now(UTC)
    # a deployment that rotated its key a few times: one signing, four retired
    plain = {kid: secrets.token_urlsafe(48) for kid in ("current", "r1", "r2", "r3", "r4")}
    with engine.begin() as conn:
        conn.execute(
            insert(auth_signing_key),
            [
                {
                    "kid": kid,
                    "secret": secret,
                    "created": now - timedelta(days=1 + i),
                    "retired": None if kid == "current" else now - timedelta(days=i),
                }
                for i, (kid, secret) in enumerate(plain.items())
            ],
        )
    claims = {
        "iss": "sokhoe",
        "sub": CITIZEN.subject,
        "kind": "citizen",
        "name": CITIZEN.display,
        "scope": "patient/*.rs",
        "pat": [],
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=15)).timestamp()),
    }
    signed_before = jwt.encode(claims, plain["current"], "HS256", headers={"kid": "current"})
    if isinstance(store, SqlStore) and store.dialect == "sqlite":
        assert plain["current"].encode() in _database_bytes(store)

        # as SQLite builds that do not zero freed space by default (Debian's does)
        @event.listens_for(store.writer, "connect")
        def _keep_freed_bytes(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA secure_delete=OFF")

        store.writer.dispose()

    kek = KeyEncryptionKey.generate()
    tokens = TokenService(engine, kek=kek)
    with caplog.at_level(logging.WARNING, logger="sokhoe.access.tokens"):
        assert tokens.verify(signed_before).subject == CITIZEN.subject  # still good

    with engine.begin() as conn:
        rows = {r.kid: r for r in conn.execute(select(auth_signing_key)).all()}
    for kid, secret in plain.items():
        assert rows[kid].secret.startswith("kek1:")
        assert kek.open(rows[kid].secret, kid) == secret
    assert rows["current"].retired is not None  # its secret is in old backups: no more signing
    assert any("Sealed 5 token-signing keys" in r.getMessage() for r in caplog.records)
    fresh, _ = tokens.issue(CITIZEN)
    assert jwt.get_unverified_header(fresh)["kid"] not in plain
    assert tokens.verify(fresh).subject == CITIZEN.subject
    if isinstance(store, SqlStore) and store.dialect == "sqlite":
        on_disk = _database_bytes(store)
        assert rows["current"].secret.encode() in on_disk
        assert not any(secret.encode() in on_disk for secret in plain.values())


def test_the_development_key_is_made_once_private_and_never_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    var = tmp_path / "var"
    with caplog.at_level(logging.INFO, logger="sokhoe.access.kek"):
        first = load_key_encryption_key(var)
    path = var / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert any("Made a development key-encryption key" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sokhoe.access.kek"):
        again = load_key_encryption_key(var)
    assert again.key_id == first.key_id
    assert not any("Made" in r.getMessage() for r in caplog.records)
    assert [p.name for p in var.iterdir()] == [KEY_FILE]  # no temporary file left behind
    assert load_key_encryption_key(tmp_path / "elsewhere").key_id != first.key_id

    path.write_text("not a key\n")
    with pytest.raises(ValueError, match="not base64"):
        load_key_encryption_key(var)
    assert path.read_text() == "not a key\n"  # a bad key is reported, never replaced
    with pytest.raises(ValueError, match="must hold 32"):
        load_key_encryption_key(var, base64.b64encode(b"short").decode())


def test_the_configured_key_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = secrets.token_bytes(32)
    monkeypatch.setenv("SOKHOE_KEY_ENCRYPTION_KEY", base64.b64encode(raw).decode())
    settings = Settings(base_url=BASE, database_url="sqlite://", var_dir=tmp_path)
    assert "SecretStr" in repr(settings.key_encryption_key)  # hidden from repr and logs
    app = create_app(settings)
    assert app.state.tokens.kek.key_id == KeyEncryptionKey(raw).key_id
    assert not (tmp_path / KEY_FILE).exists()
