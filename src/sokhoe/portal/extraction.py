"""From a submitted declaration to the record's own resources: what a clinician's list of
allergies, problems and vaccinations shows, marked as the citizen's word.

Each answer that means something clinically becomes the resource FHIR has for it: an
``AllergyIntolerance`` per allergy, a ``Condition`` per long-term illness or disability, a
``Procedure`` per past operation, a ``FamilyMemberHistory`` per relative's illness, an
``Immunization`` per vaccination given elsewhere, and social-history ``Observation``s (tobacco
72166-2, alcohol 11331-6, occupation 11341-5, physical activity 89555-7 and 68516-4, ABO/Rh
882-1, pregnancies 11996-6, 11640-0, 11612-9, 82810-3; birth history and work hazards under our
own codes). Every one is tagged self-declared and ``unconfirmed``, with the native status
``portal/selfdeclared.py`` gives that stage, and names the patient (or the guardian who
declared for a child) as recorder and asserter.

An extracted item carries the identifier ``{QuestionnaireResponse id}#{key}``, the key made from
what it says (the allergy's substance, the illness's code…), so that sending the declaration
again updates the same items instead of adding copies.
See: https://build.fhir.org/ig/HL7/sdc/extraction.html
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sokhoe.fhir.resources import format_instant
from sokhoe.mpi.normalise import fold
from sokhoe.portal.codes import CHRONIC, FAMILY_DISEASES, NEVER_NOW_BEFORE, RELATIVES, VACCINES
from sokhoe.portal.questionnaire import DECLARATION, N_, Option
from sokhoe.portal.sections import BY_LINK
from sokhoe.portal.selfdeclared import mark

ITEM_SYSTEM: Final = "https://fhir.sokhoe.vn/sid/declaration-item"
"""Identifier system of an extracted item: ``{QuestionnaireResponse id}#{key}``."""
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION: Final = (
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
)
IMMUNIZATION_ORIGIN: Final = "http://terminology.hl7.org/CodeSystem/immunization-origin"
UCUM: Final = "http://unitsofmeasure.org"
TYPES: Final = (
    "AllergyIntolerance",
    "Condition",
    "Procedure",
    "FamilyMemberHistory",
    "Immunization",
    "Observation",
)
"""Every type an extraction writes (the items a re-submission looks for)."""
SMOKING: Final = {
    "never": ("266919005", "Never smoked tobacco"),
    "current": ("77176002", "Smoker"),
    "former": ("8517006", "Ex-smoker"),
}
PREGNANT: Final = {
    "yes": ("77386006", "Pregnant"),
    "no": ("60001007", "Not pregnant"),
    "unknown": ("261665006", "Unknown"),
}

Translate = Callable[[str], str]


@dataclass(frozen=True)
class Extracted:
    """One resource a declaration says, before it is written."""

    resource_type: str
    key: str
    content: dict[str, Any]

    def identifier(self, qr_id: str) -> str:
        digest = hashlib.sha256(self.key.encode("utf-8")).hexdigest()[:16]
        return f"{qr_id}#{self.key.split(':', 1)[0]}-{digest}"


@dataclass(frozen=True)
class Context:
    patient_id: str
    qr_id: str
    asserter: dict[str, Any]
    """``Patient/{id}``, or the guardian's ``RelatedPerson`` when a parent declares."""
    now: datetime
    translate: Translate

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.patient_id}"}

    def coding(self, option: Option) -> dict[str, str]:
        return option.coding(self.translate)


