"""Vital signs as a station records them: checked, questioned, and written as FHIR Observations.

A nurse types seven numbers with a queue waiting; a slip of the finger (a pulse of 720, a height
in metres) must be caught before it enters a lifelong record, yet a true extreme (a fever of
41.5 °C) must be recordable. So each value is checked twice: outside what a living person can
have it is refused; outside the usual range it is *questioned* and recorded only once the
clinician confirms it.

Codes and units are those of the FHIR vital-signs profile (LOINC, UCUM), which every FHIR peer
reads; blood pressure is one Observation with systolic and diastolic components.
See: https://hl7.org/fhir/R4/observation-vitalsigns.html
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.messages import Text

LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
VITAL_SIGNS_CATEGORY: Final = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ]
}


@dataclass(frozen=True)
class Vital:
    """One vital sign the form asks for."""

    key: str
    """The form field's name."""
    label: str
    """English label (translated by the page's catalogue)."""
    loinc: str
    display: str
    unit: str
    ucum: str
    possible: tuple[float, float]
    """Outside this a value is refused: no living person has it."""
    usual: tuple[float, float]
    """Outside this a value is questioned before it is recorded."""
    decimals: int = 0


VITALS: Final[tuple[Vital, ...]] = (
    Vital(
        "systolic",
        "Systolic",
        "8480-6",
        "Systolic blood pressure",
        "mmHg",
        "mm[Hg]",
        (30, 300),
        (70, 200),
    ),
    Vital(
        "diastolic",
        "Diastolic",
        "8462-4",
        "Diastolic blood pressure",
        "mmHg",
        "mm[Hg]",
        (10, 200),
        (40, 120),
    ),
    Vital("pulse", "Pulse", "8867-4", "Heart rate", "/min", "/min", (10, 300), (40, 150)),
    Vital(
        "temperature",
        "Temperature",
        "8310-5",
        "Body temperature",
        "°C",
        "Cel",
        (25, 45),
        (35, 40),
        1,
    ),
    Vital(
        "spo2",
        "SpO₂",
        "59408-5",
        "Oxygen saturation in Arterial blood by Pulse oximetry",
        "%",
        "%",
        (30, 100),
        (90, 100),
    ),
    Vital(
        "respiration",
        "Respiratory rate",
        "9279-1",
        "Respiratory rate",
        "/min",
        "/min",
        (2, 100),
        (10, 30),
    ),
    Vital("height", "Height", "8302-2", "Body height", "cm", "cm", (20, 250), (45, 200), 1),
    Vital("weight", "Weight", "29463-7", "Body weight", "kg", "kg", (0.3, 400), (2.5, 150), 1),
)
BY_KEY: Final = {v.key: v for v in VITALS}
BLOOD_PRESSURE: Final = ("85354-9", "Blood pressure panel with all children optional")
BMI: Final = ("39156-5", "Body mass index (BMI) [Ratio]")


@dataclass(frozen=True)
class Problem:
    """What is wrong with one field; ``question`` problems are cleared by confirming."""

    field: str
    message: Text
    """In English (a message id the page translates), or a Message when it has values."""
    question: bool = False


@dataclass(frozen=True)
class Checked:
    values: dict[str, Decimal]
    problems: list[Problem]
    bmi: Decimal | None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.question]

    @property
    def questions(self) -> list[Problem]:
        return [p for p in self.problems if p.question]


