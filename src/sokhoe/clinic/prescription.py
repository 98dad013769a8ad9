"""The prescription inside the visit page: the lines the doctor types, issued by ``$prescribe``.

The page keeps the lines in the visit's draft as they are typed (medicine, dose per intake,
intakes per day, days, how to take it); "issue" turns them into ``MedicationRequest`` lines
and runs the same service as ``MedicationRequest/$prescribe``, so a page can issue nothing an
API client could not. A refusal comes back as findings per line: blocking ones to correct,
warnings to answer with a reason. Issued prescriptions are read back from the record, grouped
by their code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.drafts import Visit
from sokhoe.clinic.records import find, text_of
from sokhoe.errors import Forbidden, InvalidRequest
from sokhoe.messages import Message, Text, message_of
from sokhoe.prescribing.catalogue import REFERENCE_SOURCE, system_of
from sokhoe.prescribing.catalogue_fhir import from_medication, medication_id
from sokhoe.prescribing.checks import Finding
from sokhoe.prescribing.code import CODE_SYSTEM
from sokhoe.prescribing.context import catalogue_index
from sokhoe.prescribing.prescribe import Issued, PrescriptionRefused, prescribe


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; the page translates it where it is shown."""
    return message


LINES: Final = 5
"""Lines the visit page offers (a commune station's prescription rarely has more)."""
FIELDS: Final = ("drug", "dose", "times", "days", "how", "override")
CLOSED: Final = N_(
    "Open the patient's history first (the code sent to their phone, their share QR, or "
    "break-the-glass on the chart): a prescription is checked against their allergies and the "
    "medicines they take from every facility."
)
EMPTY: Final = N_("Add at least one medicine")
NOT_IN_CATALOGUE: Final = N_("Line %(n)s: “%(code)s” is not in the drug catalogue")
NOT_A_NUMBER: Final = {
    "dose": N_("Line %(n)s: the dose must be a number"),
    "times": N_("Line %(n)s: the times a day must be a number"),
    "days": N_("Line %(n)s: the days must be a number"),
    "weight": N_("The weight must be a number of kg"),
}
NOT_POSITIVE: Final = {
    "dose": N_("Line %(n)s: the dose must be more than 0"),
    "times": N_("Line %(n)s: the times a day must be more than 0"),
    "days": N_("Line %(n)s: the days must be more than 0"),
    "weight": N_("The weight must be more than 0 kg"),
}


class LineProblem(InvalidRequest):
    """A line the page cannot read (a missing or impossible number), as a translatable message."""

    def __init__(self, message: Message, where: str) -> None:
        super().__init__(message, where)
        self.message = message


@dataclass
class Refusal:
    """Why the page's prescription was not issued, per line (index) and overall."""

    blocking: dict[int, list[Finding]] = field(default_factory=dict)
    warnings: dict[int, list[Finding]] = field(default_factory=dict)
    general: list[Text] = field(default_factory=list)


@dataclass(frozen=True)
class IssuedLine:
    name: str
    quantity: str
    instructions: str


@dataclass(frozen=True)
class Prescription:
    code: str
    kind: str
    issued: str
    lines: list[IssuedLine]


def lines_from(form_lines: list[dict[str, str]]) -> list[dict[str, str]]:
    """The draft's lines that name a medicine (empty rows are ignored)."""
    return [line for line in form_lines if line.get("drug", "").strip()]


def _number(text: str, what: str, n: int) -> Decimal:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise LineProblem(Message(NOT_A_NUMBER[what], n=str(n + 1)), f"rx{n}") from None
    if value <= 0:
        raise LineProblem(Message(NOT_POSITIVE[what], n=str(n + 1)), f"rx{n}")
    return value


