"""The R4 validator: what it refuses, where it says the problem is, and that real data passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sokhoe.errors import InvalidResource
from sokhoe.fhir.validation import find_issues, primitive_problem, validate_resource
from tests.conftest import SHARED_DATA


def _issues(resource: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(i.code, i.expression) for i in find_issues(resource)]


def test_every_synthea_resource_is_valid() -> None:
    count = 0
    for path in sorted((SHARED_DATA / "synthea").glob("*.json")):
        for entry in json.loads(path.read_bytes())["entry"]:
            assert find_issues(entry["resource"]) == [], (path.name, entry["fullUrl"])
            count += 1
    assert count > 30_000


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"resourceType": "Patient", "foo": 1}, ("structure", "Patient.foo")),
        ({"resourceType": "Patient", "gender": "nam"}, ("code-invalid", "Patient.gender")),
        ({"resourceType": "Patient", "birthDate": "1990-02-30"}, ("value", "Patient.birthDate")),
        ({"resourceType": "Patient", "birthDate": "30/01/1990"}, ("value", "Patient.birthDate")),
        ({"resourceType": "Patient", "name": {"family": "Lê"}}, ("structure", "Patient.name")),
        ({"resourceType": "Patient", "name": []}, ("structure", "Patient.name")),
        ({"resourceType": "Patient", "active": "true"}, ("value", "Patient.active")),
        ({"resourceType": "Patient", "id": "a b"}, ("value", "Patient.id")),
        ({"resourceType": "Patient", "gender": None}, ("structure", "Patient.gender")),
        (
            {"resourceType": "Patient", "telecom": [{"system": "phone", "rank": 0}]},
            ("value", "Patient.telecom[0].rank"),
        ),
        (
            {"resourceType": "Observation", "status": "final"},
            ("required", "Observation.code"),
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": "Medication/1"},
            },
            ("structure", "Observation.subject.reference"),
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueString": "a",
                "valueBoolean": True,
            },
            ("structure", "Observation.value.ofType(boolean)"),
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "x"},
                "valueQuantity": {"value": "7.2"},
            },
            ("value", "Observation.value.ofType(Quantity).value"),
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {}}]},
            ("structure", "Bundle.entry[0].resource.resourceType"),
        ),
        (
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Patient", "gender": "f"}}],
            },
            ("code-invalid", "Bundle.entry[0].resource.gender"),
        ),
        ({"resourceType": "NoSuchType"}, ("structure", "NoSuchType.resourceType")),
    ],
)
def test_invalid_resources_are_reported_at_their_path(
    resource: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in _issues(resource)


def test_valid_forms_pass() -> None:
    ok = {
        "resourceType": "Patient",
        "id": "p-1.a",
        "meta": {"lastUpdated": "2026-11-23T10:00:00+07:00"},
        "name": [{"family": "Nguyễn", "given": ["Thị", "Hoa"]}],
        "gender": "female",
        "birthDate": "1990",
        "_birthDate": {"extension": [{"url": "http://example.org/x", "valueBoolean": True}]},
        "deceasedBoolean": False,
        "multipleBirthInteger": 2,
        "contact": [{"name": {"text": "Lê Văn An"}}],
        "text": {"status": "generated", "div": "<div>Hoa</div>"},
    }
    assert find_issues(ok) == []
    assert validate_resource(ok) == ok


def test_validate_resource_raises_with_every_issue() -> None:
    with pytest.raises(InvalidResource) as caught:
        validate_resource({"resourceType": "Patient", "gender": "x", "birthDate": "x"})
    assert len(caught.value.issues) == 2


@pytest.mark.parametrize(
    ("code", "value", "ok"),
    [
        ("instant", "2026-11-23T10:00:00Z", True),
        ("instant", "2026-11-23", False),
        ("dateTime", "2026-11", True),
        ("dateTime", "2026-11-23T10:00", False),
        ("positiveInt", 0, False),
        ("unsignedInt", 0, True),
        ("integer", 2**31, False),
        ("decimal", True, False),
        ("code", " a", False),
        ("uri", "a b", False),
        ("oid", "urn:oid:1.2.3", True),
        ("uuid", "urn:uuid:6f9619ff-8b86-d011-b42d-00c04fc964ff", True),
        ("base64Binary", "aGVsbG8=", True),
        ("time", "25:00:00", False),
        ("uri", "", False),  # empty strings: never, whatever the pattern says
        ("string", "", False),
        ("code", "", False),
        ("string", " ", True),
        ("dateTime", "2020-01-01T10:00:00", False),  # a time needs its zone
        ("dateTime", "2020-01-01T10:00:00+07:00", True),
        ("dateTime", "2020-02-30", False),  # not a real day
        ("dateTime", "2020-01-01T10:00:00+15:00", False),
        ("instant", "2020-01-01T10:00:00.123456+07:00", True),
        ("time", "10:00", False),
        ("integer", 2**31 - 1, True),
        ("integer", -(2**31), True),
        ("integer", -(2**31) - 1, False),
        ("integer", 1.0, False),
        ("integer", "1", False),
        ("decimal", "1.5", False),
        ("decimal", 1.50, True),
        ("id", "a" * 64, True),
        ("id", "a" * 65, False),
        ("id", "a_b", False),
        ("oid", "urn:oid:1.02", False),
        ("uuid", "urn:uuid:6F9619FF-8B86-D011-B42D-00C04FC964FF", False),
        ("canonical", "http://example.org/ValueSet/x|1.0", True),
        ("base64Binary", "abc", False),
        ("markdown", "**đậm**", True),
        ("boolean", "true", False),
    ],
)
def test_primitive_formats(code: str, value: Any, ok: bool) -> None:
    assert (primitive_problem(code, value) is None) is ok


NAME = {"family": "Nguyễn"}
EXT = {"extension": [{"url": "http://example.org/x", "valueString": "x"}]}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # a null filler where the '_' array carries that repetition's extension: valid
        ({**NAME, "given": ["Thị", None], "_given": [None, EXT]}, None),
        ({**NAME, "_given": [EXT]}, None),
        ({**NAME, "given": ["Thị"], "_given": [EXT]}, None),
        # a null with nothing beside it
        ({**NAME, "given": ["Thị", None]}, ("structure", "Patient.name[0].given[1]")),
        ({**NAME, "given": [None], "_given": [None]}, ("structure", "Patient.name[0].given[0]")),
        # the two arrays must pair up
        ({**NAME, "given": ["Thị"], "_given": [EXT, EXT]}, ("structure", "Patient.name[0].given")),
        ({**NAME, "given": ["Thị"], "_given": EXT}, ("structure", "Patient.name[0].given")),
        ({**NAME, "given": ["Thị"], "_given": []}, ("structure", "Patient.name[0].given")),
        ({**NAME, "given": ["Thị"], "_given": ["x"]}, ("structure", "Patient.name[0].given[0]")),
        ({**NAME, "given": ["Thị"], "_given": [{}]}, ("structure", "Patient.name[0].given[0]")),
    ],
)
def test_repeating_primitives_pair_with_their_extension_arrays(
    name: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    found = _issues({"resourceType": "Patient", "name": [name]})
    assert found == ([] if expected is None else [expected])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"_gender": EXT}, None),
        ({"gender": "male", "_gender": {"id": "g1"}}, None),
        ({"_gender": "male"}, ("structure", "Patient.gender")),
        ({"_gender": [EXT]}, ("structure", "Patient.gender")),
        ({"_gender": {"value": "male"}}, ("structure", "Patient.gender.value")),
        ({"_name": EXT}, ("structure", "Patient.name")),  # not a primitive
        ({"_nonsense": EXT}, ("structure", "Patient._nonsense")),
        ({"_deceasedBoolean": "x"}, ("structure", "Patient.deceased.ofType(boolean)")),
    ],
)
def test_extensions_of_single_primitives(
    extra: dict[str, Any], expected: tuple[str, str] | None
) -> None:
    found = _issues({"resourceType": "Patient", **extra})
    assert found == ([] if expected is None else [expected])
