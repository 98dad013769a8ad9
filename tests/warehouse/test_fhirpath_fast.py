"""The fast FHIRPath path gives exactly what fhirpathpy gives: on every path of the warehouse
views over the demo population, on the Synthea sample, and on hand-made edge cases that must
fall back (primitive extensions, unexpected choice types, Quantities compared by unit…)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sokhoe.demo import write_demo
from sokhoe.warehouse import viewdef
from sokhoe.warehouse.build import views
from sokhoe.warehouse.fhirpath_ext import (
    CompiledPath,
    FhirPathError,
    compile_path,
    evaluate,
    evaluate_fast,
    evaluate_values,
    plain,
)
from sokhoe.warehouse.viewdef import Select, run_view

SHARED_DATA = Path("/work/shared/data")


def _reference(path: CompiledPath, focus: list[Any]) -> Any:
    """fhirpathpy's answer (or the error type it raises)."""
    try:
        return [plain(item) for item in evaluate(path, focus, {})]
    except FhirPathError as e:
        return type(e)


def _fast(path: CompiledPath, focus: list[Any]) -> Any:
    try:
        return evaluate_values(path, focus, {})
    except FhirPathError as e:
        return type(e)


ISSUED: dict[str, list[dict[str, Any]]] = {
    "MedicationRequest": [
        {
            "resourceType": "MedicationRequest",
            "id": "rx-line-1",
            "extension": [
                {
                    "url": "https://fhir.sokhoe.vn/StructureDefinition/prescribing-facility",
                    "valueReference": {"reference": "Organization/org-79001"},
                }
            ],
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": "https://fhir.sokhoe.vn/CodeSystem/thuoc", "code": "AMOXICILIN-500"},
                    {"system": "http://www.whocc.no/atc", "code": "J01CA04"},
                ]
            },
            "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "authoredOn": "2026-01-05T09:00:00+07:00",
            "groupIdentifier": {
                "system": "https://fhir.sokhoe.vn/sid/ma-don-thuoc",
                "value": "79001abc1234-C",
            },
            "dispenseRequest": {
                "validityPeriod": {"start": "2026-01-05T09:00:00+07:00", "end": "2026-01-10"},
                "quantity": {"value": 15, "unit": "Viên"},
                "expectedSupplyDuration": {"value": 5, "unit": "ngày", "code": "d"},
            },
        }
    ],
    "MedicationDispense": [
        {
            "resourceType": "MedicationDispense",
            "id": "dispense-1",
            "status": "completed",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "J01CA04"}]
            },
            "performer": [
                {"actor": {"reference": "Practitioner/ds1"}},
                {"actor": {"reference": "Organization/pharmacy-1"}},
            ],
            "authorizingPrescription": [{"reference": "MedicationRequest/rx-line-1"}],
            "quantity": {"value": 10, "unit": "Viên"},
            "whenHandedOver": "2026-01-06T10:00:00+07:00",
            "substitution": {"wasSubstituted": False},
        }
    ],
}
"""An issued prescription line and its dispense as ``$prescribe`` and ``$dispense`` write
them (the demo has neither): the medication views' paths are compared on them too."""


@pytest.fixture(scope="module")
def demo() -> dict[str, list[dict[str, Any]]]:
    import tempfile

    by_type: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        write_demo(Path(folder), 50, 5, "ndjson", progress=False)
        for file in sorted(Path(folder).glob("*.ndjson")):
            for line in file.read_bytes().splitlines():
                resource = json.loads(line)
                by_type.setdefault(resource["resourceType"], []).append(resource)
    for rtype, samples in ISSUED.items():
        by_type.setdefault(rtype, []).extend(samples)
    return by_type


def _paths(select: Select) -> Iterator[CompiledPath]:
    yield from (c.path for c in select.columns)
    if select.for_each is not None:
        yield select.for_each
    yield from select.repeat
    for child in (*select.selects, *select.union_all):
        yield from _paths(child)


