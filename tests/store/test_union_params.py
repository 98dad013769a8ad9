"""Union parameters (``search/unions.py``) and ``_id`` with a modifier, on every backend.

The SQL store writes no rows for Observation's combo-* parameters nor for ``_id`` and answers
them from the members' rows and ``resource.id``: the answers must equal the memory store's,
which indexes every parameter as it is defined.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from sokhoe.fhir.repository import FhirRepository
from sokhoe.search.unions import Restriction, restrictions, unions
from sokhoe.store import FhirStore
from sokhoe.store.sql import SqlStore
from tests.store.test_store_contract import item, repo, search_ids, write

__all__ = ["repo"]  # the fixture, for this module's tests

LOINC = "http://loinc.org"


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
    assert written == unions()
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
                text("SELECT count(*) FROM sp_token WHERE param IN ('combo-code', '_id')")
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
                text("SELECT target_type, url FROM sp_reference WHERE param = 'patient'")
            ).all()
        assert [tuple(r) for r in rows] == [(None, "#c1")]
