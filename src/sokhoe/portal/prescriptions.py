"""The prescriptions of the health book: each with its code (*mã đơn thuốc*, the pharmacy scans
it from the screen), its lines and how much was bought (``prescribing/dispensing_state.py``).

A prescription is the lines (``MedicationRequest``) that share one code; its facility is the
code's first five characters (the prescribing facility's insurance code). Every line is read,
cancelled ones too: a cancelled line cancels its prescription.
See: https://hl7.org/fhir/R4/medicationrequest.html#dispense
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sokhoe.clinic.records import text_of
from sokhoe.portal.record import Record
from sokhoe.portal.sources import prescription_code
from sokhoe.prescribing.dispensing_state import Line, State, line_of, state_of
from sokhoe.store.ports import StoredResource


@dataclass(frozen=True)
class PrescriptionLine:
    drug: str
    quantity: str
    instructions: str
    days: Any


@dataclass(frozen=True)
class Prescription:
    code: str
    issued: str | None
    facility: str | None
    lines: tuple[PrescriptionLine, ...]
    state: State
    valid_until: str | None

    @property
    def dispensable(self) -> bool:
        return self.state in ("issued", "partially-dispensed")


def prescriptions(record: Record, now: datetime) -> list[Prescription]:
    """The prescriptions (lines grouped by their code), newest first, each in its state (a
    cancelled line is read too: it cancels its prescription)."""
    groups: dict[str, list[StoredResource]] = {}
    for stored in record.of("MedicationRequest"):
        code = prescription_code(stored.content or {})
        if code:
            groups.setdefault(code, []).append(stored)
    found = []
    for code, stored_lines in groups.items():
        lines: list[Line] = [line_of(s.content or {}, s.version_id) for s in stored_lines]
        first = stored_lines[0].content or {}
        validity = (first.get("dispenseRequest") or {}).get("validityPeriod") or {}
        found.append(
            Prescription(
                code=code,
                issued=first.get("authoredOn"),
                facility=record.facilities.name_of_code(code[:5])
                or record.facilities.source(stored_lines[0]).facility,
                lines=tuple(_line(x.request) for x in lines),
                state=state_of(lines, now),
                valid_until=validity.get("end"),
            )
        )
    return sorted(found, key=lambda p: p.issued or "", reverse=True)


def _line(request: dict[str, Any]) -> PrescriptionLine:
    dispense = request.get("dispenseRequest") or {}
    quantity = dispense.get("quantity") or {}
    amount = f"{quantity.get('value', '')} {quantity.get('unit', '')}".strip()
    return PrescriptionLine(
        text_of(request.get("medicationCodeableConcept")),
        amount,
        str(((request.get("dosageInstruction") or [{}])[0]).get("text", "")),
        (dispense.get("expectedSupplyDuration") or {}).get("value"),
    )


__all__ = ["Prescription", "PrescriptionLine", "prescriptions"]
