"""PV1, ORC, OBR and OBX → Encounter, ServiceRequest, DiagnosticReport and Observation.

Every resource made from a message carries a business identifier under a system of the
sending facility (visit number PV1-19, placer ORC-2/OBR-2 and filler ORC-3/OBR-3 order
numbers, filler number + OBX-1 for a result), so a re-sent or corrected message updates the
same resource instead of adding a second one. The resources are returned as *plans* (content
plus the identifier that finds an earlier version); ``processor`` writes them in one
transaction. References to the patient and encounter are filled in there.
See: https://build.fhir.org/ig/HL7/v2-to-fhir/ (the HL7 v2-to-FHIR mapping IG, followed where
it fits)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hl7  # type: ignore[import-untyped]  # python-hl7 ships no type information

from sokhoe.interop.hl7v2.concepts import LOINC, ConceptTranslator, local_system
from sokhoe.interop.hl7v2.er7 import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    Hl7Fault,
    Location,
    Segment,
    parse_ts,
)

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
UCUM = "http://unitsofmeasure.org"

PATIENT_CLASS = {
    "I": ("IMP", "inpatient encounter"),
    "B": ("IMP", "inpatient encounter"),  # obstetrics
    "O": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),  # recurring patient
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
}
"""PV1-2 (HL7 table 0004) → Encounter.class (v3 ActCode)."""
RESULT_STATUS = {
    "F": "final",
    "C": "corrected",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "I": "registered",
    "X": "cancelled",
    "D": "entered-in-error",
    "W": "entered-in-error",
    "A": "amended",
}
"""OBX-11 / OBR-25 (tables 0085, 0123) → Observation/DiagnosticReport status."""
ABNORMAL_FLAGS = frozenset({"L", "H", "LL", "HH", "N", "A", "AA", "<", ">", "S", "R", "I"})
ORDER_STATUS = {
    "NW": "active",
    "XO": "active",
    "CA": "revoked",
    "OC": "revoked",
    "DC": "revoked",
    "HD": "on-hold",
    "RL": "active",
    "SC": "active",
    "OK": "active",
}
"""ORC-1 order control (table 0119) → ServiceRequest.status."""


def visit_system(facility: str) -> str:
    """Visit numbers (PV1-19) of one facility."""
    return f"https://fhir.sokhoe.vn/sid/visit/{facility}"


def placer_system(facility: str) -> str:
    return f"https://fhir.sokhoe.vn/sid/placer-order/{facility}"


def filler_system(facility: str) -> str:
    return f"https://fhir.sokhoe.vn/sid/filler-order/{facility}"


def result_system(facility: str) -> str:
    """Results: ``<filler order number>-<OBX-1>``."""
    return f"https://fhir.sokhoe.vn/sid/result/{facility}"


@dataclass
class Plan:
    """One resource to create or update, found again by ``(system, value)``."""

    resource_type: str
    system: str
    value: str
    content: dict[str, Any]
    refers: list[tuple[str, str, str, str]] = field(default_factory=list)
    """References to add once the targets' ids are known: (list element, type, identifier
    system, identifier value), e.g. ``("result", "Observation", system, "XN1-1")``."""


def ordered(message: hl7.Message) -> Iterator[Segment]:
    """All segments in message order, each with its sequence number among its kind."""
    counts: dict[str, int] = {}
    for seg in message:
        sid = str(seg[0])
        counts[sid] = counts.get(sid, 0) + 1
        yield Segment(message, seg, counts[sid])


def identifier(system: str, value: str, kind: str | None = None) -> dict[str, Any]:
    ident: dict[str, Any] = {"system": system, "value": value}
    if kind:
        ident = {"type": {"coding": [{"system": ID_TYPE, "code": kind}]}, **ident}
    return ident


# -- PV1 → Encounter --------------------------------------------------------------------


def encounter_plan(
    pv1: Segment, facility: str, event: str, fallback_time: str | None
) -> Plan | None:
    """The visit PV1 describes; None when it names no visit (PV1-19 empty) on an event that
    does not need one."""
    visit = pv1.get(19).strip()
    if not visit:
        if event in ("A01", "A03"):
            raise Hl7Fault(
                "PV1-19 (visit number) is required to admit or discharge",
                error_code=REQUIRED_FIELD_MISSING,
                location=pv1.location(19),
            )
        return None
    klass = pv1.get(2).strip().upper()
    if klass and klass not in PATIENT_CLASS and klass != "N":
        raise Hl7Fault(
            f"PV1-2 (patient class) {klass!r} is not in HL7 table 0004 (I, O, E, P, R, B)",
            error_code=TABLE_VALUE_NOT_FOUND,
            location=pv1.location(2),
        )
    code, display = PATIENT_CLASS.get(klass or ("I" if event == "A01" else "O"), PATIENT_CLASS["O"])
    content: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [identifier(visit_system(facility), visit, "VN")],
        "status": {"A01": "in-progress", "A03": "finished", "A04": "arrived"}.get(event, "unknown"),
        "class": {"system": ACT_CODE, "code": code, "display": display},
    }
    period: dict[str, str] = {}
    admit = pv1.get(44).strip()
    discharge = pv1.get(45).strip()
    if admit:
        period["start"] = parse_ts(admit, pv1.location(44), what="admit date/time")[0]
    if discharge:
        period["end"] = parse_ts(discharge, pv1.location(45), what="discharge date/time")[0]
    if fallback_time and event in ("A01", "A04") and "start" not in period:
        period["start"] = fallback_time
    if fallback_time and event == "A03" and "end" not in period:
        period["end"] = fallback_time
    if period:
        content["period"] = period
    location = pv1.get(3, 1).strip()
    if location:
        content["location"] = [{"location": {"display": _join(pv1, 3, (1, 2, 3))}}]
    return Plan("Encounter", visit_system(facility), visit, content)


def merge_encounter(old: dict[str, Any], new: dict[str, Any], event: str) -> dict[str, Any]:
    """A later message about a visit completes it: fields it leaves out stay as they were,
    and an update (A08) does not change the visit's status."""
    merged = {k: v for k, v in old.items() if k != "meta"}
    for key, value in new.items():
        if key == "period":
            merged["period"] = {**old.get("period", {}), **value}
        elif key == "status" and event not in ("A01", "A03", "A04"):
            continue
        else:
            merged[key] = value
    return merged