def medication_for(repo: GuardedRepository, code: str, facility: str, n: int) -> dict[str, Any]:
    """The catalogue Medication a typed code names: the facility's own list first, then the
    platform's reference list."""
    current = catalogue_index(repo).by_id  # the catalogue read once, not a door read a try
    for source in (facility, REFERENCE_SOURCE):
        found = current.get(medication_id(source, code.strip()))
        if found is not None:
            return found.medication
    raise LineProblem(Message(NOT_IN_CATALOGUE, n=str(n + 1), code=code), f"rx{n}")


def request_of(
    repo: GuardedRepository, line: dict[str, str], n: int, facility: str
) -> dict[str, Any]:
    """One page line as the MedicationRequest ``$prescribe`` reads."""
    medication = medication_for(repo, line["drug"], facility, n)
    entry = from_medication(medication)
    dose = _number(line.get("dose", ""), "dose", n)
    times = _number(line.get("times", ""), "times", n)
    days = _number(line.get("days", ""), "days", n)
    unit = entry.unit.lower() or "đơn vị"
    text = f"Ngày {times} lần, mỗi lần {dose} {unit}"
    if line.get("how", "").strip():
        text = f"{text}, {line['how'].strip()}"
    source = next(
        (
            s
            for s in (facility, REFERENCE_SOURCE)
            if medication["id"] == medication_id(s, entry.code)
        ),
        REFERENCE_SOURCE,
    )
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/unknown"},
        "medicationCodeableConcept": {
            "coding": [{"system": system_of(source), "code": entry.code}]
        },
        "dosageInstruction": [
            {
                "text": text,
                "timing": {"repeat": {"frequency": int(times), "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": float(dose), "unit": unit}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": int(days), "unit": "ngày"}},
    }


def issue(
    repo: GuardedRepository,
    visit: Visit,
    form_lines: list[dict[str, str]],
    now: datetime,
    *,
    weight: str = "",
    long_term: bool = False,
) -> Issued | Refusal:
    """Issue the page's prescription, or say per line why not."""
    typed = lines_from(form_lines)
    if not typed:
        return Refusal(general=[Message(EMPTY)])
    try:
        requests = [
            (request_of(repo, line, n, visit.facility), line.get("override", ""))
            for n, line in enumerate(typed)
        ]
        weight_kg = _number(weight, "weight", 0) if weight.strip() else None
        return prescribe(
            repo,
            patient_id=visit.patient_id,
            encounter_id=visit.id,
            lines=requests,
            now=now,
            long_term=long_term,
            weight_kg=weight_kg,
        )
    except PrescriptionRefused as refused:
        out = Refusal()
        for f in refused.findings:
            for i in f.lines or (0,):
                out.blocking.setdefault(i, []).append(f)
        for f in refused.unanswered:
            for i in f.lines:
                out.warnings.setdefault(i, []).append(f)
        return out
    except LineProblem as problem:
        return Refusal(general=[problem.message])
    except InvalidRequest as exc:
        return Refusal(general=[message_of(exc)])
    except Forbidden:
        return Refusal(general=[Message(CLOSED)])


def of_visit(repo: GuardedRepository, visit: Visit) -> list[Prescription]:
    """The prescriptions issued in the visit, newest first, grouped by code."""
    found = find(
        repo,
        "MedicationRequest",
        [("encounter", f"Encounter/{visit.id}"), ("_sort", "-_lastUpdated")],
        50,
    )
    groups: dict[str, Prescription] = {}
    for request in found:
        ident = request.get("groupIdentifier") or {}
        if ident.get("system") != CODE_SYSTEM:
            continue
        code = str(ident["value"])
        quantity = (request.get("dispenseRequest") or {}).get("quantity") or {}
        line = IssuedLine(
            text_of(request.get("medicationCodeableConcept")),
            f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip(),
            str(((request.get("dosageInstruction") or [{}])[0]).get("text", "")),
        )
        if code not in groups:
            groups[code] = Prescription(code, code[-1], str(request.get("authoredOn", "")), [])
        groups[code].lines.append(line)
    return list(groups.values())


__all__ = ["FIELDS", "LINES", "Prescription", "Refusal", "issue", "lines_from", "of_visit"]
