"""The ViewDefinition engine beyond the spec's suite: up-front validation, extra functions."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.fhirpath_ext import evaluate_fast
from sokhoe.warehouse.viewdef import ViewDefinition, columns, run_view
from tests.conftest import SHARED_DATA


def _view(*cols: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resource": "Patient", "select": [{"column": list(cols)}], **extra}


ID = {"name": "id", "path": "id", "type": "id"}


def _rows(view: dict[str, Any], *resources: dict[str, Any]) -> list[dict[str, Any]]:
    return list(run_view(view, resources))


def _error(view: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        ViewDefinition.parse(view)
    return caught.value


@pytest.mark.parametrize(
    ("view", "where", "says"),
    [
        ([], "ViewDefinition", "must be a JSON object"),
        (_view(ID, colour="red"), "ViewDefinition.colour", "unknown element 'colour'"),
        (
            _view({**ID, "width": 3}),
            "ViewDefinition.select[0].column[0].width",
            "unknown element 'width'",
        ),
        (_view({"path": "id"}), "ViewDefinition.select[0].column[0].name", "name is required"),
        (_view({"name": "id"}), "ViewDefinition.select[0].column[0].path", "path is required"),
        (_view({"name": "1st", "path": "id"}), "ViewDefinition.select[0].column[0].name", "match"),
        (_view(ID, ID), "ViewDefinition.select[0].column[1]", "'id' is used twice"),
        (
            {
                "resource": "Patient",
                "select": [{"column": [ID]}, {"forEach": "name", "column": [ID]}],
            },
            "ViewDefinition.select[1].column[0]",
            "'id' is used twice",
        ),
        (_view(ID, resource="Patients"), "ViewDefinition.resource", "not a FHIR R4 resource"),
        ({"resource": "Patient", "select": []}, "ViewDefinition.select", "must not be empty"),
        (
            _view(ID, constant=[{"name": "d", "valueDate": "12/03/1978"}]),
            "ViewDefinition.constant[0].valueDate",
            "not a valid date",
        ),
        (
            _view(ID, constant=[{"name": "n", "valueInteger": 1, "valueString": "1"}]),
            "ViewDefinition.constant[0]",
            "exactly one value[x] (2 given)",
        ),
        (
            _view(ID, constant=[{"name": "n", "valueQuantity": {"value": 1}}]),
            "ViewDefinition.constant[0].valueQuantity",
            "unknown element",
        ),
        (
            _view(ID, constant=[{"name": "n", "valuePositiveInt": 0}]),
            "ViewDefinition.constant[0].valuePositiveInt",
            "out of range",
        ),
        (
            _view({"name": "g", "path": "name.given.join("}),
            "ViewDefinition.select[0].column[0].path",
            "syntax error",
        ),
        (
            _view({"name": "g", "path": "name given"}),
            "ViewDefinition.select[0].column[0].path",
            "unexpected 'given'",
        ),
        (
            _view({"name": "g", "path": "name.frobnicate()"}),
            "ViewDefinition.select[0].column[0].path",
            "unknown FHIRPath function frobnicate()",
        ),
        (
            _view({"name": "g", "path": "%nope"}),
            "ViewDefinition.select[0].column[0].path",
            "undefined constant %nope",
        ),
        (
            _view({**ID, "collection": "yes"}),
            "ViewDefinition.select[0].column[0].collection",
            "true or false",
        ),
        (
            {
                "resource": "Patient",
                "select": [{"forEach": "a", "forEachOrNull": "b", "column": [ID]}],
            },
            "ViewDefinition.select[0]",
            "only one of forEach, forEachOrNull",
        ),
        (
            {"resource": "Patient", "select": [{"repeat": "item", "column": [ID]}]},
            "ViewDefinition.select[0].repeat",
            "non-empty array",
        ),
        ({"resource": "Patient", "select": [{}]}, "ViewDefinition.select[0]", "needs a column"),
        (_view(ID, where=[{"description": "x"}]), "ViewDefinition.where[0].path", "required"),
    ],
)
def test_a_bad_view_is_refused_naming_the_element(view: Any, where: str, says: str) -> None:
    error = _error(view)
    assert error.status == 400
    assert error.issues[0].expression == where
    assert says in str(error)


def test_columns_are_in_spec_order_with_their_types() -> None:
    view = ViewDefinition.parse(
        {
            "resource": "Patient",
            "select": [
                {
                    "column": [ID],
                    "select": [{"forEach": "name", "column": [{"name": "f", "path": "family"}]}],
                    "unionAll": [
                        {"column": [{"name": "u", "path": "'a'", "type": "string"}]},
                        {"column": [{"name": "u", "path": "'b'", "type": "string"}]},
                    ],
                },
                {"column": [{"name": "tags", "path": "meta.tag.code", "collection": True}]},
            ],
        }
    )
    assert [(c.name, c.type, c.collection) for c in columns(view)] == [
        ("id", "id", False),
        ("f", None, False),
        ("u", "string", False),
        ("tags", None, True),
    ]


def test_rows_stream_one_resource_at_a_time() -> None:
    # An endless input: run_view must yield rows without reading it all.
    def endless() -> Iterator[dict[str, Any]]:
        for i in itertools.count():
            yield {"resourceType": "Patient", "id": f"p{i}"}

    rows = list(itertools.islice(run_view(_view(ID), endless()), 3))
    assert rows == [{"id": "p0"}, {"id": "p1"}, {"id": "p2"}]


def test_other_resource_types_are_skipped() -> None:
    rows = _rows(
        _view(ID),
        {"resourceType": "Observation", "id": "o"},
        {"resourceType": "Patient", "id": "p"},
    )
    assert rows == [{"id": "p"}]


def test_a_runtime_error_names_the_column_and_the_resource() -> None:
    view = _view({"name": "family", "path": "name.family"})
    with pytest.raises(InvalidRequest) as caught:
        _rows(
            view,
            {"resourceType": "Patient", "id": "p9", "name": [{"family": "A"}, {"family": "B"}]},
        )
    assert caught.value.issues[0].expression == "ViewDefinition.select[0].column[0].path"
    assert "Patient/p9" in str(caught.value)
    assert "gave 2 values" in str(caught.value)


@pytest.mark.parametrize(
    ("reference", "typed", "key"),
    [
        ("Patient/p1", "Patient", "p1"),
        ("https://fhir.sokhoe.vn/fhir/Patient/p1", "Patient", "p1"),
        ("Patient/p1/_history/3", "Patient", "p1"),
        ("Group/g1", "Patient", None),
        (
            "urn:uuid:0b1c2d3e-0000-4000-8000-000000000001",
            None,
            "0b1c2d3e-0000-4000-8000-000000000001",
        ),
        ("urn:uuid:0b1c2d3e-0000-4000-8000-000000000001", "Patient", None),
        ("#contained", None, None),
    ],
)
def test_get_reference_key(reference: str, typed: str | None, key: str | None) -> None:
    path = f"link.other.getReferenceKey({typed or ''})"
    view = _view({"name": "k", "path": path})
    patient = {"resourceType": "Patient", "id": "x", "link": [{"other": {"reference": reference}}]}
    assert _rows(view, patient) == [{"k": key}]


def test_extension_returns_every_match_including_on_primitives() -> None:
    url = "https://fhir.sokhoe.vn/StructureDefinition/ethnicity"
    view = _view(
        {"name": "codes", "path": f"extension('{url}').value.ofType(string)", "collection": True},
        {"name": "birth_time", "path": "birthDate.extension('http://x/t').value.ofType(dateTime)"},
    )
    patient = {
        "resourceType": "Patient",
        "extension": [
            {"url": url, "valueString": "Kinh"},
            {"url": "http://other", "valueString": "no"},
            {"url": url, "valueString": "Tày"},
        ],
        "birthDate": "1990-01-02",
        "_birthDate": {
            "extension": [{"url": "http://x/t", "valueDateTime": "1990-01-02T07:30:00+07:00"}]
        },
    }
    assert _rows(view, patient) == [
        {"codes": ["Kinh", "Tày"], "birth_time": "1990-01-02T07:30:00+07:00"}
    ]


@pytest.mark.parametrize(
    ("path", "low", "high"),
    [
        ("birthDate", "1990-01-01", "1990-12-31"),
        (
            "deceased.ofType(dateTime)",
            "2024-02-01T00:00:00.000+07:00",
            "2024-02-29T23:59:59.999+07:00",
        ),
        ("multipleBirth.ofType(integer)", 1.5, 2.5),
        ("@T12:34", "12:34:00.000", "12:34:59.999"),
        ("2.50", 2.495, 2.505),
    ],
)
def test_boundaries(path: str, low: Any, high: Any) -> None:
    view = _view(
        {"name": "low", "path": f"{path}.lowBoundary()"},
        {"name": "high", "path": f"{path}.highBoundary()"},
    )
    patient = {
        "resourceType": "Patient",
        "birthDate": "1990",
        "deceasedDateTime": "2024-02+07:00",
        "multipleBirthInteger": 2,
    }
    assert _rows(view, patient) == [{"low": low, "high": high}]


def test_decimal_boundary_with_a_precision() -> None:
    view = _view({"name": "v", "path": "1.587.highBoundary(2)"})
    assert _rows(view, {"resourceType": "Patient"}) == [{"v": 1.59}]


def test_constants_are_typed() -> None:
    view = _view(
        ID,
        constant=[
            {"name": "born_after", "valueDate": "1990-06-01"},
            {"name": "weight", "valueDecimal": 3.5},
        ],
        where=[{"path": "birthDate > %born_after and %weight > 3"}],
    )
    rows = _rows(
        view,
        {"resourceType": "Patient", "id": "young", "birthDate": "2001-01-01"},
        {"resourceType": "Patient", "id": "old", "birthDate": "1960-01-01"},
    )
    assert rows == [{"id": "young"}]


def test_a_non_boolean_where_is_an_error_but_empty_is_false() -> None:
    view = _view(ID, where=[{"path": "gender"}])
    assert _rows(view, {"resourceType": "Patient", "id": "none"}) == []
    with pytest.raises(InvalidRequest, match="must evaluate to a boolean"):
        _rows(view, {"resourceType": "Patient", "id": "f", "gender": "female"})


def _member_paths(resource: dict[str, Any]) -> set[str]:
    """Member chains one and two levels deep, as written in the data (choice names shortened)."""
    paths: set[str] = set()
    for key, value in resource.items():
        if key.startswith("_") or key == "resourceType":
            continue
        name = re.sub(r"(?<=[a-z])[A-Z].*$", "", key)  # onsetDateTime → onset
        paths.add(name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                paths.update(f"{name}.{_quoted(sub)}" for sub in item if not sub.startswith("_"))
    return paths


def _quoted(name: str) -> str:
    """FHIRPath keywords used as element names (Narrative.div) need backticks."""
    return f"`{name}`" if name in {"div", "as", "is", "in", "contains", "and", "or"} else name


@pytest.mark.parametrize("kind", ["Patient", "Encounter", "Condition", "Immunization", "Procedure"])
def test_the_member_walk_agrees_with_fhirpathpy(kind: str) -> None:
    # The fast path for plain member chains must give exactly what fhirpathpy gives.
    from sokhoe.warehouse.fhirpath_ext import (
        FhirPathError,
        compile_path,
        evaluate,
        evaluate_values,
        plain,
    )

    path_file = SHARED_DATA / "synthea-bulk-10" / f"{kind}.000.ndjson"
    resources = [json.loads(line) for line in path_file.read_text(encoding="utf-8").splitlines()]
    compared = walked = 0
    for resource in resources[:12]:
        members = sorted(_member_paths(resource))
        functions = ("first()", "exists()", "empty()", "join()", "join(' \\'')")
        variants = [f"{m}.{fn}" for m in members for fn in functions]
        keys = [f"{m}.getReferenceKey({t})" for m in members for t in ("", "Patient", "Encounter")]
        for text in [*members, *variants, *keys, "getResourceKey()", "name.first().given.first()"]:
            path = compile_path(text)
            assert path.fast is not None, text
            try:
                expected: Any = [plain(item) for item in evaluate(path, [resource], {})]
            except FhirPathError as e:  # join() of non-strings: both ways must refuse
                expected = type(e)
            try:
                got: Any = evaluate_values(path, [resource], {})
            except FhirPathError as e:
                got = type(e)
            assert got == expected, (resource["id"], text)
            compared += 1
            try:
                walked += evaluate_fast(path, [resource]) is not None
            except FhirPathError:  # join() of non-strings, decided by the fast path too
                walked += 1
    assert compared > 1500
    # Every chain takes the fast path here, choice elements (onsetDateTime…) included; the
    # constructs it falls back on are compared in test_fhirpath_fast.py.
    assert walked > 0.9 * compared


def test_a_repeat_that_never_descends_is_stopped() -> None:
    view = {
        "resource": "QuestionnaireResponse",
        "select": [{"repeat": ["$this"], "column": [{"name": "id", "path": "id"}]}],
    }
    with pytest.raises(InvalidRequest, match="deeper than 64 levels"):
        _rows(view, {"resourceType": "QuestionnaireResponse", "id": "q", "status": "completed"})


def test_valueless_primitives_are_not_values() -> None:
    # given[1] has only an extension (its value is null in the JSON array, as FHIR JSON says).
    patient = {
        "resourceType": "Patient",
        "name": [{"given": ["An", None], "_given": [None, {"extension": [{"url": "u"}]}]}],
        "_birthDate": {
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason"}]
        },
    }
    view = {
        "resource": "Patient",
        "select": [
            {"column": [{"name": "born", "path": "birthDate"}]},
            {"forEach": "name.given", "column": [{"name": "given", "path": "$this"}]},
        ],
    }
    assert _rows(view, patient) == [{"born": None, "given": "An"}]
