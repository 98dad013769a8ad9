"""A pharmacist looks a prescription up by its code (scanned, typed, or read from the health book).

What comes back is what selling it needs and nothing more of the record: whose it is (the
patient's name and year of birth, as the paper prescription and the dispensing label show them),
each line with what was prescribed, what was already dispensed and what remains, the validity,
the type (C/N/H), the state, and the patient's allergies that concern one of the prescribed
medicines (the same rule the prescriber's check used, ``checks.Allergy.concerns``). The code
opens it through the door (``access/prescription_code.py``): read for this request only,
audited naming the patient.
See: https://hl7.org/fhir/R4/medicationrequest.html
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.prescription_code import (
    Holder,
    Presented,
    authorise,
    disclose,
    present,
    refuse,
)
from sokhoe.errors import Forbidden, NotFound
from sokhoe.fhir.resources import parse_instant
from sokhoe.messages import Message
from sokhoe.prescribing.code import Kind, facility_of, kind_of, normalise
from sokhoe.prescribing.context import allergy_of, catalogue_index, drug_of_request
from sokhoe.prescribing.dispensing_state import Line, State, line_of, state_of
from sokhoe.prescribing.pharmacy import Pharmacy, pharmacy_of
from sokhoe.store.ports import StoredResource

NO_SUCH_CODE = Message("No prescription has this code; check it with the patient")


@dataclass(frozen=True)
class Relevant:
    """An allergy of the patient that concerns some of the prescribed medicines."""

    allergy: dict[str, Any]
    lines: tuple[str, ...]
    """``MedicationRequest/<id>`` of the lines it concerns."""


@dataclass(frozen=True)
class Prescription:
    """One prescription as a pharmacy sees it."""

    code: str
    kind: Kind
    patient_id: str
    lines: tuple[Line, ...]
    state: State
    valid_from: datetime | None
    valid_until: datetime | None
    allergies: tuple[Relevant, ...]
    holder: Holder | None = None
    """The patient's name and year of birth (nothing else of the Patient)."""

    @property
    def dispensable(self) -> bool:
        return self.state in ("issued", "partially-dispensed")


def caller_pharmacy(repo: GuardedRepository, code: str, operation: str) -> Pharmacy:
    """The caller's pharmacy for ``code``, the refusal audited when it may not fill it."""
    try:
        return pharmacy_of(repo, facility_of(code))
    except Forbidden as refused:
        refuse(repo, operation, str(refused))
        raise


def relevant_allergies(
    repo: GuardedRepository, presented: Presented
) -> tuple[tuple[Relevant, ...], list[StoredResource]]:
    """The allergies that concern a prescribed medicine (decided one by one), and their rows."""
    index = catalogue_index(repo)
    drugs = {
        f"MedicationRequest/{r.id}": drug_of_request(index, r.content or {})
        for r in presented.lines
    }
    out: list[Relevant] = []
    rows: list[StoredResource] = []
    for stored in presented.allergies:
        allergy = allergy_of(index, stored.content or {}) if stored.content else None
        if allergy is None:
            continue
        concerned = tuple(ref for ref, drug in drugs.items() if allergy.concerns(drug))
        if concerned:
            out.append(Relevant(stored.content or {}, concerned))
            rows.append(stored)
    return tuple(out), rows


def look_up(repo: GuardedRepository, code: str, now: datetime) -> Prescription:
    """The prescription with this code, for a pharmacy that may fill it (audited either way)."""
    canonical = normalise(code)
    authorise(repo, "lookup", "MedicationRequest", "read")
    caller_pharmacy(repo, canonical, "lookup")
    with repo.snapshot() as tx:
        presented = present(repo, tx, canonical)
    if presented is None:
        refuse(repo, "lookup", "no prescription has the code presented")
        raise NotFound(NO_SUCH_CODE)
    relevant, rows = relevant_allergies(repo, presented)
    disclose(repo, presented, [*presented.lines, *rows], operation="lookup")
    lines = tuple(line_of(r.content or {}, r.version_id) for r in presented.lines)
    validity = (lines[0].request.get("dispenseRequest") or {}).get("validityPeriod") or {}
    return Prescription(
        canonical,
        kind_of(canonical),
        presented.patient_id,
        lines,
        state_of(list(lines), now),
        parse_instant(validity["start"]) if validity.get("start") else None,
        parse_instant(validity["end"]) if validity.get("end") else None,
        relevant,
        presented.holder,
    )


__all__ = [
    "NO_SUCH_CODE",
    "Prescription",
    "Relevant",
    "caller_pharmacy",
    "look_up",
    "relevant_allergies",
]
