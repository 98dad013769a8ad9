"""The station's check of a record a citizen made for themselves (*xác minh danh tính*).

A resident whose details matched no record made one on their phone (``portal/claim.py``): it
is marked self-declared and ``unconfirmed``, and the personal ID they typed is kept as a
*declared* number (``portal/patient.DECLARED_CCCD``), which nothing that finds people by their
CCCD looks at. When the person comes to the desk with the card, a member of staff who may see
the record confirms it: the declared number becomes the CCCD (so check-ins by the card's QR,
HL7 registrations and claims find this record from now on) and the record is ``confirmed``.

Refused, changing nothing: a record that is not an unconfirmed self-declared one, a number
another living record already holds as its CCCD (two records of one person: the patient index
joins them, through its review queue, not this check), a record changed since the page showed
it, and anyone the door does not let see the record or whose role does not check cards.
See: https://hl7.org/fhir/R4/patient.html#patient-identifier
"""

from __future__ import annotations

from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.guardians import CONFIRMING_ROLES
from sokhoe.errors import Conflict, InvalidRequest
from sokhoe.fhir.patient_links import people_holding
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import CCCD, validate_cccd
from sokhoe.portal.patient import DECLARED_CCCD
from sokhoe.portal.selfdeclared import mark, verification
from sokhoe.store.ports import StoredResource

OPERATION: Final = "confirm-identity"
IDENTITY_ROLES: Final = CONFIRMING_ROLES
"""Staff who check an ID card at a facility: the desk, the clinicians, the station's staff."""


def declared_number(patient: dict[str, Any]) -> str | None:
    """The personal ID a citizen typed into a record of their own making, if unchecked."""
    if verification(patient) != "unconfirmed":
        return None
    for identifier in patient.get("identifier") or []:
        if identifier.get("system") == DECLARED_CCCD and identifier.get("value"):
            return str(identifier["value"])
    return None


def confirmed(patient: dict[str, Any], number: str) -> dict[str, Any]:
    """The record once the card was seen: the declared number as its CCCD, ``confirmed``."""
    changed = mark(patient, "confirmed")
    changed["meta"] = {
        k: v for k, v in changed["meta"].items() if k not in ("versionId", "lastUpdated")
    }
    kept = [i for i in patient.get("identifier") or [] if i.get("system") != DECLARED_CCCD]
    changed["identifier"] = [{"use": "official", "system": CCCD, "value": number}, *kept]
    return changed


def confirm_identity(
    repo: GuardedRepository, patient_id: str, *, version: int | None = None
) -> StoredResource:
    """Confirm the self-declared record ``patient_id`` after seeing the person's ID card;
    ``version`` the version the page showed. One audited operation."""
    current = repo.read("Patient", patient_id)  # refused when the caller may not see it
    number = declared_number(current.content or {})
    if number is None:
        raise InvalidRequest(
            Message(
                "Patient/%(id)s is not a record a person made and nobody checked yet", id=patient_id
            )
        )
    number = validate_cccd(number)
    if version is not None and version != current.version_id:
        raise Conflict(Message("The record changed after you looked at it; look again"))
    with repo.operation(
        OPERATION, interactions=["read", "update"], patients=[patient_id], roles=IDENTITY_ROLES
    ) as tx:
        others = [p for p in people_holding(repo, tx, CCCD, number) if p != patient_id]
        if others:
            raise Conflict(
                Message(
                    "Another record already holds personal ID %(cccd)s: the two records are "
                    "one person's to join through the patient index's review, not to confirm "
                    "here",
                    cccd=number,
                )
            )
        written = repo.update(
            confirmed(current.content or {}, number),
            "Patient",
            patient_id,
            if_match=f'W/"{current.version_id}"',
            tx=tx,
        )
        tx.audit(
            "operation",
            "success",
            [patient_id],
            entities=[f"Patient/{patient_id}"],
            reason="$confirm-identity: the person's ID card was seen",
        )
    return written.resource


__all__ = ["IDENTITY_ROLES", "OPERATION", "confirm_identity", "confirmed", "declared_number"]
