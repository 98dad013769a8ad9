"""Index rows name their parameter and token system by number (``store/sql/identity.py``,
migration 0022): the numbers never collide among the parameters the platform knows, the
migration turns the text into numbers and back without losing a row, and a number it cannot
name stops the downgrade before anything changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text

from sokhoe.access.guard import platform_repository
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.searchparams import registry
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.identity import every_param, param_id, system_id
from sokhoe.store.sql.migrate import alembic_config
from tests.conftest import BASE
from tests.store.test_store_contract import StepClock

TABLES = ("sp_string", "sp_token", "sp_date", "sp_reference", "sp_quantity", "sp_number", "sp_uri")
VALUES = {
    "sp_string": "norm, exact",
    "sp_token": "code, text",
    "sp_date": "low, high",
    "sp_reference": "target_type, target_id, url",
    "sp_quantity": "value, system, code, unit",
    "sp_number": "value",
    "sp_uri": "value",
}


def test_no_two_parameters_share_a_number() -> None:
    pairs = [(t, sp.code) for t in resource_types() for sp in registry().supported(t)]
    assert len(pairs) > 2000
    assert len(every_param()) == len(pairs)
    assert len({param_id(t, c) for t, c in pairs}) == len(pairs)


def _people(store: SqlStore) -> None:
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    p = repo.create(
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": "https://sokhoe.vn/sid/cccd", "value": "079090001234"},
                {"value": "no-system"},
            ],
            "name": [{"family": "Nguyễn", "given": ["An"]}],
            "birthDate": "1990-04-11",
            "gender": "female",
        },
        "Patient",
    )
    repo.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{p.resource.id}"},
            "effectiveDateTime": "2025-03-01",
            "valueQuantity": {"value": 61.5, "unit": "kg", "system": "http://unitsofmeasure.org"},
        },
        "Observation",
    )


def _snapshot(conn: Any, named: bool) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every index row, its parameter and system as text (``named``: at 0021) or numbers."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    for table in TABLES:
        ident = "resource_type, param" if named else "pid"
        system = ", system" if table == "sp_token" else ""
        rows = conn.execute(
            text(f"SELECT resource_pk, {ident}{system}, {VALUES[table]} FROM {table}")  # noqa: S608
        )
        out[table] = Counter(tuple(r) for r in rows)
    return out


def _as_numbers(named: dict[str, Counter[tuple[Any, ...]]]) -> dict[str, Counter[tuple[Any, ...]]]:
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    for table, rows in named.items():
        converted: Counter[tuple[Any, ...]] = Counter()
        for row, n in rows.items():
            pk, rtype, code, *rest = row
            if table == "sp_token":
                rest[0] = None if rest[0] is None else system_id(rest[0])
            converted[(pk, param_id(rtype, code), *rest)] += n
        out[table] = converted
    return out


@pytest.fixture
def populated(sql_url: str) -> Iterator[tuple[Engine, Config]]:
    """A database at the newest revision holding a Patient and an Observation."""
    store = SqlStore(sql_url)
    _people(store)
    store.close()
    engine = create_engine(sql_url)
    try:
        yield engine, alembic_config()
    finally:
        engine.dispose()


def test_the_migration_numbers_every_row_and_names_it_again(
    populated: tuple[Engine, Config], sql_url: str
) -> None:
    engine, cfg = populated
    with engine.connect() as conn:
        numbered = _snapshot(conn, named=False)
        systems = dict(conn.execute(text("SELECT id, system FROM token_system")).all())
    assert sum(map(len, numbered.values())) > 12
    assert systems[system_id("http://loinc.org")] == "http://loinc.org"
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0021")
    with engine.connect() as conn:
        named = _snapshot(conn, named=True)
    # at 0021 the rows hold the text, and it is what the numbers stood for
    assert (next(iter(named["sp_token"]))[1]) in {"Patient", "Observation"}
    assert any(r[2] == "identifier" and r[3] is None for r in named["sp_token"])
    assert any(r[3] == "https://sokhoe.vn/sid/cccd" for r in named["sp_token"])
    # less the blocking keys, which 0023 computes from the Patients on the way back up
    keys = param_id("Patient", "match-key")
    assert _as_numbers(named) == {
        table: Counter({row: n for row, n in rows.items() if row[1] != keys})
        for table, rows in numbered.items()
    }
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert _snapshot(conn, named=False) == numbered
    # and the store searches what the migration numbered
    store = SqlStore(sql_url)
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    try:
        found = repo.search(
            repo.parse_query("Patient", [("identifier", "https://sokhoe.vn/sid/cccd|079090001234")])
        )
        assert len(found.matches) == 1
        assert (
            len(repo.search(repo.parse_query("Patient", [("identifier", "|no-system")])).matches)
            == 1
        )
        obs = repo.search(repo.parse_query("Observation", [("code", "http://loinc.org|29463-7")]))
        assert len(obs.matches) == 1
    finally:
        store.close()


def test_a_number_no_one_can_name_stops_the_downgrade_before_it_changes_anything(
    populated: tuple[Engine, Config],
) -> None:
    engine, cfg = populated
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sp_number (resource_pk, pid, value) VALUES (1, 7, 1.0)"))
    with engine.connect() as conn:
        before = _snapshot(conn, named=False)
    with pytest.raises(RuntimeError, match="cannot be named again"):
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0021")
    with engine.connect() as conn:
        assert _snapshot(conn, named=False) == before
        assert conn.execute(text("SELECT count(*) FROM token_system")).scalar_one() >= 2
