"""The patient index's blocking keys (``mpi/keys.py``): what a query asks for is what a stored
Patient was written with, ``$match`` finds people by them alone, and migration 0023 gives the
Patients stored before them their keys (and takes them away again)."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import create_engine, text

from sokhoe.access.guard import platform_repository
from sokhoe.mpi.features import patient_row
from sokhoe.mpi.keys import PARAM, match_keys
from sokhoe.mpi.matching import Matcher
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.identity import param_id
from sokhoe.store.sql.migrate import alembic_config
from tests.conftest import BASE
from tests.store.test_store_contract import StepClock

HUNG: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [{"family": "Nguyễn", "given": ["Văn", "Hùng"]}, {"text": "Hung Nguyen Van"}],
    "birthDate": "1990-04-12",
    "gender": "male",
    "address": [
        {"city": "Phường Láng Hạ", "postalCode": "100 000"},
        {"city": "Xã Tân Phú"},
    ],
}


def _asked(query: dict[str, Any]) -> set[str]:
    """Every key the matcher's blocking searches ask for."""
    matcher = Matcher.__new__(Matcher)
    asked: set[str] = set()
    for params in matcher.blocking_queries(query, patient_row(query)):
        for code, value in params:
            if code == PARAM:
                asked |= set(value.split(","))
    return asked


def test_a_query_asks_for_keys_the_same_person_was_stored_with() -> None:
    stored = set(match_keys(HUNG))
    assert "nm/1990-04/hung" in stored and "nd/1990-04-12/nguyen" in stored
    assert "fy/1990/nguyen van hung" in stored
    assert "gc/xa tan phu/nguyen/hung" in stored  # every address, not only the first
    assert "dp/1990-04-12/p:100000" in stored and "np/100000/hung" in stored
    typed = {  # the same person typed at another desk: no accents, day and month exchanged
        "resourceType": "Patient",
        "name": [{"text": "NGUYEN VAN HUNG"}],
        "birthDate": "1990-12-04",
        "address": [{"city": "Phuong Lang Ha"}],
    }
    asked = _asked(typed)
    assert "nd/1990-04-12/hung" in asked  # the swap of the typed date
    assert asked & stored >= {"nd/1990-04-12/hung", "gc/phuong lang ha/nguyen/hung"}
    assert not _asked({**typed, "name": [{"text": "Tran Van Hung"}], "address": []}) & {
        k for k in stored if not k.endswith("/hung")
    }


def test_keys_need_every_column_they_are_made_of() -> None:
    assert match_keys({"resourceType": "Patient", "name": [{"family": "Lê"}]}) == []
    year_only = match_keys({**HUNG, "birthDate": "1990", "address": []})
    assert year_only == ["fy/1990/nguyen van hung", "fy/1990/hung nguyen van"]
    # a 1 January placeholder says only the year: no month, no day keys, as in the matcher
    assert not [k for k in match_keys({**HUNG, "birthDate": "1990-01-01"}) if "1990-01" in k]


def test_match_finds_people_by_their_keys(store: Any) -> None:
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    hung = repo.create(dict(HUNG), "Patient").resource.id
    for given, day in (("Hùng", "1990-04-13"), ("Hưng", "1991-04-12"), ("Lan", "1990-04-12")):
        other = {**HUNG, "name": [{"family": "Nguyễn", "given": [given]}], "birthDate": day}
        repo.create({**other, "address": [{"city": "Xã Khác"}]}, "Patient")
    query = {**HUNG, "name": [{"text": "Nguyen Van Hung"}], "birthDate": "1990-12-04"}
    query["address"] = [{"city": "Phuong Lang Ha"}]
    found = Matcher(repo).candidates(query)
    assert found and found[0].id == hung
    page = repo.search(repo.parse_query("Patient", [(PARAM, "gc/phuong lang ha/nguyen/hung")]))
    assert [e.id for e in page.matches] == [hung]


def test_the_migration_keys_the_patients_stored_before_it(sql_url: str) -> None:
    store = SqlStore(sql_url)
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    kept = repo.create(dict(HUNG), "Patient").resource.id
    gone = repo.create({**HUNG, "birthDate": "1980-02-03"}, "Patient").resource.id
    repo.delete("Patient", gone)
    store.close()
    pid = param_id("Patient", PARAM)
    rows = text(
        "SELECT r.id, t.norm, t.patient_id FROM sp_string t "
        "JOIN resource r ON r.pk = t.resource_pk WHERE t.pid = :pid ORDER BY r.id, t.norm"
    ).bindparams(pid=pid)
    engine = create_engine(sql_url)
    cfg = alembic_config()
    try:
        with engine.connect() as conn:
            written = conn.execute(rows).all()
        assert {r.id for r in written} == {kept}
        assert sorted(r.norm for r in written) == sorted(match_keys(HUNG))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0022")
        with engine.connect() as conn:
            assert conn.execute(rows).all() == []
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            assert conn.execute(rows).all() == written  # the same rows, patient column too
    finally:
        engine.dispose()


def test_a_name_typed_short_still_finds_its_person(store: Any) -> None:
    """The name is each key's last part and a string search matches by prefix: a clerk who
    stopped typing (``joe`` for Joel) is found as the separate name criterion found him."""
    repo = platform_repository(store, f"{BASE}/fhir", clock=StepClock())
    joel = {
        "resourceType": "Patient",
        "name": [{"family": "Lodge", "given": ["Joel"]}],
        "birthDate": "1971-08-30",
        "address": [{"city": "Toowoomba", "postalCode": "4012"}],
    }
    wanted = repo.create(joel, "Patient").resource.id
    repo.create({**joel, "name": [{"family": "Lodge", "given": ["Ann"]}]}, "Patient")
    typed = {**joel, "name": [{"family": "Lodgw", "given": ["Joe"]}]}
    typed["address"] = [{"city": "Toowoomba", "postalCode": "4016"}]
    assert "nm/1971-08/joe" in _asked(typed)
    found = Matcher(repo).candidates(typed)
    assert found and found[0].id == wanted
    page = repo.search(repo.parse_query("Patient", [(PARAM, "nm/1971-08/joe")]))
    assert [m.id for m in page.matches] == [wanted]
