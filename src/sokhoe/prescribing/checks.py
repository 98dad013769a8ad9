"""The checks before a prescription is issued, as pure functions over plain values.

What the record holds (the patient's allergies and active prescriptions from *every*
facility, their age and weight, the visit's diagnoses) is gathered by ``prescribing/context.py``
through the access door; here each rule looks at it and says what it found. A finding is either
**blocking** (the prescription is refused with the reason: too many days, an N/H medicine mixed
with others, a narcotic at a facility without beds, a young child without a weight) or a
**warning** the prescriber may override with a reason the record keeps (an allergy, duplicate
therapy, an interaction). Every finding becomes a ``DetectedIssue`` linked from the
``MedicationRequest`` (``prescribing/issue.py``), so a pharmacist or an auditor sees what was
checked, against which version of the rules, and who overrode what.
See: https://hl7.org/fhir/R4/detectedissue.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

from sokhoe.prescribing.code import Kind
from sokhoe.prescribing.interactions import Severity, interactions
from sokhoe.prescribing.rules import RuleSet

Rule = Literal[
    "duration",
    "mixed-types",
    "narcotic-facility",
    "child-weight",
    "dose-per-kg",
    "allergy",
    "duplicate-therapy",
    "interaction",
]
V3_CODE: Final[dict[Rule, str]] = {
    "duration": "DOSEDURH",
    "allergy": "ALGY",
    "duplicate-therapy": "DUPTHPY",
    "interaction": "DRG",
}
"""The HL7 v3 detected-issue code of a rule, where one fits (``v3-ActCode``)."""


@dataclass(frozen=True)
class Drug:
    """What the checks need of a medicine, from a catalogue entry or a past prescription."""

    name: str
    atc: str = ""
    ingredients: frozenset[str] = frozenset()
    """Folded active-ingredient names (``catalogue.ingredient_key``)."""
    kind: Kind = "C"

    @property
    def atc_group(self) -> str:
        """The ATC level-4 group (``C09AA``): the same chemical subgroup is duplicate therapy."""
        return self.atc[:5] if len(self.atc) >= 5 else ""


@dataclass(frozen=True)
class Line:
    """One line of the prescription being written."""

    index: int
    drug: Drug
    days: int
    per_dose: Decimal | None = None
    per_day: Decimal | None = None
    dose_unit: str = ""
    override: str = ""
    """The prescriber's reason to go ahead despite this line's warnings."""


@dataclass(frozen=True)
class Current:
    """A medicine the person is taking now, prescribed anywhere (``MedicationRequest``)."""

    reference: str
    drug: Drug
    facility: str
    authored: str = ""


@dataclass(frozen=True)
class Allergy:
    """An active allergy or intolerance, recorded at any facility."""

    reference: str
    text: str
    atc: tuple[str, ...] = ()
    ingredients: frozenset[str] = frozenset()

    def concerns(self, drug: Drug) -> bool:
        return bool(drug.ingredients & self.ingredients) or any(
            drug.atc.startswith(a) for a in self.atc if a
        )


@dataclass(frozen=True)
class Context:
    """Everything about the patient and the visit the rules need."""

    rules: RuleSet
    diagnoses: tuple[str, ...] = ()
    """The visit's ICD-10 codes."""
    long_term: bool = False
    """A long-term psychotropic treatment (the H limit of 30 days instead of 10)."""
    inpatient_beds: bool = False
    age_months: int | None = None
    weight_kg: Decimal | None = None
    allergies: tuple[Allergy, ...] = ()
    current: tuple[Current, ...] = ()


@dataclass(frozen=True)
class Finding:
    """What one rule found: where, how serious, in both languages."""

    rule: Rule
    blocking: bool
    severity: Severity
    lines: tuple[int, ...]
    vi: str
    en: str
    implicated: tuple[str, ...] = ()
    """Other resources involved: the allergy, the active prescription at another facility."""

    @property
    def v3_code(self) -> str | None:
        return V3_CODE.get(self.rule)


