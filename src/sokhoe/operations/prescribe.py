"""``MedicationRequest/$prescribe``: a connected system or a page issues a prescription.

In: a ``Parameters`` with ``patient`` and ``encounter`` (``valueReference``), one ``line`` per
medicine (part ``resource``: a ``MedicationRequest`` naming a catalogue medicine by
``medicationReference`` or its catalogue code in ``medicationCodeableConcept``, with
``dosageInstruction``, ``dispenseRequest.expectedSupplyDuration`` and ``quantity``; optional part
``override``: the prescriber's reason to go ahead despite that line's warnings), and optionally
``long-term`` (``valueBoolean``: a long-term psychotropic treatment), ``weight``
(``valueQuantity`` in kg, for a young child), ``note`` (``valueString``), and ``replaces`` with
``reason`` (``valueString``): the code of an active prescription this one corrects, cancelled in
the same transaction (``priorPrescription`` on the new lines).
Out: 201 with a ``Bundle`` (collection) of the issued ``MedicationRequest``s, each carrying the
code in ``groupIdentifier``, and their ``DetectedIssue``s; or 422 with an ``OperationOutcome``
listing every blocking problem and every warning still to answer. The rules are in
``prescribing/``.
See: https://hl7.org/fhir/R4/medicationrequest.html
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.fhir.references import reference_id
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.prescribing.cancel import cancel
from sokhoe.prescribing.prescribe import Issued, prescribe

DEFINITION: Final = {
    "resourceType": "OperationDefinition",
    "id": "MedicationRequest-prescribe",
    "url": "https://fhir.sokhoe.vn/OperationDefinition/MedicationRequest-prescribe",
    "name": "Prescribe",
    "status": "active",
    "kind": "operation",
    "code": "prescribe",
    "resource": ["MedicationRequest"],
    "system": False,
    "type": True,
    "instance": False,
    "parameter": [
        {"name": "patient", "use": "in", "min": 1, "max": "1", "type": "Reference"},
        {"name": "encounter", "use": "in", "min": 1, "max": "1", "type": "Reference"},
        {
            "name": "line",
            "use": "in",
            "min": 1,
            "max": "*",
            "part": [
                {
                    "name": "resource",
                    "use": "in",
                    "min": 1,
                    "max": "1",
                    "type": "MedicationRequest",
                },
                {"name": "override", "use": "in", "min": 0, "max": "1", "type": "string"},
            ],
        },
        {"name": "long-term", "use": "in", "min": 0, "max": "1", "type": "boolean"},
        {"name": "weight", "use": "in", "min": 0, "max": "1", "type": "Quantity"},
        {"name": "note", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "replaces", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "reason", "use": "in", "min": 0, "max": "1", "type": "string"},
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"},
    ],
}


def _reference(params: dict[str, list[dict[str, Any]]], name: str, rtype: str) -> str:
    found = params.get(name, [])
    if len(found) != 1:
        raise InvalidRequest(f"Parameter '{name}' is required once", name)
    rid = reference_id(found[0].get("valueReference"), rtype)
    if rid is None:
        raise InvalidRequest(f"'{name}' must be a Reference to a {rtype}", name)
    return rid


def _lines(params: dict[str, list[dict[str, Any]]]) -> list[tuple[dict[str, Any], str]]:
    out = []
    for n, line in enumerate(params.get("line", [])):
        parts = {p.get("name"): p for p in line.get("part", []) if isinstance(p, dict)}
        resource = (parts.get("resource") or {}).get("resource") or line.get("resource")
        if not isinstance(resource, dict):
            raise InvalidRequest(f"line[{n}] needs a MedicationRequest as its resource", "line")
        override = (parts.get("override") or {}).get("valueString") or ""
        out.append((resource, str(override)))
    if not out:
        raise InvalidRequest("A prescription needs at least one line", "line")
    return out


def _weight(params: dict[str, list[dict[str, Any]]]) -> Decimal | None:
    found = params.get("weight", [])
    if not found:
        return None
    quantity = found[0].get("valueQuantity") or {}
    if quantity.get("code", quantity.get("unit", "kg")) not in ("kg", None):
        raise InvalidRequest("weight must be in kg", "weight")
    try:
        value = Decimal(str(quantity.get("value")))
    except InvalidOperation:
        raise InvalidRequest("weight must be a number of kg", "weight") from None
    if not Decimal("0.3") <= value <= Decimal(400):
        raise InvalidRequest("weight must be between 0.3 and 400 kg", "weight")
    return value


def run_prescribe(repo: GuardedRepository, body: Any, now: datetime) -> Issued:
    params = parameters_by_name(body)
    long_term = params.get("long-term", [{}])[0].get("valueBoolean") is True
    return prescribe(
        repo,
        patient_id=_reference(params, "patient", "Patient"),
        encounter_id=_reference(params, "encounter", "Encounter"),
        lines=_lines(params),
        now=now,
        long_term=long_term,
        weight_kg=_weight(params),
        note=string_parameter(params, "note") or "",
        replaces=string_parameter(params, "replaces"),
        replace_reason=string_parameter(params, "reason") or "",
    )


def run_cancel(repo: GuardedRepository, body: Any) -> list[dict[str, Any]]:
    """``MedicationRequest/$cancel-prescription``: ``code`` and ``reason`` (valueString)."""
    params = parameters_by_name(body)
    code = string_parameter(params, "code")
    if code is None:
        raise InvalidRequest("Parameter 'code' (the prescription code) is required", "code")
    return cancel(repo, code, string_parameter(params, "reason") or "")


def bundle(resources: list[dict[str, Any]], base_url: str) -> dict[str, Any]:
    """An answer as a collection Bundle (the issued lines and their DetectedIssues; the
    cancelled lines)."""
    return {
        "resourceType": "Bundle",
        "id": new_id(),
        "type": "collection",
        "timestamp": format_instant(datetime.now().astimezone()),
        "entry": [
            {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


__all__ = ["DEFINITION", "bundle", "run_cancel", "run_prescribe"]
