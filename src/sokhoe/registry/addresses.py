"""A Vietnamese address as written (on the chip ID card, at the desk) → a FHIR Address with codes.

Why: the insurance claim needs the residence's province and ward codes (``MATINH_CU_TRU``,
``MAXA_CU_TRU``) and the address text (``DIA_CHI``); a patient registered from the CCCD QR
used to keep the text alone, so every claim of theirs was refused. The card's text is the
units from the smallest to the largest, separated by commas:

- cards and updates since 1 July 2025 (Resolution 202/2025/QH15): ``house, hamlet, ward or
  commune, province`` ("Số 12, Thôn Yên Nội, Xã Phúc Thọ, Thành phố Hà Nội");
- older cards: ``house, hamlet, commune, district, province`` with the district (*quận,
  huyện, thị xã*, or a provincial *thành phố*) that no longer exists.

The province is resolved from its current or old name (an old province lies wholly inside
one new province, so that is a lookup, not a guess). The ward only when the part before the
province is named as a current unit (*Phường*, *Xã*, *Đặc khu*) and the registry finds exactly
one of that name in that province. An old card's commune is *not* mapped: communes were
merged and renamed, and the registry holds no commune-level history, so a same-named new ward
may be another place. Whatever is not resolved stays as text and is flagged with
:data:`UNRESOLVED`, so a person can fix it; nothing is guessed.

FHIR: ``text`` as written; ``line`` the house and hamlet (and an old card's commune),
``city`` the current ward, ``district`` an old card's district, ``state`` the current province
(by its registry name, as other sources write it, so the patient index compares like with
like); the codes in the :data:`PROVINCE` and :data:`WARD` extensions (statistics-office codes).
See: https://hl7.org/fhir/R4/datatypes.html#Address
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sokhoe.registry.places import Province, find_ward, resolve_province

PROVINCE = "https://fhir.sokhoe.vn/StructureDefinition/address-province"
WARD = "https://fhir.sokhoe.vn/StructureDefinition/address-ward"
UNRESOLVED = "https://fhir.sokhoe.vn/StructureDefinition/address-unresolved"
"""valueString: which unit of the written address the registry could not resolve, and why."""
PROVINCE_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/province"
"""2-digit statistics-office province codes (since 1 July 2025)."""
WARD_SYSTEM = "https://fhir.sokhoe.vn/CodeSystem/ward"
"""5-digit statistics-office ward/commune codes (since 1 July 2025)."""

_WARD_PREFIX = re.compile(r"^(phường|xã|đặc khu|p|x)[.\s]")
_DISTRICT_PREFIX = re.compile(r"^(quận|huyện|thị xã|thành phố|tp|q|h|tx)[.\s]")
"""Accents count: "Xa lộ Hà Nội" is a road, "Xã Phúc Thọ" a commune."""


def _lower(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _coding(url: str, system: str, code: str, display: str) -> dict[str, Any]:
    return {"url": url, "valueCoding": {"system": system, "code": code, "display": display}}


def parse_address(text: str) -> dict[str, Any]:
    """The written address as a home FHIR Address (see the module docstring)."""
    written = " ".join(text.split())
    parts = [p.strip() for p in written.split(",") if p.strip()]
    address: dict[str, Any] = {"use": "home", "type": "physical", "text": written}
    extensions: list[dict[str, Any]] = []
    province: Province | None = resolve_province(parts[-1]) if parts else None
    if province is None:
        address["line"] = parts
        extensions.append(_flag(f"province: '{parts[-1] if parts else ''}' is not a province"))
    else:
        parts.pop()
        address["state"] = province.name
        extensions.append(_coding(PROVINCE, PROVINCE_SYSTEM, province.code, province.name))
        unit = parts[-1] if parts else ""
        if unit and _DISTRICT_PREFIX.match(_lower(unit)):
            address["district"] = parts.pop()
            commune = f"'{parts[-1]}'" if parts else "the commune"
            extensions.append(
                _flag(
                    f"ward: {commune} of the former district '{address['district']}' is a "
                    "commune from before July 2025, not mapped to a current ward"
                )
            )
        elif unit and _WARD_PREFIX.match(_lower(unit)):
            ward = find_ward(province, parts.pop())
            address["city"] = ward.name if ward else unit
            if ward is None:
                extensions.append(_flag(f"ward: '{unit}' is not a ward of {province.name}"))
            else:
                extensions.append(_coding(WARD, WARD_SYSTEM, ward.code, ward.name))
        else:
            extensions.append(_flag(f"ward: no ward or commune is named in '{written}'"))
        if parts:
            address["line"] = parts
    address["country"] = "VN"
    address["extension"] = extensions
    return address


def _flag(reason: str) -> dict[str, Any]:
    return {"url": UNRESOLVED, "valueString": reason}


def address_codes(address: dict[str, Any]) -> tuple[str, str] | None:
    """(province code, ward code) from the extensions, "" for an unresolved one; None when
    the address carries neither codes nor flags (written before addresses were parsed)."""
    codes = {
        ext.get("url"): str((ext.get("valueCoding") or {}).get("code", ""))
        for ext in address.get("extension", [])
        if ext.get("url") in (PROVINCE, WARD)
    }
    flagged = any(ext.get("url") == UNRESOLVED for ext in address.get("extension", []))
    if not codes and not flagged:
        return None
    return codes.get(PROVINCE, ""), codes.get(WARD, "")


def unresolved(address: dict[str, Any]) -> list[str]:
    """What a person has to fix in the address (empty when every unit has its code)."""
    return [
        str(ext.get("valueString", ""))
        for ext in address.get("extension", [])
        if ext.get("url") == UNRESOLVED
    ]
