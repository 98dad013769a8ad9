"""Cancelling a prescription, and cancel-and-replace: an issued prescription is never edited.

A change of mind after issue is a cancellation (every line ``cancelled``, with the reason in
``statusReason``) and, for a correction, a new prescription whose lines name the cancelled
ones in ``priorPrescription`` — written in the same transaction, so there is never a moment
with both or neither. Only the issuing facility cancels, and only a prescription nothing was
dispensed against: once a pharmacy has handed medicines over, the record of what the patient
received must stay as it is. A cancelled prescription can no longer be dispensed (``$dispense``
refuses it). Its signed content stays verifiable: the signature names the issued version, and
the cancellation only moves the state on (``access/signed.py``).
See: https://hl7.org/fhir/R4/medicationrequest.html (status, priorPrescription)
"""

from __future__ import annotations

from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.signed import STATE
from sokhoe.errors import Conflict, Forbidden, InvalidRequest, NotFound
from sokhoe.interop.claims.sources import find_facility
from sokhoe.prescribing.code import CODE_SYSTEM, normalise
from sokhoe.prescribing.context import FACILITY_EXTENSION
from sokhoe.store.ports import StoreSession

CANCEL_ROLES: Final = frozenset({"doctor", "system"})
OWNS: Final = frozenset({"prescription", STATE})


def lines_of(repo: GuardedRepository, tx: StoreSession, code: str) -> list[dict[str, Any]]:
    """The lines of prescription ``code`` as stored now, in the caller's transaction."""
    query = repo.parse_query(
        "MedicationRequest", [("group-identifier", f"{CODE_SYSTEM}|{normalise(code)}")]
    )
    return [m.content for m in tx.search(query).matches if m.content is not None]


def _issuer(line: dict[str, Any]) -> str | None:
    for ext in line.get("extension", []):
        if ext.get("url") == FACILITY_EXTENSION:
            ref = str((ext.get("valueReference") or {}).get("reference", ""))
            return ref.split("/", 1)[1] if ref.startswith("Organization/") else None
    return None


def cancel_lines(
    repo: GuardedRepository,
    tx: StoreSession,
    code: str,
    reason: str,
    *,
    facility_org: str | None,
    patient_id: str | None = None,
) -> list[dict[str, Any]]:
    """Cancel every line of ``code`` inside the caller's operation transaction ``tx``; the
    cancelled lines. Refused unless the caller's facility issued it, nothing was dispensed
    against it and it is still active."""
    if not reason.strip():
        raise InvalidRequest("Say why the prescription is cancelled", "reason")
    lines = lines_of(repo, tx, code)
    if not lines or (
        facility_org is not None and any(_issuer(line) != facility_org for line in lines)
    ):  # another facility's prescription is answered as one that does not exist
        raise NotFound(f"No prescription {normalise(code)} issued by your facility")
    if patient_id is not None and any(
        (line.get("subject") or {}).get("reference") != f"Patient/{patient_id}" for line in lines
    ):
        raise InvalidRequest("The prescription replaced is another patient's", "replaces")
    if any(line.get("status") != "active" for line in lines):
        raise Conflict(f"Prescription {normalise(code)} is no longer active")
    for line in lines:
        query = repo.parse_query(
            "MedicationDispense", [("prescription", f"MedicationRequest/{line['id']}")]
        )
        if tx.search(query).matches:
            raise Conflict(
                f"Prescription {normalise(code)} was already dispensed: it cannot be cancelled"
            )
    cancelled = []
    for line in lines:
        changed = {**line, "status": "cancelled", "statusReason": {"text": reason.strip()}}
        changed.pop("meta", None)
        stored = repo.update(changed, "MedicationRequest", str(line["id"]), tx=tx)
        cancelled.append(stored.resource.content or {})
    return cancelled


def cancel(repo: GuardedRepository, code: str, reason: str) -> list[dict[str, Any]]:
    """``MedicationRequest/$cancel-prescription``: cancel ``code`` with ``reason``."""
    facility = repo.principal.facility
    if facility is None:
        raise Forbidden("Prescriptions are cancelled by the facility that issued them")
    org = find_facility(repo, facility).id
    with repo.snapshot() as peek:
        subjects = {
            str((line.get("subject") or {}).get("reference", ""))
            for line in lines_of(repo, peek, code)
            if _issuer(line) == org
        }
    with repo.operation(
        "cancel-prescription",
        resource_type="MedicationRequest",
        interactions=["update"],
        roles=CANCEL_ROLES,
        owns=OWNS,
        concerns=[s.split("/", 1)[1] for s in sorted(subjects) if s.startswith("Patient/")],
    ) as tx:
        return cancel_lines(repo, tx, code, reason, facility_org=org)


__all__ = ["CANCEL_ROLES", "OWNS", "cancel", "cancel_lines", "lines_of"]
