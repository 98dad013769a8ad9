"""``MedicationRequest/$lookup`` and ``MedicationDispense/$dispense``: a pharmacy fills a
prescription by its code.

``$lookup`` in: a ``Parameters`` with ``code`` (``valueString``, any case). Out: a
``Parameters`` with ``code``, ``type`` (C/N/H), ``state`` (issued, partially-dispensed,
completed, cancelled, expired), ``validity`` (``valuePeriod``), one ``line`` per medicine (parts
``request``: the ``MedicationRequest``; ``prescribed``, ``dispensed``, ``remaining``:
``valueQuantity``) and one ``allergy`` per allergy that concerns a prescribed medicine (parts
``resource``: the ``AllergyIntolerance``; ``line``: a ``valueReference`` per line it concerns).

``$dispense`` in: a ``Parameters`` with ``code`` and ``invoice`` (``valueString``) and one
``line`` per item handed over, with parts ``request`` (``valueReference`` to the line's
``MedicationRequest``), ``quantity`` (``valueQuantity``), optionally ``lot`` (``valueString``),
``expiry`` (``valueDate``) and ``substitution`` (parts ``reason``: ``valueString``, required;
``type``: ``valueCode`` of v3 substanceAdminSubstitution, default ``E``; ``medication``:
``valueCodeableConcept`` of the catalogue medicine given instead). Out: 201 with a ``Bundle`` of
the ``MedicationDispense``s (the same answer again for a retry with the same invoice), or 409
with an ``OperationOutcome`` saying why nothing was dispensed.
See: https://hl7.org/fhir/R4/medicationdispense.html
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.parameters import parameters_by_name, string_parameter
from sokhoe.fhir.references import reference_id
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.prescribing.dispense import Dispensed, Handed, Substitution, dispense, substitute
from sokhoe.prescribing.dispensing_state import Line, plain
from sokhoe.prescribing.lookup import Prescription, look_up

_QUANTITY: Final = {"name": "quantity", "use": "in", "min": 1, "max": "1", "type": "Quantity"}

LOOKUP: Final = {
    "resourceType": "OperationDefinition",
    "id": "MedicationRequest-lookup",
    "url": "https://fhir.sokhoe.vn/OperationDefinition/MedicationRequest-lookup",
    "name": "LookUpPrescription",
    "status": "active",
    "kind": "operation",
    "code": "lookup",
    "resource": ["MedicationRequest"],
    "system": False,
    "type": True,
    "instance": False,
    "affectsState": False,
    "parameter": [
        {"name": "code", "use": "in", "min": 1, "max": "1", "type": "string"},
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Parameters"},
    ],
}

DISPENSE: Final = {
    "resourceType": "OperationDefinition",
    "id": "MedicationDispense-dispense",
    "url": "https://fhir.sokhoe.vn/OperationDefinition/MedicationDispense-dispense",
    "name": "Dispense",
    "status": "active",
    "kind": "operation",
    "code": "dispense",
    "resource": ["MedicationDispense"],
    "system": False,
    "type": True,
    "instance": False,
    "parameter": [
        {"name": "code", "use": "in", "min": 1, "max": "1", "type": "string"},
        {"name": "invoice", "use": "in", "min": 1, "max": "1", "type": "string"},
        {
            "name": "line",
            "use": "in",
            "min": 1,
            "max": "*",
            "part": [
                {"name": "request", "use": "in", "min": 1, "max": "1", "type": "Reference"},
                _QUANTITY,
                {"name": "lot", "use": "in", "min": 0, "max": "1", "type": "string"},
                {"name": "expiry", "use": "in", "min": 0, "max": "1", "type": "date"},
                {
                    "name": "substitution",
                    "use": "in",
                    "min": 0,
                    "max": "1",
                    "part": [
                        {"name": "reason", "use": "in", "min": 1, "max": "1", "type": "string"},
                        {"name": "type", "use": "in", "min": 0, "max": "1", "type": "code"},
                        {
                            "name": "medication",
                            "use": "in",
                            "min": 0,
                            "max": "1",
                            "type": "CodeableConcept",
                        },
                    ],
                },
            ],
        },
        {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"},
    ],
}


def _required(params: dict[str, list[dict[str, Any]]], name: str) -> str:
    value = string_parameter(params, name)
    if value is None:
        raise InvalidRequest(f"Parameter '{name}' is required", name)
    return value


def _parts(line: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(p.get("name")): p for p in line.get("part", []) if isinstance(p, dict)}


def _quantity(part: dict[str, Any] | None, where: str) -> tuple[Decimal, str | None]:
    quantity = (part or {}).get("valueQuantity") or {}
    try:
        value = Decimal(str(quantity.get("value")))
    except InvalidOperation:
        raise InvalidRequest(f"{where}: quantity needs a number", f"{where}.quantity") from None
    if not value.is_finite():
        raise InvalidRequest(f"{where}: quantity needs a number", f"{where}.quantity")
    unit = quantity.get("unit") or quantity.get("code")
    return value, str(unit) if unit else None


def _expiry(part: dict[str, Any] | None, where: str) -> date | None:
    if part is None:
        return None
    try:
        return date.fromisoformat(str(part.get("valueDate")))
    except ValueError:
        raise InvalidRequest(f"{where}: expiry is a date (yyyy-mm-dd)", f"{where}.expiry") from None


def _substitution(
    repo: GuardedRepository, part: dict[str, Any] | None, where: str
) -> Substitution | None:
    if part is None:
        return None
    parts = _parts(part)
    reason = str((parts.get("reason") or {}).get("valueString") or "").strip()
    if not reason:
        raise InvalidRequest(f"{where}: a substitution needs its reason", f"{where}.substitution")
    kind = str((parts.get("type") or {}).get("valueCode") or "E")
    concept = (parts.get("medication") or {}).get("valueCodeableConcept")
    given = substitute(repo, concept, f"{where}.substitution") if concept else None
    return Substitution(reason, kind, given)


def handed_lines(repo: GuardedRepository, params: dict[str, list[dict[str, Any]]]) -> list[Handed]:
    out = []
    for n, line in enumerate(params.get("line", [])):
        where = f"line[{n}]"
        parts = _parts(line)
        rid = reference_id((parts.get("request") or {}).get("valueReference"), "MedicationRequest")
        if rid is None:
            raise InvalidRequest(f"{where}: request references the MedicationRequest", where)
        value, unit = _quantity(parts.get("quantity"), where)
        lot = str((parts.get("lot") or {}).get("valueString") or "").strip() or None
        substitution = _substitution(repo, parts.get("substitution"), where)
        out.append(
            Handed(n, rid, value, unit, lot, _expiry(parts.get("expiry"), where), substitution)
        )
    return out


def run_dispense(repo: GuardedRepository, body: Any, now: datetime) -> Dispensed:
    params = parameters_by_name(body)
    return dispense(
        repo,
        code=_required(params, "code"),
        invoice=_required(params, "invoice"),
        handed=handed_lines(repo, params),
        now=now,
    )


def run_lookup(repo: GuardedRepository, body: Any, now: datetime) -> Prescription:
    return look_up(repo, _required(parameters_by_name(body), "code"), now)


def bundle(dispensed: Dispensed, base_url: str) -> dict[str, Any]:
    """The answer: the MedicationDispenses, as a collection Bundle."""
    return {
        "resourceType": "Bundle",
        "id": new_id(),
        "type": "collection",
        "timestamp": format_instant(datetime.now().astimezone()),
        "entry": [
            {"fullUrl": f"{base_url}/MedicationDispense/{d['id']}", "resource": d}
            for d in dispensed.dispenses
        ],
    }


def _amount(value: Decimal, line: Line) -> dict[str, Any]:
    return {"value": plain(value), **({"unit": line.unit} if line.unit else {})}


def lookup_parameters(found: Prescription) -> dict[str, Any]:
    """The look-up's answer as a Parameters resource."""
    validity = {
        k: format_instant(v)
        for k, v in (("start", found.valid_from), ("end", found.valid_until))
        if v is not None
    }
    params: list[dict[str, Any]] = [
        {"name": "code", "valueString": found.code},
        {"name": "type", "valueCode": found.kind},
        {"name": "state", "valueCode": found.state},
        {"name": "validity", "valuePeriod": validity},
    ]
    if found.holder is not None:  # whose it is, as the paper prescription shows (no more)
        params.append(
            {
                "name": "patient",
                "part": [
                    {"name": "name", "valueString": found.holder.name},
                    *(
                        [{"name": "birthYear", "valueString": found.holder.birth_year}]
                        if found.holder.birth_year
                        else []
                    ),
                ],
            }
        )
    for line in found.lines:
        params.append(
            {
                "name": "line",
                "part": [
                    {"name": "request", "resource": line.request},
                    {"name": "prescribed", "valueQuantity": _amount(line.prescribed, line)},
                    {"name": "dispensed", "valueQuantity": _amount(line.dispensed, line)},
                    {"name": "remaining", "valueQuantity": _amount(line.remaining, line)},
                ],
            }
        )
    for relevant in found.allergies:
        params.append(
            {
                "name": "allergy",
                "part": [
                    {"name": "resource", "resource": relevant.allergy},
                    *({"name": "line", "valueReference": {"reference": r}} for r in relevant.lines),
                ],
            }
        )
    return {"resourceType": "Parameters", "parameter": params}


__all__ = [
    "DISPENSE",
    "LOOKUP",
    "bundle",
    "handed_lines",
    "lookup_parameters",
    "run_dispense",
    "run_lookup",
]
