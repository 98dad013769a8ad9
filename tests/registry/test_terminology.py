"""The terminology service without HTTP: ICD-10, the local code systems, value sets, and the
write-time ICD-10 check over real data (Synthea bundles and a generated demo population)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from sokhoe.demo import write_demo
from sokhoe.demo.clinical import ACUTE, DM, DRUGS, HTN
from sokhoe.errors import InvalidRequest, Issue, NotFound
from sokhoe.registry.facilities import LEVELS
from sokhoe.registry.practitioners import ROLES
from sokhoe.registry.terminology import (
    CODE_SYSTEMS,
    DIAGNOSIS_TYPES,
    ICD10_VALUE_SET,
    MAX_EXPANSION,
    VALUE_SETS,
    diagnosis_issues,
    expand,
    lookup,
    rows,
    validate_code,
)
from sokhoe.registry.terminology_icd10 import (
    ICD10_SYSTEM,
    ICD10_VI,
    icd10_entry,
    is_recordable,
)
from sokhoe.registry.terminology_local import LOINC_SUBSET
from tests.conftest import SHARED_DATA

LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"
SNOMED = "http://snomed.info/sct"
DRUG = "https://fhir.sokhoe.vn/CodeSystem/drug"
LEVEL = "https://fhir.sokhoe.vn/CodeSystem/facility-level"


# --- ICD-10 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["E11.9", "E119", "e11.9", " E119 "])
def test_icd10_code_with_or_without_dot(code: str) -> None:
    found = lookup(ICD10_SYSTEM, code)
    assert found.code == "E11.9"
    assert found.display == "Type 2 diabetes mellitus without complications"
    assert found.display_vi == "Bệnh đái tháo đường type 2 không có biến chứng"
    props = dict((k, v) for k, v in found.properties if k != "child")
    assert props == {"kind": "category", "parent": "E11", "leaf": True}


def test_icd10_lookup_walks_the_hierarchy() -> None:
    category = lookup(ICD10_SYSTEM, "E11")
    children = [v for k, v in category.properties if k == "child"]
    assert children[:3] == ["E11.0", "E11.1", "E11.2"]
    assert ("leaf", False) in category.properties
    assert ("parent", "E10-E14") in category.properties
    block = lookup(ICD10_SYSTEM, "E10-E14")
    assert ("kind", "block") in block.properties
    assert ("parent", "IV") in block.properties
    chapter = lookup(ICD10_SYSTEM, "IV")
    assert chapter.display == "Endocrine, nutritional and metabolic diseases"
    assert not [v for k, v in chapter.properties if k == "parent"]


def test_icd10_unknown_code_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"'E11.99' is not an ICD-10 code"):
        lookup(ICD10_SYSTEM, "E11.99")


def test_moh_retained_dengue_codes() -> None:
    """A90/A91 are gone from WHO 2019 but still on the Ministry's list and in the demo."""
    a91 = lookup(ICD10_SYSTEM, "A91")
    assert a91.display == "Dengue haemorrhagic fever"
    assert a91.display_vi == "Sốt xuất huyết Dengue"
    assert ("parent", "A92-A99") in a91.properties
    block_children = [v for k, v in lookup(ICD10_SYSTEM, "A92-A99").properties if k == "child"]
    assert block_children[:3] == ["A90", "A91", "A92"]
    assert is_recordable("A90") and is_recordable("A97.0")


def test_vietnamese_names_cover_the_demo_codes() -> None:
    for dx in [*ACUTE, HTN, DM]:
        assert dx.code in ICD10_VI, dx.code
        entry = icd10_entry(dx.code)
        assert entry is not None and entry.kind == "category"
    assert all(icd10_entry(code) is not None for code in ICD10_VI)


def test_chapters_and_blocks_are_not_recordable() -> None:
    assert not is_recordable("X")
    assert not is_recordable("J00-J06")
    assert is_recordable("J06.9")
    assert is_recordable("J069")


# --- local code systems -----------------------------------------------------------------------


def test_loinc_subset_has_every_code_the_demo_writes() -> None:
    demo_codes = {"2345-7", "4548-4", "2160-0", "777-3", "2093-3", "8310-5", "8867-4"}
    demo_codes |= {"85354-9", "8480-6", "8462-4", "29463-7", "8302-2"}
    assert set(LOINC_SUBSET.concepts) == demo_codes
    found = lookup(LOINC, "85354-9")
    assert found.display == "Blood pressure panel with all children optional"
    assert found.display_vi == "Huyết áp"


def test_local_tables_come_from_the_modules_that_write_them() -> None:
    assert {r.code for r in rows(DRUG)} == set(DRUGS)
    assert {r.code for r in rows(LEVEL)} == set(LEVELS)
    assert lookup(LEVEL, "commune").display == "Trạm y tế xã"
    role = "https://fhir.sokhoe.vn/CodeSystem/practitioner-role"
    assert {r.code for r in rows(role)} == set(ROLES)
    assert lookup(CVX, "198").display == "DTP-hepB-Hib Pentavalent Non-US"


