"""A catalogue entry as a FHIR ``Medication``, and back.

``code`` carries the catalogue's own code (its source's code system), the Ministry's
active-ingredient code (``MA_THUOC``) and the ATC code; ``identifier`` the registration number
(``Medication.identifier`` is R4's place for a product's business identifier, so the *số đăng ký*
goes there rather than into an extension); ``form`` the dose form; ``ingredient`` each active
ingredient with its strength as a ``Ratio`` when it reads as one (``500mg``, ``1g/100ml``) and
always as written (extension ``strength-text``). Extensions carry what R4's Medication has no
element for: the flags (``drug-class``: prescription-only, narcotic N, psychotropic/precursor
H, traditional), route, dispensing unit, price, the catalogue source and version, and the
columns that are unconfirmed. ``meta.tag`` names the source: it is what marks a Medication as
the catalogue's, which only the catalogue's own operations write (``access/writes.py``).
See: https://hl7.org/fhir/R4/medication.html
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Any

from sokhoe.access.writes import DRUG_CATALOGUE_TAG
from sokhoe.prescribing.catalogue import (
    ATC_SYSTEM,
    DRUG_CLASS_SYSTEM,
    DRUG_CLASSES,
    EXT_CATALOGUE,
    EXT_DRUG_CLASS,
    EXT_PRICE,
    EXT_ROUTE,
    EXT_STRENGTH_TEXT,
    EXT_UNCONFIRMED,
    EXT_UNIT,
    INGREDIENT_SYSTEM,
    MA_THUOC_SYSTEM,
    NARCOTIC,
    PRESCRIPTION_ONLY,
    PSYCHOTROPIC,
    REGISTRATION_SYSTEM,
    TRADITIONAL,
    UCUM,
    CatalogueEntry,
    Ingredient,
    system_of,
)

_UNITS = {
    "mg": "mg",
    "g": "g",
    "mcg": "ug",
    "µg": "ug",
    "ug": "ug",
    "ml": "mL",
    "l": "L",
    "ui": "[iU]",
    "iu": "[iU]",
    "%": "%",
}
"""Strength units as lists write them -> UCUM (``UI``, *đơn vị quốc tế*, is the IU)."""
_STRENGTH = re.compile(
    r"^(\d+(?:[.,]\d+)?)\s*(mg|g|mcg|µg|ug|ml|l|ui|iu|%)"
    r"(?:\s*/\s*(\d+(?:[.,]\d+)?)?\s*(mg|g|mcg|µg|ug|ml|l))?$",
    re.IGNORECASE,
)
_ID_OK = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def medication_id(source: str, code: str) -> str:
    """A stable resource id for ``code`` of ``source``: readable when the code allows it."""
    rid = f"{source}-{code}"
    if _ID_OK.match(rid):
        return rid
    digest = hashlib.sha256(rid.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9\-.]", "-", code)[:40]
    return f"{source}-{readable}-{digest}"


def _number(text: str) -> int | float:
    value = Decimal(text.replace(",", "."))
    return int(value) if value == value.to_integral_value() else float(value)


def _quantity(value: str, unit: str) -> dict[str, Any]:
    code = _UNITS[unit.lower()]
    return {"value": _number(value), "unit": unit, "system": UCUM, "code": code}


def strength_ratio(strength: str, unit: str) -> dict[str, Any] | None:
    """``500mg`` -> 500 mg per 1 ``unit``; ``1g/100ml`` -> 1 g per 100 mL; else None."""
    found = _STRENGTH.match(strength.strip())
    if found is None:
        return None
    amount, amount_unit, per, per_unit = found.groups()
    if per_unit is None:
        return {
            "numerator": _quantity(amount, amount_unit),
            "denominator": {"value": 1, "unit": unit},
        }
    return {
        "numerator": _quantity(amount, amount_unit),
        "denominator": _quantity(per or "1", per_unit),
    }


def _ingredient(item: Ingredient, unit: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "itemCodeableConcept": {
            "coding": [{"system": INGREDIENT_SYSTEM, "code": item.key, "display": item.name}],
            "text": item.name,
        },
        "isActive": True,
    }
    if item.strength:
        out["extension"] = [{"url": EXT_STRENGTH_TEXT, "valueString": item.strength}]
        ratio = strength_ratio(item.strength, unit)
        if ratio is not None:
            out["strength"] = ratio
    return out


def to_medication(
    entry: CatalogueEntry, source: str, version: int, active: bool = True
) -> dict[str, Any]:
    """The ``Medication`` of ``entry`` in version ``version`` of ``source``'s catalogue."""
    codings = [{"system": system_of(source), "code": entry.code, "display": entry.name}]
    if entry.ma_thuoc:
        codings.append({"system": MA_THUOC_SYSTEM, "code": entry.ma_thuoc})
    if entry.atc:
        codings.append({"system": ATC_SYSTEM, "code": entry.atc})
    extensions: list[dict[str, Any]] = [
        {
            "url": EXT_CATALOGUE,
            "extension": [
                {"url": "source", "valueCode": source},
                {"url": "version", "valueInteger": version},
            ],
        }
    ]
    extensions += [
        {
            "url": EXT_DRUG_CLASS,
            "valueCoding": {"system": DRUG_CLASS_SYSTEM, "code": c, "display": DRUG_CLASSES[c]},
        }
        for c in entry.classes
    ]
    if entry.route:
        extensions.append({"url": EXT_ROUTE, "valueCodeableConcept": {"text": entry.route}})
    extensions.append({"url": EXT_UNIT, "valueCodeableConcept": {"text": entry.unit}})
    if entry.price is not None:
        price = entry.price
        value = int(price) if price == price.to_integral_value() else float(price)
        extensions.append({"url": EXT_PRICE, "valueMoney": {"value": value, "currency": "VND"}})
    extensions += [{"url": EXT_UNCONFIRMED, "valueString": c} for c in entry.unconfirmed]
    resource: dict[str, Any] = {
        "resourceType": "Medication",
        "id": medication_id(source, entry.code),
        "meta": {"tag": [{"system": DRUG_CATALOGUE_TAG, "code": source}]},
        "extension": extensions,
    }
    if entry.registration:
        resource["identifier"] = [{"system": REGISTRATION_SYSTEM, "value": entry.registration}]
    resource["code"] = {"coding": codings, "text": entry.name}
    resource["status"] = "active" if active else "inactive"
    if entry.form:
        resource["form"] = {"text": entry.form}
    resource["ingredient"] = [_ingredient(i, entry.unit) for i in entry.ingredients]
    return resource


