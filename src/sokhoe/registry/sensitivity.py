"""Which records are sensitive: mental health, HIV, sexual and reproductive health.

A citizen may keep these categories for the treating facility only (``Patient/$restrict``,
``sokhoe.access.consent``). A restriction is only as good as the labels it relies on: a
clinician who codes F32 (depression) should not also have to remember to tick "sensitive". So
every write labels the resource from its codes, in ``meta.security`` with the HL7 v3
information-sensitivity codes the guard checks. Labels are only ever added: one a facility set
by hand stays, and a code that is not listed here never removes one.

The code lists are the platform's choice (no Vietnamese regulation lists them code by code):
ICD-10 chapter V and intentional self-harm for mental health; the HIV disease and HIV-status
codes; sexually transmitted infections, abortive outcomes and procreative management for
sexual and reproductive health; and the LOINC HIV tests a lab result arrives with.

See: https://terminology.hl7.org/CodeSystem-v3-ActCode.html (PSY, HIV, SEX)
See: https://hl7.org/fhir/R4/security-labels.html
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM

ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC: Final = "http://loinc.org"

SENSITIVE: Final = {
    "PSY": "psychiatry disorder information sensitivity",
    "HIV": "HIV/AIDS information sensitivity",
    "SEX": "sexuality and reproductive health information sensitivity",
}
"""Sensitive categories a patient may restrict (HL7 v3 ActCode information sensitivity)."""

_ICD10_RANGES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # mental and behavioural disorders (chapter V); intentional self-harm; history of it
    "PSY": (("F00", "F99"), ("X60", "X84"), ("Z915", "Z915")),
    # HIV disease; asymptomatic HIV; laboratory evidence of HIV; HIV in pregnancy; contact
    "HIV": (("B20", "B24"), ("Z21", "Z21"), ("R75", "R75"), ("O987", "O987"), ("Z206", "Z206")),
    # sexually transmitted infections; pregnancy with abortive outcome; infertility;
    # contraceptive and procreative management
    "SEX": (("A50", "A64"), ("O00", "O08"), ("N46", "N46"), ("N97", "N97"), ("Z30", "Z31")),
}
"""ICD-10 code ranges per category, compared on the code without its dot (``F32.1`` is
``F321``); a range end covers every sub-code under it (``F99`` covers ``F99X``)."""

_LOINC_HIV: Final = frozenset(
    {
        "75622-1",  # HIV 1 and 2 tests - Meaningful Use set
        "56888-1",  # HIV 1+2 Ab + HIV1 p24 Ag [Presence] in Serum or Plasma by Immunoassay
        "7917-8",  # HIV 1 Ab [Presence] in Serum
        "68961-2",  # HIV 1 Ab [Presence] in Serum, Plasma or Blood by Immunoassay
        "25836-8",  # HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA
        "20447-9",  # HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA with probe
        "24467-3",  # CD3+CD4+ (T4 helper) cells [#/volume] in Blood
    }
)
"""Lab results that disclose HIV status by being ordered or resulted."""


def in_icd10_ranges(code: str, ranges: tuple[tuple[str, str], ...]) -> bool:
    """Whether an ICD-10 code falls in one of ``ranges`` (compared without the dot; a range
    end covers every sub-code under it). Shared with the retention rules."""
    key = code.strip().upper().replace(".", "")
    return any(low <= key[: len(low)] and key[: len(high)] <= high for low, high in ranges)


def icd10_category(code: str) -> str | None:
    """The sensitive category of an ICD-10 code, or None."""
    for category, ranges in _ICD10_RANGES.items():
        if in_icd10_ranges(code, ranges):
            return category
    return None


def categories(resource: dict[str, Any]) -> set[str]:
    """Every sensitive category the resource's codings reveal (ICD-10 anywhere in it; the
    LOINC HIV tests)."""
    found: set[str] = set()
    for system, code in codings(resource):
        if system == ICD10_SYSTEM:
            category = icd10_category(code)
            if category:
                found.add(category)
        elif system == LOINC and code in _LOINC_HIV:
            found.add("HIV")
    return found


def label_sensitive(resource: dict[str, Any]) -> set[str]:
    """Add the ``meta.security`` labels the resource's codes call for, in place; return the
    categories added. Called on every write before indexing (``_security`` is searchable)."""
    return add_labels(resource, categories(resource))


def add_labels(resource: dict[str, Any], wanted: Iterable[str]) -> set[str]:
    """Add the ``meta.security`` label of each of ``wanted``'s categories the resource lacks, in
    place; return the categories added. A bulk loader's writer calls it with what its worker
    found (``fhir.precheck``), instead of walking every coding again."""
    if not wanted:
        return set()
    wanted = set(wanted)
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    security = meta.get("security")
    given = security if isinstance(security, list) else []
    labels = [dict(s) for s in given if isinstance(s, dict)]
    present = {s.get("code") for s in labels if s.get("system") == ACT_CODE}
    added = wanted - present
    for category in sorted(added):
        labels.append({"system": ACT_CODE, "code": category, "display": SENSITIVE[category]})
    if added:
        resource["meta"] = {**meta, "security": labels}
    return added


def codings(node: Any) -> Iterator[tuple[str, str]]:
    """(system, code) of every Coding under ``node`` (``meta`` left out: labels, not codes)."""
    if isinstance(node, dict):
        system, code = node.get("system"), node.get("code")
        if isinstance(system, str) and isinstance(code, str):
            yield system, code
        for key, value in node.items():
            if key != "meta" and isinstance(value, dict | list):
                yield from codings(value)
    elif isinstance(node, list):
        for item in node:
            yield from codings(item)


__all__ = [
    "ACT_CODE",
    "SENSITIVE",
    "add_labels",
    "categories",
    "codings",
    "icd10_category",
    "in_icd10_ranges",
    "label_sensitive",
]