# -- OBR/OBX → DiagnosticReport + Observations -----------------------------------------------


def result_plans(message: hl7.Message, facility: str, translator: ConceptTranslator) -> list[Plan]:
    """One DiagnosticReport per OBR and one Observation per OBX under it."""
    plans: list[Plan] = []
    report: Plan | None = None
    filler = ""
    for seg in ordered(message):
        if seg.id == "OBR":
            filler = seg.get(3).strip() or seg.get(2).strip()
            if not filler:
                raise Hl7Fault(
                    "OBR-3 (filler order number) or OBR-2 (placer order number) is required",
                    error_code=REQUIRED_FIELD_MISSING,
                    location=seg.location(3),
                )
            report = _report(seg, facility, filler, translator)
            plans.append(report)
        elif seg.id == "OBX":
            if report is None:
                raise Hl7Fault(
                    "OBX before any OBR: results must follow the order they answer",
                    error_code=SEGMENT_SEQUENCE_ERROR,
                    location=seg.location(),
                )
            obs = _observation(seg, facility, filler, translator, report.content)
            report.refers.append(("result", "Observation", obs.system, obs.value))
            plans.append(obs)
        elif seg.id == "NTE" and plans and plans[-1].resource_type == "Observation":
            text = seg.get(3).strip()
            if text:
                plans[-1].content.setdefault("note", []).append({"text": text})
    if report is None:
        raise Hl7Fault(
            "An ORU^R01 needs at least one OBR segment",
            error_code=SEGMENT_SEQUENCE_ERROR,
            location=Location("OBR"),
        )
    return plans


def _code(
    seg: Segment, field_no: int, facility: str, translator: ConceptTranslator, what: str
) -> dict[str, Any]:
    code = seg.get(field_no, 1).strip()
    text = seg.get(field_no, 2).strip()
    system = seg.get(field_no, 3).strip().upper()
    if not code:
        raise Hl7Fault(
            f"{seg.id}-{field_no} ({what}) is required",
            error_code=REQUIRED_FIELD_MISSING,
            location=seg.location(field_no),
        )
    if system in ("LN", "LOINC"):
        coding = {"system": LOINC, "code": code, **({"display": text} if text else {})}
        return {"coding": [coding], **({"text": text} if text else {})}
    return translator.codeable(local_system(facility, "lab"), code, text)


def _status(seg: Segment, field_no: int, default: str) -> str:
    value = seg.get(field_no).strip().upper()
    if not value:
        return default
    if value not in RESULT_STATUS:
        raise Hl7Fault(
            f"{seg.id}-{field_no} (result status) {value!r} is not in HL7 table 0085/0123",
            error_code=TABLE_VALUE_NOT_FOUND,
            location=seg.location(field_no),
        )
    return RESULT_STATUS[value]


