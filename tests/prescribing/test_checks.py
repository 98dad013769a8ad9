"""Each prescribing rule: it fires when it must, and stays silent when it must not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sokhoe.errors import InvalidRequest
from sokhoe.prescribing.checks import (
    Allergy,
    Context,
    Current,
    Drug,
    Line,
    check,
    kind_of,
)
from sokhoe.prescribing.code import facility_of, national_form, new_code, normalise
from sokhoe.prescribing.code import kind_of as code_kind
from sokhoe.prescribing.rules import TT26_2025

AMOXICILLIN = Drug("Amoxicilin 500mg", "J01CA04", frozenset({"amoxicilin"}))
AMLODIPINE = Drug("Amlodipin 5mg", "C08CA01", frozenset({"amlodipin"}))
NIFEDIPINE = Drug("Nifedipin 20mg", "C08CA05", frozenset({"nifedipin"}))
ENALAPRIL = Drug("Enalapril 5mg", "C09AA02", frozenset({"enalapril-maleat"}))
SPIRONOLACTONE = Drug("Spironolacton 25mg", "C03DA01", frozenset({"spironolacton"}))
WARFARIN = Drug("Warfarin 5mg", "B01AA03", frozenset({"warfarin-natri"}))
IBUPROFEN = Drug("Ibuprofen 400mg", "M01AE01", frozenset({"ibuprofen"}))
PARACETAMOL = Drug("Paracetamol 500mg", "N02BE01", frozenset({"paracetamol"}))
MORPHINE = Drug("Morphin 10mg", "N02AA01", frozenset({"morphin-sulfat"}), "N")
DIAZEPAM = Drug("Diazepam 5mg", "N05BA01", frozenset({"diazepam"}), "H")


def ctx(**changes: object) -> Context:
    return Context(TT26_2025, **changes)  # type: ignore[arg-type]


def rules_of(lines: list[Line], context: Context) -> list[tuple[str, bool]]:
    return [(f.rule, f.blocking) for f in check(lines, context).items]


def test_thirty_days_pass_thirty_one_are_refused() -> None:
    assert rules_of([Line(0, PARACETAMOL, 30)], ctx()) == []
    found = check([Line(0, PARACETAMOL, 31)], ctx())
    assert [(f.rule, f.blocking) for f in found.items] == [("duration", True)]
    assert "30" in found.items[0].vi and found.items[0].v3_code == "DOSEDURH"
    assert rules_of([Line(0, PARACETAMOL, 0)], ctx()) == [("duration", True)]


def test_ninety_days_only_for_a_listed_chronic_disease() -> None:
    assert rules_of([Line(0, AMLODIPINE, 90)], ctx(diagnoses=("I10",))) == []
    assert rules_of([Line(0, AMLODIPINE, 90)], ctx(diagnoses=("E11.9",))) == []
    assert rules_of([Line(0, AMLODIPINE, 91)], ctx(diagnoses=("I10",))) == [("duration", True)]
    assert rules_of([Line(0, AMLODIPINE, 60)], ctx(diagnoses=("J06",))) == [("duration", True)]


def test_narcotic_limits_and_the_facility_with_beds() -> None:
    beds = ctx(inpatient_beds=True)
    assert rules_of([Line(0, MORPHINE, 7)], beds) == []
    assert rules_of([Line(0, MORPHINE, 8)], beds) == [("duration", True)]
    assert rules_of([Line(0, MORPHINE, 10)], ctx(inpatient_beds=True, diagnoses=("C34.1",))) == []
    assert rules_of([Line(0, MORPHINE, 7)], ctx()) == [("narcotic-facility", True)]


def test_psychotropic_acute_and_long_term() -> None:
    assert rules_of([Line(0, DIAZEPAM, 10)], ctx()) == []
    assert rules_of([Line(0, DIAZEPAM, 11)], ctx()) == [("duration", True)]
    assert rules_of([Line(0, DIAZEPAM, 30)], ctx(long_term=True)) == []
    assert rules_of([Line(0, DIAZEPAM, 31)], ctx(long_term=True)) == [("duration", True)]


def test_n_and_h_medicines_go_on_their_own_prescription() -> None:
    lines = [Line(0, PARACETAMOL, 5), Line(1, DIAZEPAM, 5)]
    found = check(lines, ctx())
    assert [(f.rule, f.blocking, f.lines) for f in found.items] == [("mixed-types", True, (1,))]
    assert kind_of([Line(0, DIAZEPAM, 5)]) == "H" and kind_of([Line(0, PARACETAMOL, 5)]) == "C"
    assert rules_of([Line(0, DIAZEPAM, 5), Line(1, DIAZEPAM, 3)], ctx()) == [
        ("duplicate-therapy", False)
    ]


def test_a_young_child_needs_a_weight_and_sees_the_dose_per_kg() -> None:
    line = Line(0, PARACETAMOL, 3, per_dose=Decimal(150), dose_unit="mg")
    assert rules_of([line], ctx(age_months=30)) == [("child-weight", True)]
    found = check([line], ctx(age_months=30, weight_kg=Decimal(12)))
    assert [(f.rule, f.blocking, f.severity) for f in found.items] == [
        ("dose-per-kg", False, "low")
    ]
    assert "12.50 mg/kg" in found.items[0].en and found.unanswered([line]) == []
    assert rules_of([line], ctx(age_months=72)) == []  # six years: no longer a young child


def test_an_allergy_from_any_facility_warns_until_overridden() -> None:
    penicillins = Allergy("AllergyIntolerance/a1", "Penicilin", atc=("J01C",))
    found = check([Line(0, AMOXICILLIN, 5)], ctx(allergies=(penicillins,)))
    assert [(f.rule, f.blocking, f.implicated) for f in found.items] == [
        ("allergy", False, ("AllergyIntolerance/a1",))
    ]
    assert len(found.unanswered([Line(0, AMOXICILLIN, 5)])) == 1
    assert found.unanswered([Line(0, AMOXICILLIN, 5, override="Đã thử test da âm tính")]) == []
    by_ingredient = Allergy(
        "AllergyIntolerance/a2", "Ibuprofen", ingredients=frozenset({"ibuprofen"})
    )
    assert rules_of([Line(0, IBUPROFEN, 3)], ctx(allergies=(by_ingredient,))) == [
        ("allergy", False)
    ]
    assert rules_of([Line(0, PARACETAMOL, 3)], ctx(allergies=(penicillins, by_ingredient))) == []


def test_duplicate_therapy_across_facilities_by_ingredient_or_atc_group() -> None:
    elsewhere = Current("MedicationRequest/m1", AMLODIPINE, "Bệnh viện Đa khoa Đống Đa")
    same = check([Line(0, AMLODIPINE, 30)], ctx(current=(elsewhere,), diagnoses=("I10",)))
    assert [(f.rule, f.implicated) for f in same.items] == [
        ("duplicate-therapy", ("MedicationRequest/m1",))
    ]
    assert "Bệnh viện Đa khoa Đống Đa" in same.items[0].vi and "cùng hoạt chất" in same.items[0].vi
    group = check([Line(0, NIFEDIPINE, 30)], ctx(current=(elsewhere,), diagnoses=("I10",)))
    assert [f.rule for f in group.items] == ["duplicate-therapy"]
    assert "cùng nhóm thuốc" in group.items[0].vi
    assert rules_of([Line(0, ENALAPRIL, 30)], ctx(current=(elsewhere,), diagnoses=("I10",))) == []


def test_interactions_within_the_prescription_and_with_current_medicines() -> None:
    found = check([Line(0, WARFARIN, 10), Line(1, IBUPROFEN, 5)], ctx())
    assert [(f.rule, f.severity, f.lines) for f in found.items] == [("interaction", "high", (0, 1))]
    taking = Current("MedicationRequest/m2", ENALAPRIL, "Trạm Y tế")
    found = check([Line(0, SPIRONOLACTONE, 10)], ctx(current=(taking,)))
    assert [(f.rule, f.implicated) for f in found.items] == [
        ("interaction", ("MedicationRequest/m2",))
    ]
    assert rules_of([Line(0, WARFARIN, 10), Line(1, PARACETAMOL, 5)], ctx()) == []


def test_the_prescription_code() -> None:
    picks = iter("abc1234")
    code = new_code("01001", "C", lambda alphabet: next(picks))
    assert code == "01001abc1234-C" and len(code) == 14
    assert normalise(" 01001ABC1234-c ") == code
    assert code_kind("01001abc1234-n") == "N" and facility_of(code) == "01001"
    assert national_form(code) == "01001abc1234-c"
    codes = {new_code("01001", "H") for _ in range(200)}
    assert len(codes) == 200 and all(c.endswith("-H") and len(c) == 14 for c in codes)
    for bad in ("01001abc123-C", "01001abc1234-X", "0100abc12345-C", "01001abc1234C"):
        with pytest.raises(InvalidRequest):
            normalise(bad)
    with pytest.raises(InvalidRequest):
        new_code("1001", "C")