def test_unknown_system_and_code() -> None:
    with pytest.raises(NotFound, match=r"Code system 'http://snomed.info/sct'"):
        lookup("http://snomed.info/sct", "44054006")
    with pytest.raises(NotFound, match=r"'XX' is not a code of http://hl7.org/fhir/sid/cvx"):
        lookup(CVX, "XX")


def test_every_code_system_has_a_value_set() -> None:
    assert set(VALUE_SETS.values()) == set(CODE_SYSTEMS)
    assert VALUE_SETS[ICD10_VALUE_SET] == ICD10_SYSTEM
    assert VALUE_SETS["https://fhir.sokhoe.vn/ValueSet/drug"] == DRUG
    assert VALUE_SETS["https://fhir.sokhoe.vn/ValueSet/facility-level"] == LEVEL


# --- $expand ----------------------------------------------------------------------------------


def test_expand_all_of_icd10_pages() -> None:
    first = expand(ICD10_VALUE_SET)
    assert first.total > 12000
    assert len(first.contains) == MAX_EXPANSION
    assert first.contains[0].code == "A00"
    page = expand(ICD10_VALUE_SET, offset=2, count=2)
    assert [r.code for r in page.contains] == [r.code for r in first.contains[2:4]]
    assert page.total == first.total


def test_expand_filter_ignores_accents_and_case() -> None:
    accented = expand(ICD10_VALUE_SET, "ĐÁI THÁO ĐƯỜNG")
    plain = expand(ICD10_VALUE_SET, "dai thao duong")
    assert [r.code for r in accented.contains] == [r.code for r in plain.contains]
    assert [r.code for r in plain.contains] == ["E11", "E11.9"]
    english = expand(ICD10_VALUE_SET, "Type 2 Diabetes")
    assert english.total == len(english.contains) > 10
    assert all("type 2 diabetes" in r.display.lower() for r in english.contains)


def test_expand_filter_on_code_with_or_without_dot() -> None:
    assert [r.code for r in expand(ICD10_VALUE_SET, "e119").contains] == ["E11.9"]
    assert [r.code for r in expand(ICD10_VALUE_SET, "E11.9").contains] == ["E11.9"]


def test_expand_local_value_set() -> None:
    result = expand("https://fhir.sokhoe.vn/ValueSet/facility-level", "tram y te")
    assert result.total == 1
    assert result.contains[0].code == "commune"
    everything = expand("https://fhir.sokhoe.vn/ValueSet/drug", count=0)
    assert everything.total == len(DRUGS)
    assert everything.contains == ()


def test_expand_errors() -> None:
    with pytest.raises(NotFound, match=r"Value set 'http://example.org/vs'"):
        expand("http://example.org/vs")
    with pytest.raises(InvalidRequest):
        expand(ICD10_VALUE_SET, offset=-1)


# --- $validate-code ---------------------------------------------------------------------------


def test_validate_code() -> None:
    ok = validate_code(ICD10_SYSTEM, "I10")
    assert ok.result and ok.display == "Essential (primary) hypertension" and ok.message is None
    bad = validate_code(ICD10_SYSTEM, "I99.9")
    assert (
        not bad.result and bad.message == "'I99.9' is not a code of http://hl7.org/fhir/sid/icd-10"
    )
    block = validate_code(ICD10_SYSTEM, "I10-I15")
    assert not block.result and "chapter or block" in (block.message or "")


def test_validate_display_in_english_or_vietnamese() -> None:
    assert validate_code(ICD10_SYSTEM, "I10", "essential (PRIMARY) hypertension").result
    assert validate_code(ICD10_SYSTEM, "I10", "Tang huyet ap vo can (nguyen phat)").result
    wrong = validate_code(ICD10_SYSTEM, "I10", "Hypotension")
    assert not wrong.result
    assert wrong.display == "Essential (primary) hypertension"
    assert "does not match" in (wrong.message or "")


def test_validate_against_value_set() -> None:
    vs = "https://fhir.sokhoe.vn/ValueSet/drug"
    assert validate_code(DRUG, "ORESOL", value_set=vs).result
    other = validate_code(ICD10_SYSTEM, "I10", value_set=vs)
    assert not other.result and "not in value set" in (other.message or "")
    with pytest.raises(NotFound):
        validate_code("http://example.org/cs", "x")


# --- the write-time check ---------------------------------------------------------------------


def _condition(*codes: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": c} for c in codes]},
    }