def _report(obr: Segment, facility: str, filler: str, translator: ConceptTranslator) -> Plan:
    content: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": [identifier(filler_system(facility), filler, "FILL")],
        "status": _status(obr, 25, "final"),
        "category": [{"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}],
        "code": _code(obr, 4, facility, translator, "universal service identifier"),
    }
    placer = obr.get(2).strip()
    when = obr.get(7).strip()
    if when:
        content["effectiveDateTime"] = parse_ts(when, obr.location(7), what="observation time")[0]
    issued = obr.get(22).strip()
    if issued:
        moment = parse_ts(issued, obr.location(22), what="results report time")[1]
        content["issued"] = moment.isoformat(timespec="seconds")
    plan = Plan("DiagnosticReport", filler_system(facility), filler, content)
    if placer:
        plan.refers.append(("basedOn", "ServiceRequest", placer_system(facility), placer))
    return plan


def _observation(
    obx: Segment,
    facility: str,
    filler: str,
    translator: ConceptTranslator,
    report: dict[str, Any],
) -> Plan:
    set_id = obx.get(1).strip() or str(obx.sequence)
    value_type = obx.get(2).strip().upper()
    key = f"{filler}-{set_id}"
    content: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [identifier(result_system(facility), key)],
        "status": _status(obx, 11, "final"),
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory"}]}],
        "code": _code(obx, 3, facility, translator, "observation identifier"),
    }
    raw = obx.get(5).strip()
    if raw:
        content.update(_value(obx, value_type, raw))
    elif content["status"] not in ("cancelled", "entered-in-error"):
        content["dataAbsentReason"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "unknown",
                }
            ]
        }
    low_high = obx.get(7).strip()
    if low_high:
        content["referenceRange"] = [_range(low_high, content.get("valueQuantity"))]
    flag = obx.get(8).strip().upper()
    if flag:
        if flag not in ABNORMAL_FLAGS:
            raise Hl7Fault(
                f"OBX-8 (abnormal flags) {flag!r} is not in HL7 table 0078",
                error_code=TABLE_VALUE_NOT_FOUND,
                location=obx.location(8),
            )
        content["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": flag}]}]
    when = obx.get(14).strip()
    if when:
        content["effectiveDateTime"] = parse_ts(when, obx.location(14), what="observation time")[0]
    elif "effectiveDateTime" in report:
        content["effectiveDateTime"] = report["effectiveDateTime"]
    if "issued" in report:
        content["issued"] = report["issued"]
    return Plan("Observation", result_system(facility), key, content)


def _value(obx: Segment, value_type: str, raw: str) -> dict[str, Any]:
    if value_type in ("NM", "SN"):
        number = raw
        comparator = ""
        if value_type == "SN":
            comparator = obx.get(5, 1).strip()
            number = obx.get(5, 2).strip()
        try:
            value = float(number)
        except ValueError:
            raise Hl7Fault(
                f"OBX-5 (observation value) {raw!r} is not a number, as OBX-2 {value_type} says",
                error_code=DATA_TYPE_ERROR,
                location=obx.location(5),
            ) from None
        quantity: dict[str, Any] = {
            "value": int(value) if value.is_integer() and "." not in number else value
        }
        if comparator in ("<", "<=", ">=", ">"):
            quantity["comparator"] = comparator
        unit_code, unit_text = obx.get(6, 1).strip(), obx.get(6, 2).strip()
        unit_system = obx.get(6, 3).strip().upper()
        if unit_code or unit_text:
            quantity["unit"] = unit_text or unit_code
            if unit_system == "UCUM" or (not unit_system and unit_code):
                quantity["system"] = UCUM
                quantity["code"] = unit_code or unit_text
        return {"valueQuantity": quantity}
    if value_type in ("CE", "CWE", "CNE"):
        coding = {"code": obx.get(5, 1).strip()}
        if obx.get(5, 2).strip():
            coding["display"] = obx.get(5, 2).strip()
        return {
            "valueCodeableConcept": {
                "coding": [coding],
                "text": coding.get("display", "") or coding["code"],
            }
        }
    if value_type in ("ST", "TX", "FT", ""):
        # repetitions of a text value are lines of one text
        lines = [obx.get(5, 1, rep) for rep in range(1, obx.repetitions(5) + 1)]
        return {"valueString": "\n".join(lines).strip()}
    if value_type in ("DT", "TS", "DTM"):
        return {"valueDateTime": parse_ts(raw, obx.location(5), what="observation value")[0]}
    raise Hl7Fault(
        f"OBX-2 (value type) {value_type!r} is not supported (NM, SN, ST, TX, FT, CE, CWE, DT, TS)",
        error_code=TABLE_VALUE_NOT_FOUND,
        location=obx.location(2),
    )