def catalogue_version(medication: dict[str, Any]) -> int:
    """The catalogue version that last changed this Medication (0 if it has none)."""
    for ext in medication.get("extension", []):
        if ext.get("url") == EXT_CATALOGUE:
            for part in ext.get("extension", []):
                if part.get("url") == "version":
                    return int(part["valueInteger"])
    return 0


def with_version(medication: dict[str, Any], version: int) -> dict[str, Any]:
    """A copy of ``medication`` saying it was last changed in catalogue version ``version``."""
    out = dict(medication)
    out["extension"] = [
        (
            {
                **ext,
                "extension": [
                    {**p, "valueInteger": version} if p.get("url") == "version" else p
                    for p in ext.get("extension", [])
                ],
            }
            if ext.get("url") == EXT_CATALOGUE
            else ext
        )
        for ext in medication.get("extension", [])
    ]
    return out


def classes_of(medication: dict[str, Any]) -> set[str]:
    """The drug-class flags a Medication carries."""
    return {
        ext["valueCoding"]["code"]
        for ext in medication.get("extension", [])
        if ext.get("url") == EXT_DRUG_CLASS and "valueCoding" in ext
    }


def _codes(medication: dict[str, Any], system: str) -> str:
    return next(
        (
            c["code"]
            for c in medication.get("code", {}).get("coding", [])
            if c.get("system") == system
        ),
        "",
    )


def from_medication(medication: dict[str, Any]) -> CatalogueEntry:
    """The entry a catalogue Medication was made from (for listing and showing)."""
    ext: dict[str, list[dict[str, Any]]] = {}
    for e in medication.get("extension", []):
        ext.setdefault(e.get("url", ""), []).append(e)
    coding = medication["code"]["coding"][0]
    classes = classes_of(medication)
    ingredients = []
    for item in medication.get("ingredient", []):
        strength = next(
            (e["valueString"] for e in item.get("extension", []) if e["url"] == EXT_STRENGTH_TEXT),
            "",
        )
        ingredients.append(Ingredient(item["itemCodeableConcept"]["text"], strength))
    price = ext.get(EXT_PRICE, [{}])[0].get("valueMoney", {}).get("value")
    registration = next(
        (
            i["value"]
            for i in medication.get("identifier", [])
            if i.get("system") == REGISTRATION_SYSTEM
        ),
        "",
    )
    return CatalogueEntry(
        code=coding["code"],
        name=medication["code"].get("text", coding.get("display", "")),
        ingredients=tuple(ingredients),
        unit=ext.get(EXT_UNIT, [{}])[0].get("valueCodeableConcept", {}).get("text", ""),
        ma_thuoc=_codes(medication, MA_THUOC_SYSTEM),
        registration=registration,
        atc=_codes(medication, ATC_SYSTEM),
        form=medication.get("form", {}).get("text", ""),
        route=ext.get(EXT_ROUTE, [{}])[0].get("valueCodeableConcept", {}).get("text", ""),
        price=None if price is None else Decimal(str(price)),
        prescription_only=PRESCRIPTION_ONLY in classes,
        narcotic=NARCOTIC in classes,
        psychotropic=PSYCHOTROPIC in classes,
        traditional=TRADITIONAL in classes,
        unconfirmed=tuple(e["valueString"] for e in ext.get(EXT_UNCONFIRMED, [])),
    )
