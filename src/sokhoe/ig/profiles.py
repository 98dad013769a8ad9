"""The Vietnam core profiles and extensions, as data, and the StructureDefinitions built from it.

Every system URI and extension URL comes from the module that writes it (``mpi.identifiers``,
``registry.addresses``, ``registry.facilities``, ``clinic.visits``), so a profile cannot
describe a record the platform does not make. Rules the platform enforces on every write
(``fhir/profiles.py``: a CCCD is 12 digits starting with an old province code and a
sex-and-century digit, a BHYT number is 2 letters + level 1-5 + 2-digit province + 10 digits)
are restated as FHIRPath constraints, so a vendor's validator (HAPI's) checks them too.

Decisions a reader cannot see in the data:
- the CCCD slice is ``0..*`` with a constraint that at most one is current (no
  ``period.end``), not ``0..1``: numbers are cancelled and re-issued, and the record keeps the
  old one with its period (see the NamingSystem ``cccd``);
- facility record numbers (MRN) are not a slice: their system is a family
  (``https://fhir.sokhoe.vn/sid/mrn/{MA_CSKCB}``) no fixed-value discriminator can match, so a
  constraint checks the shape of every such system instead;
- the practising-certificate format is unconfirmed: its constraint is a warning.
See: https://hl7.org/fhir/R4/structuredefinition.html
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Final

from sokhoe import __version__
from sokhoe.fhir.narrative import narrative
from sokhoe.ig.base import CORE, base_definition
from sokhoe.ig.snapshot import derive
from sokhoe.ig.urls import ENCOUNTER, ETHNICITY, ORGANIZATION, PATIENT, PAYER, PRACTITIONER, ROUTE
from sokhoe.mpi.identifiers import BHXH, BHYT, CCCD, CMND, FACILITY, OLD_PROVINCE_CODES
from sokhoe.mpi.identifiers import PRACTITIONER as CCHN
from sokhoe.registry.addresses import PROVINCE, UNRESOLVED, WARD
from sokhoe.registry.facilities import LEVEL_SYSTEM, LEVELS
from sokhoe.registry.naming import DATE, MRN_PATTERN, PUBLISHER

_VS: Final = "https://fhir.sokhoe.vn/ValueSet/"
_JURISDICTION: Final = [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "VN"}]}]

CCCD_REGEX: Final = (
    "^0(" + "|".join(sorted(OLD_PROVINCE_CODES)) + ")[0-5][0-9]{8}$"
)  # the structure rules of mpi.identifiers.validate_cccd
BHYT_REGEX: Final = "^[A-Z]{2}[1-5][0-9]{2}[0-9]{10}$"
MRN_PREFIX: Final = MRN_PATTERN.removesuffix("{facility}")
_MRN_REGEX: Final = MRN_PREFIX.replace(".", "[.]")
LEVEL_CODES: Final = " | ".join(f"'{code}'" for code in LEVELS)
"""The facility levels as a FHIRPath collection: a constraint rather than a slice of ``type``
bound to the value set, since the level's coding shares its CodeableConcept with HL7's
organization type (a pattern slice would need a code, a value slice one system)."""


def _constraint(key: str, human: str, expression: str, severity: str = "error") -> dict[str, Any]:
    return {"key": key, "severity": severity, "human": human, "expression": expression}


def _matches(key: str, human: str, regex: str, severity: str = "error") -> dict[str, Any]:
    return _constraint(key, human, f"matches('{regex}')", severity)


def _identifier_slice(
    root: str, name: str, system: str, short: str, cardinality: str, rule: dict[str, Any]
) -> list[dict[str, Any]]:
    """A slice of ``identifier`` matched by its system, whose value must follow ``rule``."""
    low, high = cardinality.split("..")
    at = f"{root}.identifier:{name}"
    return [
        {"id": at, "short": short, "min": int(low), "max": high},
        {"id": f"{at}.system", "min": 1, "fixedUri": system},
        {"id": f"{at}.value", "min": 1, "constraint": [rule]},
    ]


def _sliced(element_id: str, path: str, kind: str = "value") -> dict[str, Any]:
    return {
        "id": element_id,
        "slicing": {"discriminator": [{"type": kind, "path": path}], "rules": "open"},
    }


def _extension_slice(at: str, name: str, url: str, high: str = "1") -> dict[str, Any]:
    return {
        "id": f"{at}:{name}",
        "min": 0,
        "max": high,
        "type": [{"code": "Extension", "profile": [url]}],
    }


_PATIENT: Final = [
    {
        "id": "Patient",
        "short": "A person in the Vietnamese health record (sổ sức khỏe điện tử)",
        "constraint": [
            _constraint(
                "vn-pat-1",
                "At most one current CCCD (one without period.end)",
                f"identifier.where(system = '{CCCD}' and period.end.empty()).count() <= 1",
            ),
        ],
    },
    _sliced("Patient.extension", "url"),
    _extension_slice("Patient.extension", "ethnicity", ETHNICITY),
    _sliced("Patient.identifier", "system"),
    {
        "id": "Patient.identifier.system",
        "constraint": [
            _matches(
                "vn-pat-2",
                "A facility record number's system names the facility by its 5-character "
                f"insurance code ({MRN_PATTERN})",
                f"^((?!{_MRN_REGEX}).*|{_MRN_REGEX}[0-9A-Z]{{5}})$",
            )
        ],
    },
    *_identifier_slice(
        "Patient",
        "cccd",
        CCCD,
        "Personal ID (số định danh cá nhân, CCCD): 12 digits",
        "0..*",
        _matches(
            "vn-cccd-1",
            "A CCCD is 12 digits: 0 and an old province code, a sex-and-century digit 0-5, "
            "the birth year and 6 digits",
            CCCD_REGEX,
        ),
    ),
    *_identifier_slice(
        "Patient",
        "cmnd",
        CMND,
        "Old identity card number (CMND): 9 digits",
        "0..1",
        _matches("vn-cmnd-1", "A CMND is 9 digits", "^[0-9]{9}$"),
    ),
    *_identifier_slice(
        "Patient",
        "bhyt",
        BHYT,
        "Health-insurance card number (mã thẻ BHYT): 15 characters",
        "0..*",
        _matches(
            "vn-bhyt-1",
            "A BHYT card number is 2 capital letters, a benefit level 1-5, a 2-digit province "
            "code and the 10-digit social-insurance number",
            BHYT_REGEX,
        ),
    ),
    *_identifier_slice(
        "Patient",
        "bhxh",
        BHXH,
        "Social-insurance number (mã số BHXH): 10 digits",
        "0..1",
        _matches("vn-bhxh-1", "A social-insurance number is 10 digits", "^[0-9]{10}$"),
    ),
    _sliced("Patient.address.extension", "url"),
    _extension_slice("Patient.address.extension", "province", PROVINCE),
    _extension_slice("Patient.address.extension", "ward", WARD),
    _extension_slice("Patient.address.extension", "unresolved", UNRESOLVED, "*"),
]

_PRACTITIONER: Final = [
    {"id": "Practitioner", "short": "A health worker (nhân viên y tế)"},
    _sliced("Practitioner.identifier", "system"),
    *_identifier_slice(
        "Practitioner",
        "cchn",
        CCHN,
        "Practising certificate number (chứng chỉ hành nghề, CCHN)",
        "0..*",
        _matches(
            "vn-cchn-1",
            "A practising certificate number is usually serial/issuer-CCHN (000123/BYT-CCHN); "
            "the format is unconfirmed",
            "^[0-9]+/[A-Z0-9.-]+-CCHN$",
            "warning",
        ),
    ),
]

_ORGANIZATION: Final = [
    {
        "id": "Organization",
        "short": "A health facility or health authority",
        "constraint": [
            _constraint(
                "vn-org-1",
                "At most one level (tuyến), and it is one of the facility-level codes",
                f"type.coding.where(system = '{LEVEL_SYSTEM}').count() <= 1 and "
                f"type.coding.where(system = '{LEVEL_SYSTEM}').all(code in ({LEVEL_CODES}))",
            ),
        ],
    },
    _sliced("Organization.identifier", "system"),
    *_identifier_slice(
        "Organization",
        "macskcb",
        FACILITY,
        "Insurance facility code (mã cơ sở khám bệnh, chữa bệnh, MA_CSKCB)",
        "0..1",
        _matches("vn-cskcb-1", "A facility code is 5 capital letters or digits", "^[0-9A-Z]{5}$"),
    ),
]

_ENCOUNTER: Final = [
    {"id": "Encounter", "short": "A visit (lượt khám bệnh, chữa bệnh)"},
    _sliced("Encounter.extension", "url"),
    _extension_slice("Encounter.extension", "payer", PAYER),
    _extension_slice("Encounter.extension", "route", ROUTE),
]

PROFILES: Final = (
    ("VNCorePatient", "Patient", PATIENT, _PATIENT, "Vietnam core Patient"),
    (
        "VNCorePractitioner",
        "Practitioner",
        PRACTITIONER,
        _PRACTITIONER,
        "Vietnam core Practitioner",
    ),
    (
        "VNCoreOrganization",
        "Organization",
        ORGANIZATION,
        _ORGANIZATION,
        "Vietnam core Organization",
    ),
    ("VNCoreEncounter", "Encounter", ENCOUNTER, _ENCOUNTER, "Vietnam core Encounter"),
)
"""(name, resource type, URL, differential, title) of each profile."""

EXTENSIONS: Final = (
    ("Ethnicity", ETHNICITY, "Patient", "CodeableConcept", "ethnicity", "extensible",
     "Ethnic group (dân tộc): one of the 54, or the text as written"),
    ("AddressProvince", PROVINCE, "Address", "Coding", "province", "required",
     "The address's province (34 since 1 July 2025), by its statistics-office code"),
    ("AddressWard", WARD, "Address", "Coding", "ward", "required",
     "The address's commune or ward, by its statistics-office code"),
    ("AddressUnresolved", UNRESOLVED, "Address", "string", None, None,
     "Which unit of the written address could not be resolved to a code, and why"),
    ("EncounterPayer", PAYER, "Encounter", "code", "encounter-payer", "required",
     "Who pays for the visit: health insurance or the patient"),
    ("EncounterRoute", ROUTE, "Encounter", "code", "insurance-route", "required",
     "The insurance route of the visit (đúng tuyến, chuyển tuyến, cấp cứu, trái tuyến)"),
)  # fmt: skip
"""(name, URL, context, value type, ValueSet name, binding strength, description)."""


def _structure(
    name: str, rtype: str, url: str, differential: list[dict[str, Any]], title: str, kind: str
) -> dict[str, Any]:
    snapshot, diff = derive(rtype, differential, url)
    base = base_definition(rtype)
    return {
        "resourceType": "StructureDefinition",
        "id": url.rsplit("/", 1)[-1],
        "text": narrative(title, differential[0].get("short", title)),
        "url": url,
        "version": __version__,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": differential[0].get("short", title),
        "jurisdiction": _JURISDICTION,
        "fhirVersion": "4.0.1",
        "kind": kind,
        "abstract": False,
        "type": rtype,
        "baseDefinition": base["url"],
        "derivation": "constraint",
        "snapshot": {"element": snapshot},
        "differential": {"element": diff},
    }


def _extension(
    name: str,
    url: str,
    context: str,
    value_type: str,
    value_set: str | None,
    strength: str | None,
    description: str,
) -> dict[str, Any]:
    value: dict[str, Any] = {"id": "Extension.value[x]", "min": 1, "type": [{"code": value_type}]}
    if value_set is not None:
        value["binding"] = {"strength": strength, "valueSet": f"{_VS}{value_set}"}
    differential = [
        {"id": "Extension", "short": description, "definition": description},
        {"id": "Extension.extension", "max": "0"},
        {"id": "Extension.url", "fixedUri": url},
        value,
    ]
    sd = _structure(name, "Extension", url, differential, description, "complex-type")
    sd["context"] = [{"type": "element", "expression": context}]
    return sd


@cache
def _all() -> dict[str, dict[str, Any]]:
    out = {
        url: _structure(name, rtype, url, diff, title, "resource")
        for name, rtype, url, diff, title in PROFILES
    }
    out.update({e[1]: _extension(*e) for e in EXTENSIONS})
    return out


def structure_definitions() -> list[dict[str, Any]]:
    """Every StructureDefinition of the package (profiles, then extensions), fresh copies."""
    return [copy.deepcopy(sd) for sd in _all().values()]


def known(url: str) -> dict[str, Any] | None:
    """The StructureDefinition at this canonical URL (a ``|version`` suffix ignored); None when
    it is not one of ours. Shared, not copied: read it, never change it."""
    return _all().get(url.split("|", 1)[0])


def profile_for(rtype: str) -> str | None:
    """The core profile of a resource type, if there is one."""
    return next((url for _, t, url, _, _ in PROFILES if t == rtype), None)


__all__ = [
    "CORE",
    "ENCOUNTER",
    "ORGANIZATION",
    "PATIENT",
    "PRACTITIONER",
    "known",
    "profile_for",
    "structure_definitions",
]
