"""Sensitive categories from codes: ranges, sub-codes, labels only ever added."""

from __future__ import annotations

from typing import Any

import pytest

from sokhoe.registry.sensitivity import ACT_CODE, categories, icd10_category, label_sensitive

ICD10 = "http://hl7.org/fhir/sid/icd-10"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("F32.1", "PSY"),
        ("F00", "PSY"),
        ("F99", "PSY"),
        ("X70", "PSY"),
        ("Z91.5", "PSY"),
        ("Z91.1", None),
        ("B20", "HIV"),
        ("B24", "HIV"),
        ("B25", None),
        ("Z21", "HIV"),
        ("O98.7", "HIV"),
        ("O98.6", None),
        ("A54.9", "SEX"),
        ("A65", None),
        ("O04", "SEX"),
        ("O09", None),
        ("Z30.0", "SEX"),
        ("I10", None),
        ("E11.9", None),
        ("", None),
    ],
)
def test_icd10_category(code: str, expected: str | None) -> None:
    assert icd10_category(code) == expected


def _condition(*codes: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "code": {"coding": [{"system": ICD10, "code": c} for c in codes]},
    }


def test_labels_are_added_once_and_kept() -> None:
    resource = _condition("F20.0", "B20")
    resource["meta"] = {"security": [{"system": "other", "code": "R"}], "versionId": "1"}
    assert label_sensitive(resource) == {"PSY", "HIV"}
    security = resource["meta"]["security"]
    assert security[0] == {"system": "other", "code": "R"}
    assert {(s["system"], s["code"]) for s in security[1:]} == {
        (ACT_CODE, "PSY"),
        (ACT_CODE, "HIV"),
    }
    assert resource["meta"]["versionId"] == "1"
    assert label_sensitive(resource) == set()  # idempotent
    assert len(resource["meta"]["security"]) == 3


def test_a_label_set_by_hand_stays_and_plain_codes_add_nothing() -> None:
    resource = _condition("I10")
    resource["meta"] = {"security": [{"system": ACT_CODE, "code": "SEX"}]}
    assert label_sensitive(resource) == set()
    assert resource["meta"]["security"] == [{"system": ACT_CODE, "code": "SEX"}]
    plain = _condition("J06.9")
    assert label_sensitive(plain) == set() and "meta" not in plain


def test_codes_anywhere_in_the_resource_count_but_other_systems_do_not() -> None:
    encounter = {
        "resourceType": "Encounter",
        "reasonCode": [{"coding": [{"system": ICD10, "code": "O03"}]}],
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "F32"}]}],
    }
    assert categories(encounter) == {"SEX"}
    lab = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": "25836-8"}]},
    }
    assert categories(lab) == {"HIV"}
