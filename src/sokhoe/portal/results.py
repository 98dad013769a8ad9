"""Results explained in plain words: "Đường huyết 7,8 mmol/L — cao hơn mức bình thường
(3,9–6,4)".

A resident reads a number with its usual range and whether it is below, within or above it. The
range is the laboratory's own (``Observation.referenceRange``) when it sent one; otherwise, for
the few tests the platform knows, the range Vietnamese hospital laboratories commonly print for
adults (:data:`USUAL_RANGES`; unconfirmed as a national norm, so it is marked as the usual
range, never presented as the laboratory's). Without a range the value is shown without a
judgement, unless the laboratory flagged it (``interpretation`` H/L/N). Vital signs get no
judgement: the clinic's limits are for catching typing slips, not normal ranges.
See: https://hl7.org/fhir/R4/observation-definitions.html#Observation.referenceRange
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from sokhoe.clinic.records import text_of
from sokhoe.clinic.vitals import BLOOD_PRESSURE, BMI, BY_KEY
from sokhoe.fhir.references import codings
from sokhoe.portal.sources import Source
from sokhoe.portal.words import N_
from sokhoe.portal.words import UNITS as UNIT_WORDS

LOINC: Final = "http://loinc.org"
Judgement = Literal["low", "normal", "high"]

PLAIN_NAMES: Final[dict[str, str]] = {
    "2345-7": N_("Blood sugar"),
    "2339-0": N_("Blood sugar"),
    "41653-7": N_("Blood sugar (finger prick)"),
    "14749-6": N_("Blood sugar"),
    "15074-8": N_("Blood sugar"),
    "1558-6": N_("Fasting blood sugar"),
    "4548-4": N_("HbA1c (average blood sugar over 3 months)"),
    "2160-0": N_("Creatinine (kidney function)"),
    "14682-9": N_("Creatinine (kidney function)"),
    "2093-3": N_("Total cholesterol"),
    "2571-8": N_("Triglycerides"),
    "777-3": N_("Platelets"),
    "718-7": N_("Haemoglobin"),
    "882-1": N_("Blood group"),
    "8867-4": N_("Pulse"),
    BLOOD_PRESSURE[0]: N_("Blood pressure"),
    "29463-7": N_("Weight"),
    "8302-2": N_("Height"),
    BMI[0]: N_("Body mass index (BMI)"),
    "8310-5": N_("Temperature"),
    "59408-5": N_("Oxygen in the blood (SpO₂)"),
    "9279-1": N_("Breathing rate"),
}
"""What a resident calls the test (LOINC code → message id)."""
GLUCOSE_CODES: Final = ("2345-7", "2339-0", "41653-7", "14749-6", "15074-8", "1558-6")

Bound = Decimal | None
USUAL_RANGES: Final[dict[tuple[str, str], tuple[Bound, Bound]]] = {
    ("glucose", "mmol/l"): (Decimal("3.9"), Decimal("6.4")),
    ("glucose", "mg/dl"): (Decimal(70), Decimal(115)),
    ("4548-4", "%"): (Decimal(4), Decimal(6)),
    ("2093-3", "mmol/l"): (None, Decimal("5.2")),
    ("2093-3", "mg/dl"): (None, Decimal(200)),
    ("2571-8", "mmol/l"): (None, Decimal("1.7")),
    ("777-3", "10*3/ul"): (Decimal(150), Decimal(450)),
    ("777-3", "10*9/l"): (Decimal(150), Decimal(450)),
}
"""(test, unit in lower case) → (low, high) for adults, where the test's range does not depend
on sex (creatinine does: it is judged only with the laboratory's range). Unconfirmed: keep
them in this one table."""
UNITS: Final = {"µmol/l": "umol/l", "10^9/l": "10*9/l", "10^3/ul": "10*3/ul", "g/l": "g/l"}
"""Other spellings of the units of :data:`USUAL_RANGES` (lower case)."""


@dataclass(frozen=True)
class Range:
    low: Decimal | None
    high: Decimal | None
    usual: bool
    """True: the usual adult range of :data:`USUAL_RANGES`, not the laboratory's own."""

    @property
    def decimals(self) -> int:
        return max(decimals_of(self.low), decimals_of(self.high))


@dataclass(frozen=True)
class Result:
    """One measured value as the book shows it."""

    name: str
    """A message id of :data:`PLAIN_NAMES`, or the record's own words for the test."""
    values: tuple[Decimal, ...]
    """The number(s): two for a blood pressure (systolic, diastolic); none for a text value."""
    text: str
    """A value in words (a blood group, "âm tính"); "" for a number."""
    unit: str
    decimals: int
    when: str | None
    source: Source
    range: Range | None = None
    judgement: Judgement | None = None
    reference: str = ""
    """``Observation/<id>``."""
    comparator: str = ""
    """``<`` or ``>`` when the laboratory could only bound the value ("< 0,1")."""


def decimals_of(value: Decimal | None) -> int:
    """How many decimals ``value`` was written with (at most 2)."""
    if value is None:
        return 0
    exponent = value.normalize().as_tuple().exponent
    return min(max(-exponent, 0), 2) if isinstance(exponent, int) else 0


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def loinc_codes(observation: dict[str, Any]) -> list[str]:
    return [
        str(c["code"])
        for c in codings(observation.get("code"))
        if c.get("system") == LOINC and c.get("code")
    ]


def plain_name(observation: dict[str, Any]) -> str:
    for code in loinc_codes(observation):
        if code in PLAIN_NAMES:
            return PLAIN_NAMES[code]
    return text_of(observation.get("code"))


def _unit(quantity: dict[str, Any]) -> str:
    unit = str(quantity.get("unit") or quantity.get("code") or "")
    return UNIT_WORDS.get(unit, unit)


def _lab_range(observation: dict[str, Any]) -> Range | None:
    for found in observation.get("referenceRange", []):
        low = _decimal((found.get("low") or {}).get("value"))
        high = _decimal((found.get("high") or {}).get("value"))
        if low is not None or high is not None:
            return Range(low, high, usual=False)
    return None


def _usual_range(observation: dict[str, Any], unit: str) -> Range | None:
    key = unit.strip().lower()
    key = UNITS.get(key, key)
    for code in loinc_codes(observation):
        test = "glucose" if code in GLUCOSE_CODES else code
        if (test, key) in USUAL_RANGES:
            low, high = USUAL_RANGES[(test, key)]
            return Range(low, high, usual=True)
    return None


def _flagged(observation: dict[str, Any]) -> Judgement | None:
    """The laboratory's own flag (HL7 v2 table 0078 / v3 ObservationInterpretation)."""
    for coding in codings(observation.get("interpretation")):
        code = str(coding.get("code", "")).upper()
        if code in ("H", "HH", "HU", ">"):
            return "high"
        if code in ("L", "LL", "LU", "<"):
            return "low"
        if code == "N":
            return "normal"
    return None


def judge(value: Decimal, found: Range) -> Judgement:
    if found.low is not None and value < found.low:
        return "low"
    if found.high is not None and value > found.high:
        return "high"
    return "normal"


def explain(
    observation: dict[str, Any], source: Source, *, vital: bool = False, reference: str = ""
) -> Result | None:
    """``observation`` as the book shows it; None when it holds no value to show."""
    when = observation.get("effectiveDateTime") or (observation.get("effectivePeriod") or {}).get(
        "start"
    )
    name = plain_name(observation)
    ref = reference or f"Observation/{observation.get('id', '')}"
    codes = loinc_codes(observation)
    if BLOOD_PRESSURE[0] in codes:
        parts = _pressure(observation)
        if parts is None:
            return None
        decimals = max(decimals_of(v) for v in parts)
        return Result(name, parts, "", "mmHg", decimals, when, source, reference=ref)
    quantity = observation.get("valueQuantity")
    if isinstance(quantity, dict):
        value = _decimal(quantity.get("value"))
        if value is None:
            return None
        unit = _unit(quantity)
        found = None if vital else (_lab_range(observation) or _usual_range(observation, unit))
        judgement = judge(value, found) if found else (None if vital else _flagged(observation))
        return Result(
            name,
            (value,),
            "",
            unit,
            decimals_of(value),
            when,
            source,
            found,
            judgement,
            ref,
            str(quantity.get("comparator") or ""),
        )
    text = _text_value(observation)
    if not text:
        return None
    return Result(name, (), text, "", 0, when, source, None, _flagged(observation), ref)


def _pressure(observation: dict[str, Any]) -> tuple[Decimal, Decimal] | None:
    wanted = (BY_KEY["systolic"].loinc, BY_KEY["diastolic"].loinc)
    found: dict[str, Decimal] = {}
    for component in observation.get("component", []):
        value = _decimal((component.get("valueQuantity") or {}).get("value"))
        for coding in codings(component.get("code")):
            if coding.get("code") in wanted and value is not None:
                found[str(coding["code"])] = value
    if len(found) < 2:
        return None
    return found[wanted[0]], found[wanted[1]]


def _text_value(observation: dict[str, Any]) -> str:
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in observation:
            return str(observation[key])
    if "valueCodeableConcept" in observation:
        return text_of(observation["valueCodeableConcept"])
    return ""


__all__ = [
    "GLUCOSE_CODES",
    "PLAIN_NAMES",
    "USUAL_RANGES",
    "Judgement",
    "Range",
    "Result",
    "decimals_of",
    "explain",
    "judge",
    "loinc_codes",
    "plain_name",
]