def _range(text: str, quantity: dict[str, Any] | None) -> dict[str, Any]:
    low, sep, high = text.partition("-")
    unit = {k: quantity[k] for k in ("unit", "system", "code") if quantity and k in quantity}
    try:
        if sep and low.strip() and high.strip():
            return {
                "low": {"value": float(low), **unit},
                "high": {"value": float(high), **unit},
                "text": text,
            }
    except ValueError:
        pass
    return {"text": text}


# -- ORC/OBR → ServiceRequest ---------------------------------------------------------------


def order_plans(message: hl7.Message, facility: str, translator: ConceptTranslator) -> list[Plan]:
    """One ServiceRequest per ORC (with the OBR that follows it naming the test)."""
    plans: list[Plan] = []
    current: tuple[Segment, Plan] | None = None
    for seg in ordered(message):
        if seg.id == "ORC":
            current = (seg, _order(seg, facility))
            plans.append(current[1])
        elif seg.id == "OBR":
            if current is None:
                raise Hl7Fault(
                    "OBR before any ORC: an order message starts each order with ORC",
                    error_code=SEGMENT_SEQUENCE_ERROR,
                    location=seg.location(),
                )
            orc, plan = current
            plan.content["code"] = _code(seg, 4, facility, translator, "universal service id")
            for field_no, kind, system in ((2, "PLAC", placer_system), (3, "FILL", filler_system)):
                number = seg.get(field_no).strip()
                known = {
                    i["value"]
                    for i in plan.content["identifier"]
                    if i["system"] == system(facility)
                }
                if number and not known:
                    plan.content["identifier"].append(identifier(system(facility), number, kind))
            if not plan.value:
                plan.value = seg.get(2).strip()
            if not plan.value:
                raise Hl7Fault(
                    "ORC-2 or OBR-2 (placer order number) is required",
                    error_code=REQUIRED_FIELD_MISSING,
                    location=orc.location(2),
                )
            clinical = seg.get(13).strip()
            if clinical:
                plan.content["note"] = [{"text": clinical}]
        elif seg.id == "NTE" and plans:
            text = seg.get(3).strip()
            if text:
                plans[-1].content.setdefault("note", []).append({"text": text})
    if not plans:
        raise Hl7Fault(
            "An order message needs an ORC segment",
            error_code=SEGMENT_SEQUENCE_ERROR,
            location=Location("ORC"),
        )
    for plan in plans:
        if "code" not in plan.content:
            raise Hl7Fault(
                "Each ORC must be followed by an OBR naming the test ordered (OBR-4)",
                error_code=SEGMENT_SEQUENCE_ERROR,
                location=Location("OBR"),
            )
    return plans


def _order(orc: Segment, facility: str) -> Plan:
    control = orc.get(1).strip().upper()
    if control not in ORDER_STATUS:
        raise Hl7Fault(
            f"ORC-1 (order control) {control!r} is not supported "
            f"({', '.join(sorted(ORDER_STATUS))})",
            error_code=TABLE_VALUE_NOT_FOUND if control else REQUIRED_FIELD_MISSING,
            location=orc.location(1),
        )
    status = ORDER_STATUS[control]
    if orc.get(5).strip().upper() == "CM":
        status = "completed"
    placer = orc.get(2).strip()
    filler = orc.get(3).strip()
    ids = []
    if placer:
        ids.append(identifier(placer_system(facility), placer, "PLAC"))
    if filler:
        ids.append(identifier(filler_system(facility), filler, "FILL"))
    content: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": ids,
        "status": status,
        "intent": "order",
    }
    when = orc.get(9).strip()
    if when:
        content["authoredOn"] = parse_ts(when, orc.location(9), what="transaction time")[0]
    doctor = _join(orc, 12, (2, 4, 3))  # XCN: family, middle, given
    if doctor:
        content["requester"] = {"display": doctor}
    return Plan("ServiceRequest", placer_system(facility), placer, content)


def _join(seg: Segment, field_no: int, components: tuple[int, ...]) -> str:
    return " ".join(p for c in components if (p := seg.get(field_no, c).strip()))
