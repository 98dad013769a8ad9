"""Two criteria on a single-valued date parameter (``birthdate=ge…&birthdate=le…``) run as one
bounded scan in the SQL store (``store/sql/search.py``): the answers must equal the memory
store's, which checks each criterion on its own, at every precision a birth date may have."""

from __future__ import annotations

from sokhoe.fhir.repository import FhirRepository
from sokhoe.store import FhirStore
from sokhoe.store.sql.search import _single_date
from tests.store.test_store_contract import item, repo, search_ids, write

__all__ = ["repo"]  # the fixture, for this module's tests

BORN = {
    "day": "1980-05-15",
    "month": "1980-05",
    "year": "1980",  # a year wide: only a bound with a year's slack keeps it
    "eve": "1979-12-31",
    "after": "1981-01-01",
    "edge": "1980-05-31",
}


def test_a_two_sided_range_answers_as_each_bound_alone(
    store: FhirStore, repo: FhirRepository
) -> None:
    people = [{"resourceType": "Patient", "id": k, "birthDate": v} for k, v in BORN.items()]
    write(
        store,
        *(item(repo, p, 1) for p in people),
        item(repo, {"resourceType": "Patient", "id": "none"}, 1),
    )
    find = lambda *values: search_ids(  # noqa: E731
        repo, "Patient", *(("birthdate", v) for v in values)
    )
    assert find("ge1980-05-01", "le1980-05-31") == ["day", "edge", "month", "year"]
    assert find("ge1980-05-16", "le1980-05-31") == ["edge", "month", "year"]
    assert find("gt1980-05-15", "lt1981") == ["edge", "month", "year"]
    assert find("eq1980", "ne1980-05-15") == ["edge", "month", "year"]
    assert find("sa1979-12-30", "eb1981-01-01") == ["day", "edge", "eve", "month", "year"]
    assert find("ge1980-05-01,lt1900", "le1980-05-31") == ["day", "edge", "month", "year"]
    assert find("ge1980-06", "le1980-12") == ["year"]
    assert find("gt1981-01-01", "lt1979") == []
    assert find("ge1979", "le1981", "ne1980") == ["after", "eve"]  # all of 1980 is "eq1980"


def test_only_parameters_with_one_date_a_resource_are_merged() -> None:
    assert _single_date("Patient", "birthdate")
    assert _single_date("MedicationRequest", "authoredon")
    assert not _single_date("Encounter", "date")  # a Period
    assert not _single_date("Observation", "date")  # a choice of four types
    assert not _single_date("Patient", "name")
