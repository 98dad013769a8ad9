"""How much of a prescription was handed over, kept on its lines so it is searchable.

Each line (``MedicationRequest``) carries one complex extension, :data:`DISPENSING`, written by
``$dispense`` in the transaction that writes the ``MedicationDispense``s:

- ``state``: the prescription's state, the same on every line — ``issued`` (nothing dispensed
  yet), ``partially-dispensed``, ``completed`` (searchable: ``dispensing-state``);
- ``dispensed``: this line's quantity handed over so far (``valueQuantity``);
- ``dispensings``: how many dispenses the prescription has had. It grows with each one, so each
  dispense changes *every* line and writes a new version of each: two dispenses of the same
  prescription at once therefore both replace the same versions, and the store lets only one
  (``store/sql``: an update names the version it replaces).

A line is ``completed`` (FHIR status) once its whole quantity was handed over; the state is then
``completed`` when every line is. ``cancelled`` (a line's status says so) and ``expired`` (past
``dispenseRequest.validityPeriod.end``, not completed) are read, not stored.
See: https://hl7.org/fhir/R4/medicationrequest.html#dispense
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from sokhoe.fhir.resources import parse_instant

DISPENSING: Final = "https://fhir.sokhoe.vn/StructureDefinition/dispensing"
"""Also in ``access/signed.py`` (``STATE_EXTENSIONS``): the part of a signed line its state
operations may change."""
State = Literal["issued", "partially-dispensed", "completed", "cancelled", "expired"]
STATE_NAMES: Final[dict[str, str]] = {
    "issued": "Chưa bán",
    "partially-dispensed": "Đã bán một phần",
    "completed": "Đã bán đủ",
    "cancelled": "Đã hủy",
    "expired": "Quá hạn mua thuốc",
}
CLOSED: Final = frozenset({"cancelled", "stopped", "entered-in-error"})
"""Line statuses that end a prescription: nothing more may be dispensed against it."""


def number(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def plain(value: Decimal) -> int | float:
    """A quantity as JSON writes it: 15, not 15.0."""
    return int(value) if value == value.to_integral_value() else float(value)


def _part(request: dict[str, Any], name: str) -> dict[str, Any] | None:
    for ext in request.get("extension", []):
        if ext.get("url") == DISPENSING:
            for part in ext.get("extension", []):
                if part.get("url") == name:
                    return dict(part)
    return None


@dataclass(frozen=True)
class Line:
    """One line's numbers, as its stored version says."""

    id: str
    version: int
    request: dict[str, Any]
    prescribed: Decimal
    dispensed: Decimal
    unit: str

    @property
    def remaining(self) -> Decimal:
        return max(self.prescribed - self.dispensed, Decimal(0))

    @property
    def reference(self) -> str:
        return f"MedicationRequest/{self.id}"


def line_of(request: dict[str, Any], version: int) -> Line:
    quantity = (request.get("dispenseRequest") or {}).get("quantity") or {}
    dispensed = (_part(request, "dispensed") or {}).get("valueQuantity") or {}
    return Line(
        str(request["id"]),
        version,
        request,
        number(quantity.get("value")),
        number(dispensed.get("value")),
        str(quantity.get("unit") or quantity.get("code") or ""),
    )


def dispensings(lines: list[Line]) -> int:
    counts = [int((_part(x.request, "dispensings") or {}).get("valueInteger", 0)) for x in lines]
    return max(counts, default=0)


def validity_end(lines: list[Line]) -> datetime | None:
    ends = [
        ((x.request.get("dispenseRequest") or {}).get("validityPeriod") or {}).get("end")
        for x in lines
    ]
    found = [parse_instant(str(e)) for e in ends if e]
    return min(found) if found else None


def state_of(lines: list[Line], now: datetime) -> State:
    if any(x.request.get("status") in CLOSED for x in lines):
        return "cancelled"
    if lines and all(x.remaining == 0 for x in lines):
        return "completed"
    end = validity_end(lines)
    if end is not None and now > end:
        return "expired"
    return "partially-dispensed" if any(x.dispensed > 0 for x in lines) else "issued"


def recorded(line: Line, dispensed: Decimal, state: State, count: int) -> dict[str, Any]:
    """The line's next version: its dispensed quantity, the prescription's state and count."""
    request = dict(line.request)
    quantity: dict[str, Any] = {"value": plain(dispensed)}
    if line.unit:
        quantity["unit"] = line.unit
    request["extension"] = [
        *(e for e in request.get("extension", []) if e.get("url") != DISPENSING),
        {
            "url": DISPENSING,
            "extension": [
                {"url": "state", "valueCode": state},
                {"url": "dispensed", "valueQuantity": quantity},
                {"url": "dispensings", "valueInteger": count},
            ],
        },
    ]
    if dispensed >= line.prescribed:
        request["status"] = "completed"
    return request


__all__ = [
    "CLOSED",
    "DISPENSING",
    "STATE_NAMES",
    "Line",
    "State",
    "dispensings",
    "line_of",
    "number",
    "plain",
    "recorded",
    "state_of",
    "validity_end",
]