@dataclass
class Findings:
    items: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.items if f.blocking]

    @property
    def warnings(self) -> list[Finding]:
        """Findings the prescriber must answer (information such as the dose per kg is not)."""
        return [f for f in self.items if not f.blocking and f.severity != "low"]

    def unanswered(self, lines: list[Line]) -> list[Finding]:
        """Warnings on a line whose prescriber gave no reason to override them."""
        reasons = {line.index: line.override.strip() for line in lines}
        return [f for f in self.warnings if any(not reasons.get(i) for i in f.lines)]


def kind_of(lines: list[Line]) -> Kind:
    """The prescription's type follows its medicines (one type per prescription)."""
    kinds = {line.drug.kind for line in lines}
    return "N" if "N" in kinds else "H" if "H" in kinds else "C"


def check(lines: list[Line], context: Context) -> Findings:
    """Every rule over ``lines``; the order is the order the prescriber reads them in."""
    found = Findings()
    found.items += _types(lines, context)
    found.items += _duration(lines, context)
    found.items += _child(lines, context)
    found.items += _allergies(lines, context)
    found.items += _duplicates(lines, context)
    found.items += _interactions(lines, context)
    return found


def _types(lines: list[Line], context: Context) -> list[Finding]:
    kinds = {line.drug.kind for line in lines}
    out = []
    if len(kinds) > 1:
        out.append(
            Finding(
                "mixed-types",
                True,
                "high",
                tuple(line.index for line in lines if line.drug.kind != "C"),
                "Thuốc gây nghiện (N) và thuốc hướng thần, tiền chất (H) phải kê trên đơn riêng",
                "Narcotic (N) and psychotropic or precursor (H) medicines go on a prescription "
                "of their own",
            )
        )
    if "N" in kinds and not context.inpatient_beds:
        out.append(
            Finding(
                "narcotic-facility",
                True,
                "high",
                tuple(line.index for line in lines if line.drug.kind == "N"),
                "Chỉ cơ sở có giường bệnh nội trú được kê đơn thuốc gây nghiện",
                "Only a facility with inpatient beds may prescribe narcotics",
            )
        )
    return out


def _duration(lines: list[Line], context: Context) -> list[Finding]:
    out = []
    for line in lines:
        limit = context.rules.max_days_for(
            line.drug.kind, list(context.diagnoses), context.long_term
        )
        if line.days <= 0:
            out.append(
                Finding(
                    "duration",
                    True,
                    "high",
                    (line.index,),
                    f"{line.drug.name}: số ngày dùng phải lớn hơn 0",
                    f"{line.drug.name}: the number of days must be more than 0",
                )
            )
        elif line.days > limit:
            out.append(
                Finding(
                    "duration",
                    True,
                    "high",
                    (line.index,),
                    f"{line.drug.name}: {line.days} ngày, vượt quá {limit} ngày cho phép "
                    f"({_why_vi(line.drug.kind, limit, context)})",
                    f"{line.drug.name}: {line.days} days is more than the {limit} allowed "
                    f"({_why_en(line.drug.kind, limit, context)})",
                )
            )
    return out


def _why_vi(kind: Kind, limit: int, context: Context) -> str:
    if kind == "N":
        return "thuốc gây nghiện"
    if kind == "H":
        return "thuốc hướng thần, tiền chất" + (", điều trị dài ngày" if context.long_term else "")
    return "bệnh mạn tính" if limit == context.rules.max_days_chronic else "đơn thông thường"


def _why_en(kind: Kind, limit: int, context: Context) -> str:
    if kind == "N":
        return "narcotic"
    if kind == "H":
        return "psychotropic or precursor" + (", long-term" if context.long_term else "")
    return "chronic disease" if limit == context.rules.max_days_chronic else "ordinary"


