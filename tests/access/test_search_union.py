"""``search_union``: the patient index's blocking in one snapshot, through the door as a
search is: the caller's scopes, its confinement in the query, and its read audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sokhoe.access.db import access_engine
from sokhoe.access.guard import platform_repository
from sokhoe.access.principal import system_principal
from sokhoe.errors import Forbidden
from sokhoe.store import FhirStore
from sokhoe.store.sql.access_schema import audit_event
from tests.conftest import BASE
from tests.store_layouts import store_on_every_layout  # noqa: F401 (store)

NAMES = [("Nguyễn", "An", "1980-01-02"), ("Trần", "An", "1980-05-06"), ("Nguyễn", "Bình", "1975")]


def _audit_rows(store: FhirStore) -> int:
    with access_engine(store).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_event)).scalar_one())


def test_union_equals_the_searches_and_is_confined_and_audited(store: FhirStore) -> None:
    platform = platform_repository(store, BASE)
    for i, (family, given, born) in enumerate(NAMES):
        platform.update(
            {
                "resourceType": "Patient",
                "id": f"p{i}",
                "name": [{"family": family, "given": [given]}],
                "birthDate": born,
            },
            "Patient",
            f"p{i}",
        )
    params = [[("family", "nguyen")], [("given", "an"), ("birthdate", "1980-05")]]
    queries = [platform.parse_query("Patient", p) for p in params]
    union = platform.search_union(queries, 1)  # the first match of each, in id order
    assert sorted(r.id for r in union) == ["p0", "p1"]
    assert sorted(r.id for r in platform.search_union(queries, 25)) == ["p0", "p1", "p2"]
    expected = {m.id for q in queries for m in platform.search(q).matches}
    assert {r.id for r in platform.search_union(queries, 25)} == expected

    facility = platform.for_caller(
        system_principal("hl7:79001", "HIS", frozenset({"system/*.cruds"}), "79001"),
        audit_reads=True,
    )
    before = _audit_rows(store)
    assert facility.search_union(queries, 25) == []  # no relationship: confined in the query
    assert _audit_rows(store) == before + 1  # audited as the search it is

    lab = platform.for_caller(
        system_principal("lab", "Lab", frozenset({"system/Observation.rs"}), "79001")
    )
    with pytest.raises(Forbidden):
        lab.search_union(queries, 25)
    with pytest.raises(ValueError):
        platform.search_union([platform.parse_query(None, [])], 25)
