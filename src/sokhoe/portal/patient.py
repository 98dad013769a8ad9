"""The record a citizen makes for themselves when no record is theirs, and what their
declaration may change in it.

Such a record is marked self-declared and ``unconfirmed`` (``portal/selfdeclared.py``) until
the station has seen the ID card. Its ID number is therefore *not* written as a CCCD
(:data:`~sokhoe.mpi.identifiers.CCCD`) but as a declared one (:data:`DECLARED_CCCD`): anything
that finds people by their CCCD (a check-in scanning the card, an HL7 registration, a claim
from another phone) must not land on a record whose owner merely typed the number, or someone
who knows a neighbour's number could collect the neighbour's visits. The station turns it into
the CCCD when it verifies the record. The patient index still compares it as a CCCD
(``portal/claim.py`` queues the possible matches for review).

A citizen's declaration changes administrative data (address, ethnic group) directly only in
such an unconfirmed record of their own making; in a facility's record, the corrections stay
in the declaration for the station to apply.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from sokhoe.mpi.identifiers import CCCD
from sokhoe.operations.check_in import split_vietnamese_name
from sokhoe.portal.codes import ETHNIC_GROUPS, ETHNICITY
from sokhoe.portal.selfdeclared import is_self_declared, mark, verification
from sokhoe.registry.addresses import parse_address
from sokhoe.registry.places import ward_by_code

DECLARED_CCCD: Final = "https://fhir.sokhoe.vn/sid/cccd-declared"
"""A 12-digit personal ID number a citizen typed and nobody has checked yet."""
ETHNICITY_EXTENSION: Final = "https://fhir.sokhoe.vn/StructureDefinition/ethnicity"


def ward_address(code: str | None) -> dict[str, Any] | None:
    """A home address naming only the ward (from the poster the resident scanned)."""
    found = ward_by_code(code) if code else None
    if found is None:
        return None
    ward, province = found
    return parse_address(f"{ward.name}, {province.name}")


def self_declared_patient(
    pid: str,
    *,
    cccd: str,
    name: str,
    sex: str,
    born: date,
    phone: str,
    ward: str | None = None,
) -> dict[str, Any]:
    """The unconfirmed Patient a citizen makes (see the module docstring)."""
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "active": True,
        "identifier": [{"use": "official", "system": DECLARED_CCCD, "value": cccd}],
        "name": [split_vietnamese_name(name)],
        "gender": sex,
        "birthDate": born.isoformat(),
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
    }
    address = ward_address(ward)
    if address is not None:
        patient["address"] = [address]
    return mark(patient, "unconfirmed")


def as_matched(patient: dict[str, Any]) -> dict[str, Any]:
    """``patient`` as the patient index should compare it: its declared ID as a CCCD."""
    ids = [
        {**i, "system": CCCD} if i.get("system") == DECLARED_CCCD else i
        for i in patient.get("identifier", [])
    ]
    return {**patient, "identifier": ids}


def is_self_declared_patient(patient: dict[str, Any]) -> bool:
    """A citizen-made record the station has not verified yet."""
    return is_self_declared(patient) and verification(patient) == "unconfirmed"


def id_number(patient: dict[str, Any]) -> str | None:
    """The person's current ID number (checked, or else declared)."""
    for system in (CCCD, DECLARED_CCCD):
        for ident in patient.get("identifier", []):
            if ident.get("system") == system and ident.get("use") != "old":
                return str(ident.get("value"))
    return None


def ethnicity_code(patient: dict[str, Any]) -> str | None:
    for ext in patient.get("extension", []):
        if ext.get("url") == ETHNICITY_EXTENSION:
            for coding in (ext.get("valueCodeableConcept") or {}).get("coding", []):
                if coding.get("system") == ETHNICITY:
                    return str(coding.get("code"))
    return None


def address_text(patient: dict[str, Any]) -> str | None:
    for address in patient.get("address", []):
        if address.get("use") in (None, "home") and "end" not in (address.get("period") or {}):
            if address.get("text"):
                return str(address["text"])
            parts = [*address.get("line", []), address.get("city"), address.get("state")]
            return ", ".join(str(p) for p in parts if p) or None
    return None


def apply_about(patient: dict[str, Any], about: dict[str, Any]) -> dict[str, Any]:
    """``patient`` with the address and ethnic group the citizen gave (other data as is)."""
    out = dict(patient)
    text = about.get("address")
    if text and text != address_text(patient):
        kept = [a for a in patient.get("address", []) if a.get("use") not in (None, "home")]
        out["address"] = [parse_address(text), *kept]
    code = about.get("ethnicity")
    option = next((o for o in ETHNIC_GROUPS if o.code == code), None)
    if option is not None:
        others = [e for e in patient.get("extension", []) if e.get("url") != ETHNICITY_EXTENSION]
        concept = {
            "coding": [{"system": ETHNICITY, "code": option.code, "display": option.display}]
        }
        out["extension"] = [
            *others,
            {"url": ETHNICITY_EXTENSION, "valueCodeableConcept": concept},
        ]
    return out


def prefill(patient: dict[str, Any]) -> dict[str, Any]:
    """The "about you" answers as the record has them, for a first visit of that screen."""
    found: dict[str, Any] = {}
    if (text := address_text(patient)) is not None:
        found["address"] = text
    if (code := ethnicity_code(patient)) is not None:
        found["ethnicity"] = code
    return found


__all__ = [
    "DECLARED_CCCD",
    "apply_about",
    "as_matched",
    "id_number",
    "is_self_declared_patient",
    "prefill",
    "self_declared_patient",
    "ward_address",
]
