"""The administrative part of the health book, in the order QĐ 31/QĐ-BYT (2026) lists it: name,
birth date, sex, ethnicity, nationality, occupation, personal ID, phone, insurance card with its
registered facility and validity, address, legal representative.

Read from the Patient resource (identifiers, telecom, address, contact) and, for what Patient
has no element for, from the extensions and observations the platform writes: ethnicity
(``interop/legacy``'s extension), nationality (the core ``patient-nationality`` extension),
occupation (a sokhoe extension, or a social-history Observation, LOINC 11341-5). What the
record does not hold stays empty: the printed book says "not recorded" rather than guessing.
See: https://hl7.org/fhir/R4/patient.html and
https://hl7.org/fhir/R4/extension-patient-nationality.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sokhoe.clinic.records import text_of
from sokhoe.fhir.references import codings, reference_id
from sokhoe.interop.claims.formats import identifiers, name_text
from sokhoe.interop.legacy.records import ETHNICITY_EXTENSION
from sokhoe.mpi.identifiers import BHYT, CCCD
from sokhoe.portal.results import loinc_codes
from sokhoe.portal.sources import Facilities
from sokhoe.store.ports import StoredResource

NATIONALITY: Final = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
OCCUPATION: Final = "https://fhir.sokhoe.vn/StructureDefinition/occupation"
OCCUPATION_LOINC: Final = "11341-5"
"""History of Occupation (a social-history Observation)."""
REPRESENTATIVES: Final = frozenset({"GUARD", "PRN", "FTH", "MTH", "guardian", "parent"})
"""Contact relationships (v3 RoleCode) of a legal representative (*người đại diện*)."""


@dataclass(frozen=True)
class Administrative:
    name: str
    birth_date: str | None
    gender: str | None
    ethnicity: str
    nationality: str
    occupation: str
    personal_id: str
    phone: str
    insurance_card: str
    insurance_facility: str
    insurance_from: str | None
    insurance_to: str | None
    address: str
    representative: str


def _extension_text(resource: dict[str, Any], url: str) -> str:
    for ext in resource.get("extension", []):
        if ext.get("url") != url:
            continue
        if "valueCodeableConcept" in ext:
            return text_of(ext["valueCodeableConcept"])
        if "valueString" in ext:
            return str(ext["valueString"])
        for part in ext.get("extension", []):  # patient-nationality: a ``code`` part
            if "valueCodeableConcept" in part:
                return text_of(part["valueCodeableConcept"])
    return ""


def _address(patient: dict[str, Any]) -> str:
    addresses = patient.get("address") or []
    current = next((a for a in addresses if a.get("use") == "home"), None) or (
        addresses[0] if addresses else {}
    )
    if current.get("text"):
        return str(current["text"])
    parts = [*current.get("line", []), current.get("district"), current.get("city")]
    return ", ".join(str(p) for p in [*parts, current.get("state")] if p)


def _phone(patient: dict[str, Any]) -> str:
    phones = [t for t in patient.get("telecom", []) if t.get("system") == "phone"]
    mobile = next((t for t in phones if t.get("use") == "mobile"), phones[0] if phones else {})
    return str(mobile.get("value") or "")


def _representative(patient: dict[str, Any]) -> str:
    for contact in patient.get("contact", []):
        relations = {
            str(c.get("code")) for c in codings(contact.get("relationship")) if c.get("code")
        }
        if relations & REPRESENTATIVES:
            name = name_text({"name": [contact.get("name") or {}]})
            phone = _phone(contact)
            return ", ".join(p for p in (name, phone) if p)
    return ""


def _occupation(patient: dict[str, Any], observations: list[StoredResource]) -> str:
    found = _extension_text(patient, OCCUPATION)
    if found:
        return found
    latest = sorted(
        (o.content for o in observations if OCCUPATION_LOINC in loinc_codes(o.content or {})),
        key=lambda o: str((o or {}).get("effectiveDateTime", "")),
    )
    if latest and latest[-1]:
        value = latest[-1]
        return str(value.get("valueString") or text_of(value.get("valueCodeableConcept")))
    return ""


def administrative(
    patient: dict[str, Any], observations: list[StoredResource], known: Facilities
) -> Administrative:
    """The administrative data of ``patient`` (see the module's docstring)."""
    card = next(iter(identifiers(patient, BHYT)), {})
    period = card.get("period") or {}
    registered = reference_id(card.get("assigner"), "Organization")
    ids = identifiers(patient, CCCD)
    return Administrative(
        name=name_text(patient),
        birth_date=patient.get("birthDate"),
        gender=patient.get("gender"),
        ethnicity=_extension_text(patient, ETHNICITY_EXTENSION),
        nationality=_extension_text(patient, NATIONALITY),
        occupation=_occupation(patient, observations),
        personal_id=str(ids[0]["value"]) if ids else "",
        phone=_phone(patient),
        insurance_card=str(card.get("value") or ""),
        insurance_facility=known.name_of_id(registered) or "",
        insurance_from=period.get("start"),
        insurance_to=period.get("end"),
        address=_address(patient),
        representative=_representative(patient),
    )


__all__ = ["NATIONALITY", "OCCUPATION", "Administrative", "administrative"]