@pytest.mark.parametrize("view", views(), ids=lambda v: v.name)
def test_every_warehouse_view_path_agrees_on_the_demo(
    view: viewdef.ViewDefinition, demo: Mapping[str, list[dict[str, Any]]]
) -> None:
    resources = demo[view.resource]
    assert resources
    paths = [*_paths(view.root), *(p for p, _ in view.where)]
    evaluations = fast = 0
    for path in paths:
        assert path.fast is not None, path.text  # every warehouse path is in the fast subset
        for resource in resources:
            expected = _reference(path, [resource])
            assert _fast(path, [resource]) == expected, (resource["id"], path.text)
            evaluations += 1
            fast += evaluate_fast(path, [resource]) is not None
    assert fast == evaluations  # the demo data never needs the fallback


@pytest.mark.parametrize("view", views(), ids=lambda v: v.name)
def test_every_warehouse_view_gives_the_same_rows_without_the_fast_path(
    view: viewdef.ViewDefinition,
    demo: Mapping[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Whole rows, forEach foci included: the view run as it is, then with fhirpathpy only.
    fast_rows = list(run_view(view, demo[view.resource]))

    def slow(path: CompiledPath, focus: list[Any], variables: Mapping[str, Any]) -> list[Any]:
        return [plain(item) for item in evaluate(path, focus, variables)]

    monkeypatch.setattr(viewdef, "evaluate_values", slow)
    assert list(run_view(view, demo[view.resource])) == fast_rows
    assert fast_rows


#: The new constructs, over Synthea resources of every kind (most give nothing on most types,
#: which must agree too).
SYNTHEA_EXPRESSIONS = (
    "identifier.where(system = 'http://hl7.org/fhir/sid/us-ssn').value.first()",
    "identifier.where(type.coding.code = 'MR').value",
    "identifier.where(system != 'http://hl7.org/fhir/sid/us-ssn').exists()",
    "name.where(use = 'official' or use.empty()).first().family",
    "name.where(use = 'official' and family.exists()).given.first()",
    "name.where(use = 'nickname').empty()",
    "telecom.where(system = 'phone' and use = 'home').value.first()",
    "extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')"
    ".extension('ombCategory').value.ofType(Coding).code.first()",
    "extension('http://hl7.org/fhir/StructureDefinition/patient-birthPlace')"
    ".value.ofType(Address).city",
    "extension('http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName')"
    ".value.ofType(string)",
    "extension('http://synthetichealth.github.io/synthea/disability-adjusted-life-years')"
    ".value.ofType(decimal)",
    "deceased.exists() and (deceased.ofType(boolean) != false)",
    "deceased.ofType(dateTime)",
    "multipleBirth.ofType(boolean)",
    "multipleBirth.ofType(integer)",
    "birthDate.toString().substring(0, 7)",
    "birthDate.toString().substring(5)",
    "birthDate.substring(20, 2)",
    "gender.toString()",
    "onset.ofType(dateTime)",
    "onset.ofType(Period).start",
    "abatement.ofType(dateTime)",
    "occurrence.ofType(dateTime)",
    "performed.ofType(Period).start",
    "performed.ofType(dateTime)",
    "medication.ofType(CodeableConcept).coding.code.first()",
    "medication.ofType(Reference).getReferenceKey(Medication)",
    "code.coding.where(system = 'http://snomed.info/sct').code.first()",
    "vaccineCode.coding.where(system = 'http://hl7.org/fhir/sid/cvx').code",
    "subject.getReferenceKey(Patient)",
    "patient.getReferenceKey()",
    "encounter.getReferenceKey(Encounter)",
    "class.code = 'AMB'",
    "status = 'finished'",
    "address.line.join(', ')",
    "address.where(country = 'US').state.first()",
    "communication.language.coding.where(code = 'en-US').exists()",
    "maritalStatus.coding.code = 'M'",
    "dosageInstruction.timing.repeat.frequency.first()",
    "dosageInstruction.doseAndRate.dose.ofType(Quantity).value",
    "reasonReference.getReferenceKey(Condition)",
    "type.coding.where(code = 'prov').exists()",
    "active = true",
    "active != false",
)


@pytest.mark.parametrize(
    "kind",
    ["Patient", "Encounter", "Condition", "Immunization", "Procedure", "MedicationRequest",
     "Organization", "AllergyIntolerance", "Device", "Location"],
)  # fmt: skip
def test_the_new_constructs_agree_with_fhirpathpy_on_synthea(kind: str) -> None:
    file = SHARED_DATA / "synthea-bulk-10" / f"{kind}.000.ndjson"
    resources = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
    compared = 0
    for text in SYNTHEA_EXPRESSIONS:
        path = compile_path(text)
        assert path.fast is not None, text
        for resource in resources[:40]:
            assert _fast(path, [resource]) == _reference(path, [resource]), (resource["id"], text)
            compared += 1
    assert compared >= len(SYNTHEA_EXPRESSIONS) * min(len(resources), 40)


def _patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", **elements}


#: (resource, expression, whether the fast path must give way to fhirpathpy).
EDGE_CASES: tuple[tuple[dict[str, Any], str, bool], ...] = (
    # '=' with several items on the left: false in fhirpathpy (not an error), empty → empty
    (_patient(name=[{"given": ["A", "B"]}]), "name.where(given = 'A').exists()", False),
    (_patient(name=[{"given": ["A"]}]), "name.where(given = 'A').exists()", False),
    (_patient(name=[{"family": "X"}]), "name.where(given = 'A').exists()", False),
    (_patient(name=[{"family": "X"}]), "name.where(given != 'A').exists()", False),
    (_patient(name=[{"given": ["A", "B"]}]), "name.where(given != 'A').exists()", False),
    # three-valued and/or
    (_patient(address=[{"city": "H"}]), "address.where(use = 'home' or use.empty()).city", False),
    (_patient(address=[{"city": "H"}]), "address.where(use = 'home' and city = 'H').city", False),
    (_patient(address=[{"use": "work"}]), "address.where(use = 'home' or city = 'H').use", False),
    (_patient(active=True), "active = true and active = false", False),
    (_patient(), "active = true or gender = 'male'", False),
    (_patient(gender="male"), "active = true or gender = 'male'", False),
    # booleans against string literals, and JSON 1 against true (Python equality, as fhirpathpy)
    (_patient(active=True), "active = 'true'", False),
    (_patient(multipleBirthInteger=1), "multipleBirth = true", False),
    # choice elements
    (_patient(deceasedBoolean=False), "deceased.exists() and (deceased.ofType(boolean) != false)",
     False),
    (_patient(deceasedBoolean=True), "deceased.exists() and (deceased.ofType(boolean) != false)",
     False),
    (_patient(deceasedDateTime="2020-01-02"),
     "deceased.exists() and (deceased.ofType(boolean) != false)", True),
    (_patient(), "deceased.exists() and (deceased.ofType(boolean) != false)", False),
    (_patient(_deceasedBoolean={"extension": [{"url": "u", "valueCode": "unknown"}]}),
     "deceased.exists()", True),
    (_patient(deceasedBoolean=True, deceasedDateTime="2020"), "deceased.exists()", True),
    ({"resourceType": "Observation", "id": "o", "status": "final",
      "valueQuantity": {"value": 1.5, "unit": "mg", "system": "http://unitsofmeasure.org",
                        "code": "mg"}}, "value.ofType(Quantity).value", False),
    ({"resourceType": "Observation", "id": "o", "status": "final", "valueString": "x"},
     "value.ofType(Quantity).value", True),
    ({"resourceType": "Observation", "id": "o", "status": "final",
      "valueQuantity": {"value": 120, "code": "mm[Hg]", "system": "http://unitsofmeasure.org"}},
     "value.ofType(Quantity)", False),
    ({"resourceType": "Observation", "id": "o", "status": "final",
      "valueQuantity": {"value": 120, "code": "mm[Hg]", "system": "http://unitsofmeasure.org"}},
     "value.ofType(Quantity) = '120'", True),
    ({"resourceType": "Observation", "id": "o", "status": "final",
      "component": [{"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 120}},
                    {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 80}},
                    {"code": {"coding": [{"code": "8480-6"}, {"code": "x"}]},
                     "valueQuantity": {"value": 1}}]},
     "component.where(code.coding.code = '8480-6').value.ofType(Quantity).value", False),
    # primitives with extensions: their own items in fhirpathpy, so the fast path steps aside
    (_patient(birthDate="1990-05-12", _birthDate={"extension": [{"url": "t", "valueTime": "1"}]}),
     "birthDate.toString().substring(0, 7)", True),
    (_patient(name=[{"given": ["A", None], "_given": [None, {"extension": [{"url": "u"}]}]}]),
     "name.given.first()", True),
    (_patient(name=[{"given": [None, "B"], "_given": [{"extension": [{"url": "u"}]}, None]}]),
     "name.given.first()", True),
    (_patient(birthDate="1990", _birthDate={"extension": [{"url": "t", "valueTime": "1"}]}),
     "birthDate.extension('t').value.ofType(time)", True),
    (_patient(extension=[{"url": "a", "valueString": "1"}, {"url": "a", "valueString": "2"},
                         {"url": "b", "valueString": "3"}]),
     "extension('a').value.ofType(string)", False),
    (_patient(extension=[{"url": "a", "extension": [{"url": "x", "valueCoding": {"code": "c"}}]}]),
     "extension('a').extension('x').value.ofType(Coding).code", False),
    # toString and substring
    (_patient(birthDate="1990"), "birthDate.toString().substring(0, 7)", False),
    (_patient(birthDate="1990-05-12"), "birthDate.substring(10)", False),
    (_patient(birthDate="1990-05-12"), "birthDate.substring(3, 100)", False),
    (_patient(active=True), "active.toString()", True),
    (_patient(multipleBirthInteger=2), "multipleBirth.toString()", True),
    (_patient(name=[{"given": ["A", "B"]}]), "name.given.toString()", False),
    (_patient(name=[{"given": ["A", "B"]}]), "name.given.substring(0, 1)", True),
    # a value-less complex element
    (_patient(address=[{"extension": [{"url": "u"}]}, {"city": "C"}]), "address.first().city",
     True),
    # join and keys
    (_patient(name=[{"given": ["A", "B"]}]), "name.given.join(' ')", False),
    (_patient(generalPractitioner=[{"reference": "Practitioner/9"},
                                   {"reference": "Organization/3"}]),
     "generalPractitioner.getReferenceKey(Organization)", False),
)  # fmt: skip


@pytest.mark.parametrize(("resource", "text", "falls_back"), EDGE_CASES)
def test_edge_cases_agree_and_fall_back_where_they_must(
    resource: dict[str, Any], text: str, falls_back: bool
) -> None:
    path = compile_path(text)
    assert path.fast is not None, text
    assert _fast(path, [resource]) == _reference(path, [resource])
    try:
        taken = evaluate_fast(path, [resource]) is not None
    except FhirPathError:
        taken = True
    assert taken is not falls_back


@pytest.mark.parametrize(
    "text",
    [
        "name.where($this.family = 'x')",  # $this
        "name.where(family = %given)",  # a constant
        "name.where(family.length() > 2)",  # comparison and unsupported function
        "name.where(family)",  # criteria that may not be boolean
        "name.given.ofType(string)",  # ofType on an element that is not a choice
        "Patient.name",  # a type name
        "value.ofType(Foo)",  # not a type of any choice element
        "name.where(family = 1)",  # equality with a number
        "name.first(1)",
    ],
)
def test_what_the_fast_path_does_not_cover_is_left_to_fhirpathpy(text: str) -> None:
    try:
        path = compile_path(text)
    except FhirPathError:
        return  # refused at parse time (unknown function or arity): nothing to compare
    assert path.fast is None