def check(form: dict[str, str], confirmed: bool = False) -> Checked:
    """Parse and check the vital-sign fields of ``form`` (empty fields are not measured).

    Decimal commas are accepted (Vietnamese keyboards and habits write ``37,5``). With
    ``confirmed``, values outside the usual range are accepted; impossible ones never are.
    """
    values: dict[str, Decimal] = {}
    problems: list[Problem] = []
    for vital in VITALS:
        raw = (form.get(vital.key) or "").strip().replace(",", ".")
        if not raw:
            continue
        try:
            value = Decimal(raw)
        except InvalidOperation:
            problems.append(Problem(vital.key, "Enter a number"))
            continue
        if not value.is_finite():
            problems.append(Problem(vital.key, "Enter a number"))
            continue
        low, high = vital.possible
        if not low <= value <= high:
            problems.append(Problem(vital.key, "This value is not possible; check it"))
            continue
        low, high = vital.usual
        if not low <= value <= high and not confirmed:
            problems.append(Problem(vital.key, "Unusual value: confirm it is right", True))
        values[vital.key] = value
    if ("systolic" in values) != ("diastolic" in values):
        missing = "diastolic" if "systolic" in values else "systolic"
        problems.append(Problem(missing, "Blood pressure needs both numbers"))
    elif "systolic" in values and values["systolic"] <= values["diastolic"]:
        problems.append(Problem("diastolic", "Diastolic must be lower than systolic"))
    return Checked(values, problems, body_mass_index(values.get("height"), values.get("weight")))


def body_mass_index(height_cm: Decimal | None, weight_kg: Decimal | None) -> Decimal | None:
    """Weight / height², one decimal; None unless both are measured."""
    if height_cm is None or weight_kg is None or height_cm <= 0:
        return None
    metres = height_cm / 100
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"))


def _quantity(value: Decimal, unit: str, code: str) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "system": UCUM, "code": code}


def _observation(
    code: tuple[str, str], patient: str, encounter: str, when: str, performer: list[Any]
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [VITAL_SIGNS_CATEGORY],
        "code": {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "effectiveDateTime": when,
        "performer": performer,
    }


def observations(
    checked: Checked, patient: str, encounter: str, when: str, performer: list[Any]
) -> list[dict[str, Any]]:
    """The Observations of the checked values: one per vital sign, blood pressure as one panel
    with two components, BMI computed when height and weight were measured."""
    found: list[dict[str, Any]] = []
    values = checked.values
    if "systolic" in values and "diastolic" in values:
        panel = _observation(BLOOD_PRESSURE, patient, encounter, when, performer)
        panel["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": v.loinc, "display": v.display}]},
                "valueQuantity": _quantity(values[v.key], v.unit, v.ucum),
            }
            for v in (BY_KEY["systolic"], BY_KEY["diastolic"])
        ]
        found.append(panel)
    for vital in VITALS:
        if vital.key in ("systolic", "diastolic") or vital.key not in values:
            continue
        obs = _observation((vital.loinc, vital.display), patient, encounter, when, performer)
        obs["valueQuantity"] = _quantity(values[vital.key], vital.unit, vital.ucum)
        found.append(obs)
    if checked.bmi is not None:
        obs = _observation(BMI, patient, encounter, when, performer)
        obs["valueQuantity"] = _quantity(checked.bmi, "kg/m2", "kg/m2")
        found.append(obs)
    return found


def read_back(observation: dict[str, Any]) -> dict[str, Decimal]:
    """The form values an Observation holds (for the chart's latest vitals and trend)."""
    codes = {c.get("code") for c in (observation.get("code") or {}).get("coding", [])}
    by_loinc = {v.loinc: v.key for v in VITALS}
    found: dict[str, Decimal] = {}
    if BLOOD_PRESSURE[0] in codes:
        for comp in observation.get("component", []):
            for c in (comp.get("code") or {}).get("coding", []):
                key = by_loinc.get(c.get("code"))
                value = (comp.get("valueQuantity") or {}).get("value")
                if key and value is not None:
                    found[key] = Decimal(str(value))
        return found
    value = (observation.get("valueQuantity") or {}).get("value")
    if value is None:
        return found
    if BMI[0] in codes:
        found["bmi"] = Decimal(str(value))
    for code in codes:
        if code in by_loinc:
            found[by_loinc[code]] = Decimal(str(value))
    return found


__all__ = [
    "BMI",
    "BY_KEY",
    "LOINC",
    "VITALS",
    "Checked",
    "Problem",
    "Vital",
    "body_mass_index",
    "check",
    "observations",
    "read_back",
]
