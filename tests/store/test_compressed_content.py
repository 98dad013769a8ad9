"""Resource JSON is stored once and compressed (``store/sql/content.py``, migration 0016).

On SQLite and PostgreSQL: the current version's JSON only in ``resource``, older versions'
in ``resource_history``, every version still read back exactly; a database written before the
change converts (and converts back); a database written with a dictionary this package does not
ship stays readable from its own ``content_dictionary`` table, and one whose dictionary is lost
fails with a clear error rather than with garbage.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import zstandard
from alembic import command
from sqlalchemy import create_engine, text

from sokhoe.access.audit import GENESIS, AuditLog, chain_hash
from sokhoe.store.ports import WriteItem
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql import content as stored
from sokhoe.store.sql.migrate import alembic_config

WHEN = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _patient(version: int, family: str) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": str(version)},
        "name": [{"family": family, "given": ["Văn", "An"]}],
        "birthDate": "1985-03-15",
    }


def _item(version: int, doc: dict[str, object] | None, method: str) -> WriteItem:
    return WriteItem(
        resource_type="Patient",
        id="p1",
        version_id=version,
        last_updated=WHEN,
        content=doc,
        patient_id="p1",
        previous_version=None if version == 1 else version - 1,
        method=method,
        index=None,
        owner=None,
        labels=None,
    )


def _raw(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_each_version_is_stored_once_compressed_and_read_back(sql_url: str) -> None:
    url = sql_url
    store = SqlStore(url)
    versions = [_patient(1, "Nguyễn"), _patient(2, "Trần"), None, _patient(4, "Lê")]
    methods = ["POST", "PUT", "DELETE", "PUT"]
    for n, (doc, method) in enumerate(zip(versions, methods, strict=True), start=1):
        with store.begin(write=True) as s:
            s.write([_item(n, doc, method)])

    current = _raw(url, "SELECT content FROM resource")
    history = _raw(url, "SELECT version_id, content FROM resource_history ORDER BY version_id")
    assert [v for v, c in history if c is None] == [3, 4]  # the deleted one and the current
    for blob in [current[0][0], history[0][1], history[1][1]]:
        frame = zstandard.get_frame_parameters(bytes(blob))  # type: ignore[arg-type]
        assert frame.dict_id == stored.CURRENT
        assert len(bytes(blob)) < len(orjson.dumps(versions[0])) * 0.6  # type: ignore[arg-type]

    with store.begin() as s:
        got = s.read("Patient", "p1")
        assert got is not None and got.content == versions[3]
        for n, doc in enumerate(versions, start=1):
            old = s.vread("Patient", "p1", n)
            assert old is not None and old.content == doc and old.deleted == (doc is None)
        listed, total = s.history("Patient", "p1", None, 10, 0)
        assert total == 4 and [v.content for v in listed] == versions[::-1]
    store.close()


def test_a_database_from_before_converts_and_converts_back(sql_url: str) -> None:
    url = sql_url
    cfg = alembic_config()
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0015")
    one, two = _patient(1, "Nguyễn"), _patient(2, "Trần")
    with engine.begin() as conn:
        for table, version, doc in [
            ("resource", 2, two),
            ("resource_history", 1, one),
            ("resource_history", 2, two),
        ]:
            column, value = ("pk", "1") if table == "resource" else ("method", "'PUT'")
            conn.execute(
                text(
                    f"INSERT INTO {table} (resource_type, id, version_id, last_updated, deleted,"  # noqa: S608
                    f" patient_id, content, {column}) VALUES ('Patient', 'p1', :v, :t, false,"
                    f" 'p1', :c, {value})"
                ),
                {"v": version, "t": WHEN, "c": orjson.dumps(doc).decode()},
            )
        event = {"resourceType": "AuditEvent", "entity": [{"what": {"reference": "Patient/p1"}}]}
        digest = chain_hash(GENESIS, 1, WHEN, "p1", "client:x", "read", "success", event)
        conn.execute(
            text(
                "INSERT INTO audit_event (seq, recorded, patient_id, agent, action, outcome,"
                " content, prev_hash, hash) VALUES (1, :t, 'p1', 'client:x', 'read', 'success',"
                " :c, :g, :h)"
            ),
            {"t": WHEN, "c": orjson.dumps(event).decode(), "g": GENESIS, "h": digest},
        )
    engine.dispose()

    store = SqlStore(url)  # upgrades
    assert _raw(url, "SELECT version_id FROM resource_history WHERE content IS NULL") == [(2,)]
    with store.begin() as s:
        got, first = s.read("Patient", "p1"), s.vread("Patient", "p1", 1)
        assert got is not None and got.content == two
        assert first is not None and first.content == one
    store.close()
    engine = create_engine(url)
    blob = _raw(url, "SELECT content FROM audit_event")[0][0]
    assert zstandard.get_frame_parameters(bytes(blob)).dict_id == stored.CURRENT  # type: ignore[arg-type]
    report = AuditLog(engine).verify()
    assert report.ok and report.checked == 1 and report.head == digest  # the hash still holds

    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0015")
    engine.dispose()
    back = _raw(url, "SELECT version_id, content FROM resource_history ORDER BY version_id")
    as_json = [(v, c if isinstance(c, dict) else orjson.loads(c)) for v, c in back]  # type: ignore[arg-type]
    assert as_json == [(1, one), (2, two)]
    audit = _raw(url, "SELECT content FROM audit_event")[0][0]
    assert (audit if isinstance(audit, dict) else orjson.loads(audit)) == event  # type: ignore[arg-type]


def test_a_dictionary_the_package_does_not_ship_is_read_from_the_database(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/other.db"
    SqlStore(url).close()
    rng = random.Random(3)
    samples = [
        orjson.dumps({"resourceType": "Observation", "id": f"o{i}", "valueInteger": rng.random()})
        for i in range(400)
    ]
    other = zstandard.train_dictionary(2048, samples, dict_id=40000 + rng.randrange(1 << 20))
    doc = {"resourceType": "Observation", "id": "o1", "status": "final"}
    blob = zstandard.ZstdCompressor(dict_data=other).compress(orjson.dumps(doc))
    with pytest.raises(LookupError, match="content_dictionary"):
        stored.decode(blob)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO content_dictionary (id, data) VALUES (:i, :d)"),
            {"i": other.dict_id(), "d": other.as_bytes()},
        )
        conn.execute(
            text(
                "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, pk,"
                " content) VALUES ('Observation', 'o1', 1, :t, false, 1, :c)"
            ),
            {"t": WHEN, "c": blob},
        )
    engine.dispose()
    store = SqlStore(url)  # registers the database's dictionaries
    with store.begin() as s:
        got = s.read("Observation", "o1")
    assert got is not None and got.content == doc
    store.close()