def _child(lines: list[Line], context: Context) -> list[Finding]:
    age = context.age_months
    if age is None or age >= context.rules.child_months:
        return []
    if context.weight_kg is None or context.weight_kg <= 0:
        return [
            Finding(
                "child-weight",
                True,
                "high",
                tuple(line.index for line in lines),
                f"Trẻ {age} tháng tuổi: cần cân nặng trước khi kê đơn",
                f"A child of {age} months: record the weight before prescribing",
            )
        ]
    out = []
    for line in lines:
        if line.per_dose is None:
            continue
        per_kg = (line.per_dose / context.weight_kg).quantize(Decimal("0.01"))
        unit = line.dose_unit or ""
        out.append(
            Finding(
                "dose-per-kg",
                False,
                "low",
                (line.index,),
                f"{line.drug.name}: {per_kg} {unit}/kg mỗi lần ({context.weight_kg} kg)",
                f"{line.drug.name}: {per_kg} {unit}/kg per dose ({context.weight_kg} kg)",
            )
        )
    return out


def _allergies(lines: list[Line], context: Context) -> list[Finding]:
    return [
        Finding(
            "allergy",
            False,
            "high",
            (line.index,),
            f"{line.drug.name}: người bệnh dị ứng với {allergy.text}",
            f"{line.drug.name}: the patient is allergic to {allergy.text}",
            (allergy.reference,),
        )
        for line in lines
        for allergy in context.allergies
        if allergy.concerns(line.drug)
    ]


def _same_therapy(a: Drug, b: Drug) -> str | None:
    """``ingredient`` or ``group`` when ``a`` and ``b`` duplicate each other, else None."""
    if a.ingredients & b.ingredients or (a.atc and a.atc == b.atc):
        return "ingredient"
    if a.atc_group and a.atc_group == b.atc_group:
        return "group"
    return None


def _duplicates(lines: list[Line], context: Context) -> list[Finding]:
    out = []
    for line in lines:
        for other in lines:
            if other.index > line.index and _same_therapy(line.drug, other.drug):
                out.append(
                    Finding(
                        "duplicate-therapy",
                        False,
                        "moderate",
                        (line.index, other.index),
                        f"{line.drug.name} và {other.drug.name} trùng hoạt chất hoặc nhóm thuốc",
                        f"{line.drug.name} and {other.drug.name} share an ingredient or group",
                    )
                )
        for current in context.current:
            same = _same_therapy(line.drug, current.drug)
            if same is None:
                continue
            what_vi = "cùng hoạt chất" if same == "ingredient" else "cùng nhóm thuốc"
            what_en = "the same ingredient" if same == "ingredient" else "the same group"
            out.append(
                Finding(
                    "duplicate-therapy",
                    False,
                    "moderate",
                    (line.index,),
                    f"{line.drug.name}: {what_vi} với {current.drug.name} đang dùng theo đơn của "
                    f"{current.facility or 'cơ sở khác'}",
                    f"{line.drug.name}: {what_en} as {current.drug.name}, active from a "
                    f"prescription of {current.facility or 'another facility'}",
                    (current.reference,),
                )
            )
    return out


def _interactions(lines: list[Line], context: Context) -> list[Finding]:
    out = []
    for line in lines:
        others: list[tuple[Drug, tuple[int, ...], tuple[str, ...]]] = [
            (o.drug, (line.index, o.index), ()) for o in lines if o.index > line.index
        ]
        others += [(c.drug, (line.index,), (c.reference,)) for c in context.current]
        for drug, where, implicated in others:
            for found in interactions(line.drug.atc, drug.atc):
                out.append(
                    Finding(
                        "interaction",
                        False,
                        found.severity,
                        where,
                        f"{line.drug.name} + {drug.name}: {found.effect_vi}",
                        f"{line.drug.name} + {drug.name}: {found.effect_en}",
                        implicated,
                    )
                )
    return out


__all__ = [
    "V3_CODE",
    "Allergy",
    "Context",
    "Current",
    "Drug",
    "Finding",
    "Findings",
    "Line",
    "Rule",
    "check",
    "kind_of",
]
