"""The checker of the Vietnam core profiles, as every write uses it (``profile_issues``): slices,
cardinalities, bindings to the platform's value sets and FHIRPath constraints, each issue at its
FHIRPath location; a resource that claims no profile is not held to one.
See: https://hl7.org/fhir/R4/validation.html#profile"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sokhoe.demo.facilities import build_facilities
from sokhoe.demo.population import make_person, population
from sokhoe.fhir.profiles import conformance_issues, profile_issues
from sokhoe.ig.check import check
from sokhoe.ig.urls import ENCOUNTER, ORGANIZATION, PATIENT, PAYER, PRACTITIONER
from sokhoe.mpi.identifiers import BHYT, CCCD, CMND, mrn_system
from sokhoe.registry.addresses import parse_address

GOOD: dict[str, Any] = {
    "resourceType": "Patient",
    "meta": {"profile": [PATIENT]},
    "identifier": [
        {"system": CCCD, "value": "001085012345"},
        {"system": CMND, "value": "012345678", "use": "old"},
        {"system": BHYT, "value": "DN4010123456789"},
        {"system": mrn_system("01001"), "value": "BN0001"},
    ],
    "extension": [
        {
            "url": "https://fhir.sokhoe.vn/StructureDefinition/ethnicity",
            "valueCodeableConcept": {
                "coding": [{"system": "https://fhir.sokhoe.vn/CodeSystem/ethnicity", "code": "01"}]
            },
        }
    ],
    "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
    "gender": "male",
    "birthDate": "1985-03-15",
    "address": [parse_address("Số 12, Phường Hoàn Kiếm, Thành phố Hà Nội")],
}


def errors(resource: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(i.expression, i.code) for i in profile_issues(copy.deepcopy(resource))]


def with_identifier(index: int, value: str) -> dict[str, Any]:
    bad = copy.deepcopy(GOOD)
    bad["identifier"][index]["value"] = value
    return bad


def test_a_vietnamese_patient_with_every_slice_passes() -> None:
    assert GOOD["address"][0]["extension"][0]["valueCoding"]["code"] == "01"  # codes resolved
    assert errors(GOOD) == []
    assert check(GOOD, PATIENT) == []


@pytest.mark.parametrize(
    ("index", "value", "key"),
    [
        (0, "991085012345", "vn-cccd-1"),  # 12 digits, no such province
        (0, "001885012345", "vn-cccd-1"),  # sex-and-century digit 8
        (0, "00108501234", "vn-cccd-1"),  # 11 digits
        (1, "0123456789", "vn-cmnd-1"),  # 10 digits
        (1, "01234567", "vn-cmnd-1"),
        (2, "DN6010123456789", "vn-bhyt-1"),  # benefit level 6
        (2, "dn4010123456789x", "vn-bhyt-1"),
    ],
)
def test_a_malformed_identifier_fails_its_slice_constraint_at_its_value(
    index: int, value: str, key: str
) -> None:
    found = check(with_identifier(index, value), PATIENT)
    assert [(i.expression, i.code) for i in found] == [
        (f"Patient.identifier[{index}].value", "invariant")
    ]
    assert found[0].diagnostics.startswith(f"Constraint failed: {key}:")


def test_slice_cardinality_and_patient_level_constraints() -> None:
    two_cmnd = copy.deepcopy(GOOD)
    two_cmnd["identifier"].append({"system": CMND, "value": "987654321"})
    assert errors(two_cmnd) == [("Patient.identifier[4]", "structure")]
    two_current = copy.deepcopy(GOOD)
    two_current["identifier"].append({"system": CCCD, "value": "001085054321"})
    assert errors(two_current) == [("Patient", "invariant")]
    reissued = copy.deepcopy(two_current)
    reissued["identifier"][0]["period"] = {"end": "2024-01-01"}
    assert errors(reissued) == []  # the old number kept with its period
    bad_mrn = copy.deepcopy(GOOD)
    bad_mrn["identifier"][3]["system"] = mrn_system("HOSPITAL-B")
    assert errors(bad_mrn) == [("Patient.identifier[3].system", "invariant")]


def test_extensions_are_checked_against_their_definitions_and_value_sets() -> None:
    bad = copy.deepcopy(GOOD)
    bad["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "99"
    where = "Patient.extension[0].value.ofType(CodeableConcept)"
    assert errors(bad) == [(where, "code-invalid")]
    as_text = copy.deepcopy(GOOD)
    as_text["extension"][0]["valueCodeableConcept"] = {"text": "Kinh"}
    assert errors(as_text) == []  # extensible: the text as written is allowed
    province = copy.deepcopy(GOOD)
    province["address"][0]["extension"][0]["valueCoding"]["code"] = "03"  # not one of the 34
    assert errors(province) == [
        ("Patient.address[0].extension[0].value.ofType(Coding)", "code-invalid")
    ]
    typed = copy.deepcopy(GOOD)
    typed["address"][0]["extension"][0] = {
        "url": "https://fhir.sokhoe.vn/StructureDefinition/address-province",
        "valueString": "01",
    }
    assert errors(typed) == [("Patient.address[0].extension[0].value.ofType(String)", "structure")]
    twice = copy.deepcopy(GOOD)
    twice["extension"].append(copy.deepcopy(GOOD["extension"][0]))
    assert errors(twice) == [("Patient.extension[1]", "structure")]


def test_a_resource_that_claims_no_profile_is_not_held_to_it() -> None:
    unclaimed = copy.deepcopy(GOOD)
    del unclaimed["meta"]
    unclaimed["identifier"].append({"system": CMND, "value": "987654321"})  # two CMND
    unclaimed["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "99"
    assert errors(unclaimed) == []
    claimed = {**unclaimed, "meta": {"profile": [f"{PATIENT}|0.1.0"]}}  # versioned canonical
    assert len(errors(claimed)) == 2
    assert len(conformance_issues(copy.deepcopy(unclaimed), PATIENT)) == 2  # asked explicitly


def test_an_unknown_profile_is_not_an_error_and_another_types_profile_is() -> None:
    other = {**GOOD, "meta": {"profile": ["https://example.org/StructureDefinition/x"]}}
    assert errors(other) == []
    wrong = {**GOOD, "meta": {"profile": [ENCOUNTER]}}
    assert errors(wrong) == [("Patient.meta.profile[0]", "invalid")]


def test_the_demo_population_claims_and_meets_the_core_patient_profile() -> None:
    facilities = build_facilities(1, with_locations=True)
    pop = population(1, facilities)
    for index in range(300):
        _, patient = make_person(pop, index)
        assert patient["meta"]["profile"] == [PATIENT]
        assert profile_issues(patient) == [], index
    organizations = [r for r in facilities.resources if r["resourceType"] == "Organization"]
    for org in organizations:
        assert check(org, ORGANIZATION) == [], org["id"]
    odd = copy.deepcopy(next(o for o in organizations if len(o.get("type", [])) == 2))
    odd["type"][0]["coding"][0]["code"] = "village"
    assert [(i.expression, i.code) for i in check(odd, ORGANIZATION)] == [
        ("Organization", "invariant")
    ]


def test_practitioners_and_encounters() -> None:
    doctor = {
        "resourceType": "Practitioner",
        "identifier": [{"system": "https://fhir.sokhoe.vn/sid/cchn", "value": "000123/BYT-CCHN"}],
    }
    assert check(doctor, PRACTITIONER) == []
    doctor["identifier"][0]["value"] = "CCHN 123"
    found = check(doctor, PRACTITIONER)
    assert [(i.expression, i.severity) for i in found] == [
        ("Practitioner.identifier[0].value", "warning")  # the format is unconfirmed
    ]
    assert profile_issues({**doctor, "meta": {"profile": [PRACTITIONER]}}) == []  # not refused
    visit = {
        "resourceType": "Encounter",
        "extension": [{"url": PAYER, "valueCode": "insurance"}],
        "status": "arrived",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    }
    assert check(visit, ENCOUNTER) == []
    visit["extension"][0]["valueCode"] = "cash"
    assert [(i.expression, i.code) for i in check(visit, ENCOUNTER)] == [
        ("Encounter.extension[0].value.ofType(Code)", "code-invalid")
    ]


@pytest.mark.parametrize(
    "shape",
    [
        {"identifier": "001085012345"},
        {"identifier": [None, 3, [], {"system": 5, "value": ["x"]}]},
        {"extension": {"url": "https://fhir.sokhoe.vn/StructureDefinition/ethnicity"}},
        {
            "extension": [
                {
                    "url": "https://fhir.sokhoe.vn/StructureDefinition/ethnicity",
                    "valueCodeableConcept": 7,
                }
            ]
        },
        {
            "address": [
                {
                    "extension": [
                        {
                            "url": "https://fhir.sokhoe.vn/StructureDefinition/address-province",
                            "valueCoding": [1],
                        }
                    ]
                }
            ]
        },
        {"address": "Hà Nội", "meta": {"profile": "not a list"}},
    ],
)
def test_a_malformed_resource_gets_issues_never_an_exception(shape: dict[str, Any]) -> None:
    resource = {**GOOD, **shape}
    check(resource, PATIENT)  # does not raise
    conformance_issues(copy.deepcopy(resource), PATIENT)