def _concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept; ``text`` is what a person reads (Vietnamese), else the display."""
    coding = {"system": system, "code": code, "display": display}
    return {"coding": [coding], "text": text or display}


def _ours(code: str, display: str) -> dict[str, Any]:
    return _concept(DECLARATION, code, display)


def _option(options: tuple[Option, ...], code: str) -> Option | None:
    return next((o for o in options if o.code == code), None)


def _observation(
    ctx: Context, key: str, code: dict[str, Any], value: dict[str, Any], category: str
) -> Extracted:
    content: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "preliminary",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}],
        "code": code,
        "subject": ctx.subject,
        "effectiveDateTime": format_instant(ctx.now),
        "performer": [ctx.asserter],
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{ctx.qr_id}"}],
        **value,
    }
    return Extracted("Observation", f"obs:{key}", content)


def _quantity(value: int, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _component(code: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, **value}


def _about(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if a.get("occupation"):
        code = _concept(LOINC, "11341-5", "History of Occupation", ctx.translate(N_("Occupation")))
        value = {"valueCodeableConcept": {"text": a["occupation"]}}
        yield _observation(ctx, "occupation", code, value, "social-history")


def _blood(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    parts = []
    if a.get("abo") not in (None, "unknown"):
        group = _ours(f"abo-{a['abo']}", a["abo"])
        parts.append(
            _component(
                _concept(LOINC, "883-9", "ABO group [Type] in Blood"),
                {"valueCodeableConcept": group},
            )
        )
    if a.get("rh") not in (None, "unknown"):
        sign = {"positive": "Rh+", "negative": "Rh−"}[a["rh"]]
        rh = _ours(f"rh-{a['rh']}", sign)
        parts.append(
            _component(
                _concept(LOINC, "10331-7", "Rh [Type] in Blood"), {"valueCodeableConcept": rh}
            )
        )
    if parts:
        code = _concept(
            LOINC, "882-1", "ABO and Rh group [Type] in Blood", ctx.translate(N_("Blood group"))
        )
        yield _observation(ctx, "blood-group", code, {"component": parts}, "laboratory")


def _birth(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    section = BY_LINK["birth"]
    parts = []
    for link in ("delivery", "premature"):
        item = section.item(link)
        chosen = item.option(a[link]) if item and a.get(link) else None
        if chosen is not None and chosen.code != "unknown":
            parts.append(
                _component(
                    _ours(link, ctx.translate(item.text if item else link)),
                    {
                        "valueCodeableConcept": {
                            "coding": [ctx.coding(chosen)],
                            "text": ctx.translate(chosen.display),
                        }
                    },
                )
            )
    if a.get("birth-weight"):
        code = _concept(LOINC, "8339-4", "Birth weight Measured")
        parts.append(_component(code, {"valueQuantity": _quantity(a["birth-weight"], "g", "g")}))
    if a.get("birth-length"):
        code = _ours("birth-length", "Chiều dài lúc sinh")
        parts.append(_component(code, {"valueQuantity": _quantity(a["birth-length"], "cm", "cm")}))
    if a.get("defects"):
        code = _ours("birth-defects", "Dị tật bẩm sinh")
        parts.append(_component(code, {"valueString": a["defects"]}))
    if parts:
        code = _ours("birth-history", "Tiền sử lúc sinh")
        yield _observation(ctx, "birth", code, {"component": parts}, "social-history")


def _habit(ctx: Context, a: dict[str, Any], link: str) -> Iterator[Extracted]:
    status = a.get(link)
    if status is None:
        return
    parts = []
    value: dict[str, Any]
    if link == "tobacco":
        snomed, display = SMOKING[status]
        value = {"valueCodeableConcept": _concept(SNOMED, snomed, display)}
        code = _concept(LOINC, "72166-2", "Tobacco smoking status", ctx.translate(N_("Smoking")))
        kinds = BY_LINK["tobacco"].item("tobacco-kind")
        for kind in a.get("tobacco-kind", []):
            option = kinds.option(kind) if kinds else None
            if option is not None:
                concept = {"coding": [ctx.coding(option)], "text": ctx.translate(option.display)}
                parts.append(
                    _component(
                        _ours("tobacco-kind", "Loại thuốc hút"), {"valueCodeableConcept": concept}
                    )
                )
        if a.get("tobacco-per-day"):
            parts.append(
                _component(
                    _ours("tobacco-per-day", "Số lần hút mỗi ngày"),
                    {"valueQuantity": _quantity(a["tobacco-per-day"], "/d", "/d")},
                )
            )
    else:
        option = _option(NEVER_NOW_BEFORE, status)
        shown = ctx.translate(option.display) if option else status
        value = {"valueCodeableConcept": _ours(f"alcohol-{status}", shown)}
        code = _concept(LOINC, "11331-6", "History of Alcohol use", ctx.translate(N_("Alcohol")))
        if a.get("alcohol-days"):
            parts.append(
                _component(
                    _ours("alcohol-days", "Số ngày uống mỗi tuần"),
                    {"valueQuantity": _quantity(a["alcohol-days"], "d/wk", "d/wk")},
                )
            )
        if a.get("alcohol-drinks"):
            parts.append(
                _component(
                    _ours("alcohol-drinks", "Số cốc mỗi ngày uống"),
                    {"valueQuantity": _quantity(a["alcohol-drinks"], "/d", "/d")},
                )
            )
    quit_year = a.get(f"{link}-quit")
    if quit_year:
        parts.append(
            _component(_ours(f"{link}-quit-year", "Năm bỏ"), {"valueDateTime": str(quit_year)})
        )
    if parts:
        value["component"] = parts
    yield _observation(ctx, link, code, value, "social-history")


def _activity(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if a.get("activity-days") is not None:
        code = _concept(
            LOINC,
            "89555-7",
            "How many days per week did you engage in moderate to strenuous physical activity "
            "in the last 30 days",
            ctx.translate(N_("Days a week of physical activity")),
        )
        value = {"valueQuantity": _quantity(a["activity-days"], "days per week", "d/wk")}
        yield _observation(ctx, "activity-days", code, value, "social-history")
    if a.get("activity-minutes") is not None:
        code = _concept(
            LOINC,
            "68516-4",
            "On those days that you engage in moderate to strenuous exercise, how many minutes, "
            "on average, do you exercise",
            ctx.translate(N_("Minutes of exercise a day")),
        )
        value = {"valueQuantity": _quantity(a["activity-minutes"], "minutes per day", "min/d")}
        yield _observation(ctx, "activity-minutes", code, value, "social-history")


def _exposure(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("exposure-any"):
        return
    section = BY_LINK["exposure"]
    item = section.item("exposure-kind")
    kinds = [o for code in a.get("exposure-kind", []) if item and (o := item.option(code))]
    value: dict[str, Any] = {
        "valueCodeableConcept": {
            "coding": [ctx.coding(o) for o in kinds],
            "text": a.get("exposure-detail") or ", ".join(ctx.translate(o.display) for o in kinds),
        }
    }
    if a.get("exposure-years") is not None:
        value["component"] = [
            _component(
                _ours("exposure-years", "Số năm tiếp xúc"),
                {"valueQuantity": _quantity(a["exposure-years"], "years", "a")},
            )
        ]
    code = _ours("occupational-exposure", "Yếu tố nguy cơ nghề nghiệp")
    yield _observation(ctx, "exposure", code, value, "social-history")


def _pregnancy(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("pregnancy-ever"):
        return
    counts = (
        ("pregnancies", "11996-6", "[#] Pregnancies", N_("Number of pregnancies")),
        ("births", "11640-0", "[#] Births total", N_("Number of births")),
        ("losses", "11612-9", "[#] Abortions", N_("Number of miscarriages or abortions")),
    )
    for link, loinc, display, label in counts:
        if a.get(link) is not None:
            yield _observation(
                ctx,
                link,
                _concept(LOINC, loinc, display, ctx.translate(label)),
                {"valueInteger": a[link]},
                "social-history",
            )
    if a.get("pregnancy-now"):
        snomed, display = PREGNANT[a["pregnancy-now"]]
        value = {"valueCodeableConcept": _concept(SNOMED, snomed, display)}
        yield _observation(
            ctx,
            "pregnancy-now",
            _concept(LOINC, "82810-3", "Pregnancy status", ctx.translate(N_("Pregnant now"))),
            value,
            "social-history",
        )


def _condition(
    ctx: Context, key: str, code: dict[str, Any], category: dict[str, Any], note: str | None = None
) -> Extracted:
    content: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": _concept(CLINICAL, "active", "Active"),
        "verificationStatus": _concept(CONDITION_VERIFICATION, "unconfirmed", "Unconfirmed"),
        "category": [category],
        "code": code,
        "subject": ctx.subject,
        "recordedDate": format_instant(ctx.now),
        "recorder": ctx.asserter,
        "asserter": ctx.asserter,
    }
    if note:
        content["note"] = [{"text": note}]
    return Extracted("Condition", key, content)


def _conditions(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("conditions-any"):
        return
    problem = {"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item"}]}
    for code in a.get("condition", []):
        option = _option(CHRONIC, code)
        if option is not None:
            display = ctx.translate(option.display)
            yield _condition(
                ctx, f"condition:{code}", {"coding": [ctx.coding(option)], "text": display}, problem
            )
    for line in str(a.get("condition-other") or "").splitlines():
        text = " ".join(line.split())
        if text:
            yield _condition(ctx, f"condition:{fold(text)}", {"text": text}, problem)


def _disabilities(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("disabilities-any"):
        return
    item = BY_LINK["disabilities"].item("disability")
    category = _ours("disability", "Khuyết tật")
    for code in a.get("disability", []):
        option = item.option(code) if item else None
        if option is not None:
            concept = {"coding": [ctx.coding(option)], "text": ctx.translate(option.display)}
            yield _condition(
                ctx, f"disability:{code}", concept, category, a.get("disability-detail")
            )


def _allergies(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("allergies-any"):
        return
    for entry in a.get("allergy", []):
        substance = entry["allergy-substance"]
        content: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": _concept(ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": _concept(ALLERGY_VERIFICATION, "unconfirmed", "Unconfirmed"),
            "category": [entry["allergy-kind"]],
            "code": {"text": substance},
            "patient": ctx.subject,
            "recordedDate": format_instant(ctx.now),
            "recorder": ctx.asserter,
            "asserter": ctx.asserter,
        }
        if entry.get("allergy-reaction"):
            content["reaction"] = [{"manifestation": [{"text": entry["allergy-reaction"]}]}]
        yield Extracted("AllergyIntolerance", f"allergy:{fold(substance)}", content)


def _surgeries(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("surgeries-any"):
        return
    for entry in a.get("surgery", []):
        what, year = entry["surgery-what"], entry.get("surgery-year")
        content: dict[str, Any] = {
            "resourceType": "Procedure",
            "status": "completed",
            "category": _concept(SNOMED, "387713003", "Surgical procedure"),
            "code": {"text": what},
            "subject": ctx.subject,
            "recorder": ctx.asserter,
            "asserter": ctx.asserter,
        }
        if year:
            content["performedDateTime"] = str(year)
        yield Extracted("Procedure", f"surgery:{fold(what)}:{year or ''}", content)


def _family(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("family-any"):
        return
    for entry in a.get("relative", []):
        who = _option(RELATIVES, entry["relative-who"])
        disease = _option(FAMILY_DISEASES, entry["relative-disease"])
        if who is None or disease is None:
            continue
        if disease.code == "other":
            text = entry.get("relative-other") or ""
            code: dict[str, Any] = {"text": text}
            key = fold(text)
        else:
            code = {"coding": [ctx.coding(disease)], "text": ctx.translate(disease.display)}
            key = disease.code
        content = {
            "resourceType": "FamilyMemberHistory",
            "status": "partial",
            "patient": ctx.subject,
            "date": format_instant(ctx.now),
            "relationship": {"coding": [ctx.coding(who)], "text": ctx.translate(who.display)},
            "condition": [{"code": code}],
        }
        yield Extracted("FamilyMemberHistory", f"family:{who.code}:{key}", content)


def _vaccines(ctx: Context, a: dict[str, Any]) -> Iterator[Extracted]:
    if not a.get("vaccines-any"):
        return
    for entry in a.get("vaccine", []):
        option = _option(VACCINES, entry["vaccine-code"])
        if option is None:
            continue
        if option.code == "other":
            text = entry.get("vaccine-other") or ""
            vaccine: dict[str, Any] = {"text": text}
            key = fold(text)
        else:
            vaccine = {"coding": [ctx.coding(option)], "text": ctx.translate(option.display)}
            key = option.code
        content = {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": vaccine,
            "patient": ctx.subject,
            "occurrenceDateTime": entry["vaccine-date"],
            "recorded": format_instant(ctx.now),
            "primarySource": False,
            "reportOrigin": _concept(
                IMMUNIZATION_ORIGIN, "recall", "Parent/Guardian/Patient Recall"
            ),
        }
        yield Extracted("Immunization", f"vaccine:{key}:{entry['vaccine-date']}", content)


def extract(ctx: Context, answers: dict[str, dict[str, Any]]) -> list[Extracted]:
    """Every resource the declaration's ``answers`` (by section) say, tagged unconfirmed."""
    found: list[Extracted] = []
    found += _about(ctx, answers.get("about", {}))
    found += _blood(ctx, answers.get("blood", {}))
    found += _allergies(ctx, answers.get("allergies", {}))
    found += _conditions(ctx, answers.get("conditions", {}))
    found += _surgeries(ctx, answers.get("surgeries", {}))
    found += _disabilities(ctx, answers.get("disabilities", {}))
    found += _family(ctx, answers.get("family", {}))
    found += _vaccines(ctx, answers.get("vaccines", {}))
    found += _habit(ctx, answers.get("tobacco", {}), "tobacco")
    found += _habit(ctx, answers.get("alcohol", {}), "alcohol")
    found += _activity(ctx, answers.get("activity", {}))
    found += _exposure(ctx, answers.get("exposure", {}))
    found += _birth(ctx, answers.get("birth", {}))
    found += _pregnancy(ctx, answers.get("pregnancy", {}))
    unique: dict[tuple[str, str], Extracted] = {}
    for item in found:
        content = mark(item.content, "unconfirmed")
        content["identifier"] = [{"system": ITEM_SYSTEM, "value": item.identifier(ctx.qr_id)}]
        unique.setdefault(
            (item.resource_type, item.key), Extracted(item.resource_type, item.key, content)
        )
    return list(unique.values())


__all__ = ["ITEM_SYSTEM", "TYPES", "Context", "Extracted", "extract"]
