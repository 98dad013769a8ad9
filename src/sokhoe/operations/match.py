"""``Patient/$match``: the stored Patients that may be the person described, scored and graded.

Input is a Parameters with ``resource`` (the Patient), optional ``count`` (at most 100;
default 10) and ``onlyCertainMatches``. With ``onlyCertainMatches`` true the spec asks for no
results when several candidates are possible, so the answer is the single *certain* match or
nothing. The output is a ``searchset`` Bundle ordered by score, each entry with ``search.score``
and the ``match-grade`` extension.
See: https://hl7.org/fhir/R4/patient-operation-match.html
"""

from __future__ import annotations

from typing import Any

from sokhoe.errors import InvalidRequest
from sokhoe.fhir.parameters import parameters_by_name
from sokhoe.fhir.repository import FhirRepository, validated
from sokhoe.mpi.matching import CERTAIN, Matcher

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
DEFAULT_COUNT = 10
MAX_COUNT = 100

DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "Patient-match",
    "url": "http://hl7.org/fhir/OperationDefinition/Patient-match",
    "name": "Match",
    "status": "active",
    "kind": "operation",
    "code": "match",
    "resource": ["Patient"],
    "system": False,
    "type": True,
    "instance": False,
    "parameter": [
        {"name": "resource", "use": "in", "min": 1, "max": "1", "type": "Resource"},
        {"name": "onlyCertainMatches", "use": "in", "min": 0, "max": "1", "type": "boolean"},
        {"name": "count", "use": "in", "min": 0, "max": "1", "type": "integer"},
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"},
    ],
}
"""The R4 definition of ``$match`` (what a CapabilityStatement should point to)."""


def _single(params: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any] | None:
    found = params.get(name, [])
    if len(found) > 1:
        raise InvalidRequest(f"Parameter '{name}' is given more than once", name)
    return found[0] if found else None


def parse_match_input(body: Any) -> tuple[dict[str, Any], int, bool]:
    """(patient, count, onlyCertainMatches) from the Parameters body; 400 when malformed."""
    params = parameters_by_name(body)
    res = _single(params, "resource")
    patient = res.get("resource") if res else None
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise InvalidRequest(
            "Parameter 'resource' must hold a Patient resource", "Parameters.parameter.resource"
        )
    count = DEFAULT_COUNT
    raw_count = _single(params, "count")
    if raw_count is not None:
        value = raw_count.get("valueInteger", raw_count.get("valuePositiveInt"))
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
            raise InvalidRequest(
                f"Parameter 'count' must be an integer between 1 and {MAX_COUNT}", "count"
            )
        count = value
    only = _single(params, "onlyCertainMatches")
    only_certain = False
    if only is not None:
        flag = only.get("valueBoolean")
        if not isinstance(flag, bool):
            raise InvalidRequest(
                "Parameter 'onlyCertainMatches' needs a valueBoolean", "onlyCertainMatches"
            )
        only_certain = flag
    return patient, count, only_certain


def run_match(repo: FhirRepository, matcher: Matcher, body: Any) -> dict[str, Any]:
    """Answer one ``$match`` request with a searchset Bundle."""
    patient, count, only_certain = parse_match_input(body)
    validated(patient, "Patient", "Parameters.parameter[0].resource")
    found = matcher.matches(patient, count)
    if only_certain:
        certain = [m for m in found if m.candidate.grade == CERTAIN]
        found = certain if len(certain) == 1 else []
    entries = [
        {
            "fullUrl": f"{repo.base_url}/Patient/{m.candidate.id}",
            "resource": m.resource,
            "search": {
                "extension": [{"url": MATCH_GRADE, "valueCode": m.candidate.grade}],
                "mode": "match",
                "score": round(m.candidate.probability, 6),
            },
        }
        for m in found
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
