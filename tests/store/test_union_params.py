"""Union and alias parameters (``search/unions.py``), ``_id`` with a modifier and
``_lastUpdated``, on every backend.

The SQL store writes no rows for Observation's combo-* parameters, for aliases such as
Patient's ``phonetic``, nor for ``_id`` and ``_lastUpdated``, and answers them from the members'
rows and the ``resource`` row: the answers must equal the memory store's, which indexes every
parameter as it is defined.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from sokhoe.access.guard import platform_repository
from sokhoe.fhir.repository import FhirRepository
from sokhoe.search.index import date_range
from sokhoe.search.unions import Restriction, aliases, restrictions, unions
from sokhoe.store import FhirStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.identity import param_id, types_with
from sokhoe.store.sql.migrate import alembic_config
from tests.conftest import BASE
from tests.store.test_store_contract import StepClock, item, repo, search_ids, write

__all__ = ["repo"]  # the fixture, for this module's tests

LOINC = "http://loinc.org"


def _every(code: str) -> str:
    """The numbers of ``code`` on every type that has it, for ``pid IN (…)``."""
    return ", ".join(str(param_id(t, code)) for t in types_with(code))


def _observation(rid: str, code: str, component: str | None, value: float) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p"},
    }
    if component is None:
        obs["valueQuantity"] = {"value": value, "system": "http://unitsofmeasure.org", "code": "kg"}
    else:
        obs["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": component}]},
                "valueQuantity": {
                    "value": value,
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            }
        ]
    return obs


def test_the_unions_and_restrictions_found_are_the_migrations() -> None:
    """The migrations that deleted the rows carry the lists of their day: the code that stops
    writing them must still name the same parameters."""
    from importlib import import_module

    versions = "sokhoe.store.sql.migrations.versions"
    union_rows = import_module(f"{versions}.0018_union_rows")
    written = {k: v for table in union_rows.UNIONS.values() for k, v in table.items()}
    assert written == {k: v for k, v in unions().items() if k not in aliases()}
    alias_rows = import_module(f"{versions}.0020_rows_found_elsewhere")
    assert {(t, c): o for _, t, c, o in alias_rows.ALIASES} == aliases()
    assert {k: (v,) for k, v in aliases().items()} == {
        k: v for k, v in unions().items() if k in aliases()
    }
    restriction_rows = import_module(f"{versions}.0019_restriction_rows")
    found = {(t, c): Restriction(w, x) for t, c, w, x in restriction_rows.RESTRICTIONS}
    assert found == restrictions()


def test_combo_parameters_and_id_modifiers_answer_alike(
    store: FhirStore, repo: FhirRepository
) -> None:
    write(
        store,
        item(repo, {"resourceType": "Patient", "id": "p"}, 1),
        item(repo, _observation("weight", "29463-7", None, 70.0), 1),
        item(repo, _observation("bp", "85354-9", "8480-6", 130.0), 1),
    )
    find = lambda *p: search_ids(repo, "Observation", *p)  # noqa: E731
    assert find(("combo-code", "29463-7")) == ["weight"]  # the code
    assert find(("combo-code", "8480-6")) == ["bp"]  # a component's code
    assert find(("combo-code", f"{LOINC}|85354-9,{LOINC}|29463-7")) == ["bp", "weight"]
    assert find(("combo-code:not", "8480-6")) == ["weight"]
    assert find(("combo-code:missing", "false")) == ["bp", "weight"]
    assert find(("combo-value-quantity", "gt100")) == ["bp"]
    assert find(("combo-value-quantity", "lt100")) == ["weight"]
    assert find(("combo-value-quantity:missing", "true")) == []
    assert find(("_sort", "-combo-value-quantity")) == ["bp", "weight"]
    assert find(("_id:not", "bp")) == ["weight"]
    assert find(("_id:missing", "true")) == []
    assert find(("code", "8480-6")) == []  # the members stay themselves
    if isinstance(store, SqlStore):
        with store.reader.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT count(*) FROM sp_token WHERE pid IN "  # noqa: S608
                    f"({param_id('Observation', 'combo-code')}, {param_id('Observation', '_id')})"
                )
            ).scalar_one()
        assert rows == 0


def test_patient_is_subject_to_a_patient_on_every_path(
    store: FhirStore, repo: FhirRepository
) -> None:
    contained = {
        "resourceType": "Observation",
        "id": "kept",
        "status": "final",
        "contained": [{"resourceType": "Patient", "id": "c1"}],
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": {"reference": "#c1"},
    }
    group = {**_observation("herd", "29463-7", None, 5.0), "subject": {"reference": "Group/g"}}
    write(
        store,
        item(repo, {"resourceType": "Patient", "id": "p", "name": [{"family": "Lê"}]}, 1),
        item(repo, {"resourceType": "Group", "id": "g", "type": "animal", "actual": True}, 1),
        item(repo, _observation("weight", "29463-7", None, 70.0), 1),
        item(repo, group, 1),
        item(repo, contained, 1),
    )
    find = lambda *p: search_ids(repo, "Observation", *p)  # noqa: E731
    assert find(("patient", "p")) == ["weight"]
    assert find(("patient", "Patient/p")) == ["weight"]
    assert find(("patient", "g")) == []  # a Group is no patient
    assert find(("subject", "Group/g")) == ["herd"]
    assert find(("patient:missing", "false")) == ["kept", "weight"]  # "#c1": its own row
    assert find(("patient:missing", "true")) == ["herd"]
    assert find(("patient.name", "le")) == ["weight"]
    assert find(("patient:Patient.name", "le")) == ["weight"]
    assert search_ids(repo, "Patient", ("_has:Observation:patient:code", "29463-7")) == ["p"]
    with_patient = repo.search(
        repo.parse_query("Observation", [("_id", "weight"), ("_include", "Observation:patient")])
    )
    assert [r.id for r in with_patient.included] == ["p"]
    back = repo.search(
        repo.parse_query("Patient", [("_id", "p"), ("_revinclude", "Observation:patient")])
    )
    assert [r.id for r in back.included] == ["weight"]
    if isinstance(store, SqlStore):
        with store.reader.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT target_type, url FROM sp_reference "  # noqa: S608
                    f"WHERE pid = {param_id('Observation', 'patient')}"
                )
            ).all()
        assert [tuple(r) for r in rows] == [(None, "#c1")]


def test_last_updated_and_aliases_answer_alike_on_every_path(
    store: FhirStore, repo: FhirRepository
) -> None:
    """``_lastUpdated`` is one instant in ``resource.last_updated`` to the SQL store and the
    millisecond ``meta.lastUpdated`` shows to the memory store: every prefix, at millisecond
    and coarser precision, on a millisecond boundary and inside one, must answer alike."""
    at = {
        "a": datetime(2026, 12, 7, 3, 0, 0, tzinfo=UTC),
        "b": datetime(2026, 12, 7, 3, 0, 0, 123456, tzinfo=UTC),
        "c": datetime(2026, 12, 7, 3, 0, 1, tzinfo=UTC),
        # 03:00 UTC on the 8th, written by a clock in Vietnam's zone
        "d": datetime(2026, 12, 8, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")),
    }
    people = [
        repo.prepare(
            {"resourceType": "Patient", "id": rid, "name": [{"family": "Phạm", "given": [rid]}]},
            rid,
            1,
            "POST",
            None,
            when,
        )
        for rid, when in at.items()
    ]
    seen = _observation("seen", "29463-7", None, 60.0) | {"subject": {"reference": "Patient/b"}}
    write(store, *people, repo.prepare(seen, "seen", 1, "POST", None, at["c"]))
    find = lambda *p: search_ids(repo, "Patient", *p)  # noqa: E731
    ms, s = "2026-12-07T03:00:00.123Z", "2026-12-07T03:00:01Z"
    for value, expected in [
        (f"eq{ms}", ["b"]),
        ("eq2026-12-07T03:00:00.000Z", ["a"]),
        ("gt2026-12-07T03:00:00.000Z", ["b", "c", "d"]),
        (f"ge{ms}", ["b", "c", "d"]),
        ("gt2026-12-07T03:00:00.999Z", ["c", "d"]),  # c ends its millisecond after it
        (f"lt{ms}", ["a"]),
        (f"le{ms}", ["a", "b"]),
        (f"ne{ms}", ["a", "c", "d"]),
        (s, ["c"]),
        (f"lt{s}", ["a", "b"]),
        (f"ge{s}", ["c", "d"]),
        ("sa2026-12-07T03:00:00Z", ["c", "d"]),
        (f"eb{s}", ["a", "b"]),
        ("2026-12-07", ["a", "b", "c"]),  # a day in Vietnam's zone
        ("2026-12-08", ["d"]),
        ("ne2026-12-07", ["d"]),
        ("lt9998", ["a", "b", "c", "d"]),
        ("gt0001", ["a", "b", "c", "d"]),
        (f"gt{s},lt2026-12-07T03:00:00.001Z", ["a", "d"]),
    ]:
        assert find(("_lastUpdated", value)) == expected, value
    assert find(("_lastUpdated", "ge2026-12-07T03:00:00.100Z"), ("_lastUpdated", f"lt{s}")) == ["b"]
    assert find(("_lastUpdated:missing", "true")) == []
    assert find(("_lastUpdated:missing", "false")) == ["a", "b", "c", "d"]
    assert find(("_sort", "-_lastUpdated")) == ["d", "c", "b", "a"]
    assert search_ids(repo, "Observation", ("subject:Patient._lastUpdated", f"eq{ms}")) == ["seen"]
    assert search_ids(repo, "Observation", ("subject:Patient._lastUpdated", f"lt{ms}")) == []
    assert find(("_has:Observation:subject:_lastUpdated", f"ge{s}")) == ["b"]
    assert find(("_has:Observation:subject:_lastUpdated", f"lt{s}")) == []
    assert find(("phonetic", "pham"), ("given", "b")) == ["b"]  # an alias of name
    assert find(("phonetic:exact", "Phạm")) == ["a", "b", "c", "d"]
    assert find(("_sort", "-phonetic"), ("_count", "2")) == ["d", "c"]
    if isinstance(store, SqlStore):
        with store.reader.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT (SELECT count(*) FROM sp_date WHERE pid IN ({_every('_lastUpdated')}))"  # noqa: S608
                    f" + (SELECT count(*) FROM sp_string WHERE pid IN ({_every('phonetic')}))"
                )
            ).scalar_one()
        assert rows == 0


def test_the_rows_found_elsewhere_come_back_on_downgrade(sql_url: str) -> None:
    """Migration 0020 drops the ``_lastUpdated`` and alias rows and its downgrade writes them
    again as the index extractor did (the millisecond of ``meta.lastUpdated``)."""
    store = SqlStore(sql_url)
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    for family in ["Nguyễn", "Trần"]:
        repo.create({"resourceType": "Patient", "name": [{"family": family}]}, "Patient")
    held = {r.id: r.content or {} for r in store.iter_all("Patient")}
    store.close()
    cfg = alembic_config()
    engine = create_engine(sql_url)
    query = (
        "SELECT r.id, d.low, d.high FROM sp_date d JOIN resource r ON r.pk = d.resource_pk"
        " WHERE d.param = '_lastUpdated' ORDER BY r.id"
    )
    phonetic = "SELECT count(*) FROM sp_string WHERE param = 'phonetic'"
    name = "SELECT count(*) FROM sp_string WHERE param = 'name'"
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0019")
        with engine.connect() as conn:
            dates = [tuple(r) for r in conn.execute(text(query))]
            assert (
                conn.execute(text(phonetic)).scalar_one() == conn.execute(text(name)).scalar_one()
            )
        expected = sorted(
            (rid, *date_range(doc["meta"]["lastUpdated"])) for rid, doc in held.items()
        )
        assert [d[0] for d in dates] == [e[0] for e in expected]
        for got, want in zip(dates, expected, strict=True):
            assert got[1:] == pytest.approx(want[1:], abs=1e-6)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0021")  # the last revision with the names as text
        with engine.connect() as conn:
            assert conn.execute(text(query)).all() == []
            assert conn.execute(text(phonetic)).scalar_one() == 0
            names = conn.execute(text(name)).scalar_one()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            pid = param_id("Patient", "name")
            by_number = f"SELECT count(*) FROM sp_string WHERE pid = {pid}"  # noqa: S608
            assert conn.execute(text(by_number)).scalar_one() == names > 0
    finally:
        engine.dispose()