def test_diagnosis_issues_reports_bad_code_with_path() -> None:
    assert diagnosis_issues(_condition("E11.9", "E119", "A91")) == []
    assert diagnosis_issues(_condition("E11.9", "E11.99")) == [
        Issue("code-invalid", "'E11.99' is not an ICD-10 code", "Condition.code.coding[1].code")
    ]
    assert diagnosis_issues(_condition("IV"))[0].diagnostics == "'IV' is not an ICD-10 code"


def test_diagnosis_issues_looks_everywhere_inside() -> None:
    claim = {
        "resourceType": "Claim",
        "diagnosis": [
            {"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10_SYSTEM}]}},
            {
                "sequence": 2,
                "diagnosisCodeableConcept": {
                    "coding": [
                        {"system": "http://snomed.info/sct", "code": "nonsense"},
                        {"system": ICD10_SYSTEM, "code": "Q99.99"},
                    ]
                },
            },
        ],
    }
    issues = diagnosis_issues(claim)
    assert [i.expression for i in issues] == [
        "Claim.diagnosis[1].diagnosisCodeableConcept.coding[1].code"
    ]


def test_diagnosis_issues_ignores_other_resources() -> None:
    observation = {
        "resourceType": "Observation",
        "valueCodeableConcept": {"coding": [{"system": ICD10_SYSTEM, "code": "nonsense"}]},
    }
    assert diagnosis_issues(observation) == []
    encounter = {
        "resourceType": "Encounter",
        "reasonCode": [{"coding": [{"system": ICD10_SYSTEM, "code": "nonsense"}]}],
    }
    assert [i.expression for i in diagnosis_issues(encounter)] == [
        "Encounter.reasonCode[0].coding[0].code"
    ]


def test_synthea_snomed_diagnoses_are_left_alone() -> None:
    """Synthea codes its diagnoses in SNOMED CT and carries no ICD-10 coding at all, so this is
    only the check's promise to leave other systems alone; the ICD-10 cases run on the demo
    population below."""
    snomed = 0
    for path in sorted((SHARED_DATA / "synthea").glob("*.json")):
        for entry in orjson.loads(path.read_bytes()).get("entry", []):
            resource = entry["resource"]
            if resource["resourceType"] not in DIAGNOSIS_TYPES:
                continue
            codings = [c for c in _all_codings(resource) if c.get("system") == SNOMED]
            assert not any(c.get("system") == ICD10_SYSTEM for c in _all_codings(resource))
            snomed += len(codings)
            assert diagnosis_issues(resource) == [], resource.get("id")
    assert snomed > 1000  # a check that refused foreign systems would have failed here


def _all_codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            yield node
        for value in node.values():
            yield from _all_codings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _all_codings(item)


def _demo_icd10_codings(resource: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(FHIRPath, Coding) of each ICD-10 coding where the demo writes them (``demo.clinical``):
    ``Condition.code`` and ``Encounter.reasonCode``. Spelled out here rather than taken from the
    module's own walker, so the expected paths do not come from the code under test."""
    rtype = resource["resourceType"]
    concepts: list[tuple[str, dict[str, Any]]] = []
    if rtype == "Condition":
        concepts = [("Condition.code", resource["code"])]
    elif rtype == "Encounter":
        concepts = [
            (f"Encounter.reasonCode[{i}]", c) for i, c in enumerate(resource.get("reasonCode", []))
        ]
    return [
        (f"{where}.coding[{j}].code", coding)
        for where, concept in concepts
        for j, coding in enumerate(concept.get("coding", []))
        if coding.get("system") == ICD10_SYSTEM
    ]


# A block (classifies diagnoses, is not one), a code one digit too deep, and a made-up code.
_NOT_DIAGNOSES = ["J00-J06", "E11.99", "Q99.99"]


def test_demo_icd10_diagnoses_pass_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    """The write-time check over a generated population that does hold ICD-10 diagnoses: every
    code the demo writes passes, and the same resource with one of them replaced by a
    non-diagnosis is refused with the path of that coding."""
    write_demo(tmp_path, 30, 11, "ndjson")
    found: Counter[str] = Counter()
    for path in sorted(tmp_path.glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            resource = orjson.loads(line)
            assert diagnosis_issues(resource) == [], resource.get("id")
            for where, coding in _demo_icd10_codings(resource):
                found[resource["resourceType"]] += 1
                valid = coding["code"]
                wrong = _NOT_DIAGNOSES[found.total() % len(_NOT_DIAGNOSES)]
                coding["code"] = wrong
                issues = diagnosis_issues(resource)
                coding["code"] = valid
                assert [(i.code, i.expression) for i in issues] == [("code-invalid", where)]
                assert wrong in issues[0].diagnostics
    # The data holds the case: ICD-10 diagnoses on Conditions and Encounters, many of each.
    assert found["Condition"] >= 30 and found["Encounter"] >= 30, found
