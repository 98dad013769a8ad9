"""Who may see a patient's record: one decision, with its reason, from the care index.

Every stored row carries the Patient whose compartment it belongs to (``patient_id``), so one
question decides any single record: may this caller see this patient? The answer comes from
the same rows that confine every search in SQL (``access/care.py``, ``access/rights.py``), so
a read, a search and a count always agree:

- the platform itself (a system client or administrator without a facility) sees everything;
- a citizen sees their own record and those of the children a facility confirmed them
  guardian of;
- a facility's staff and systems see a patient while the facility has a current ``record``
  relationship: the patient registered there, was seen there within a year, showed them a
  share code or read them the one-time code sent to their phone. Checking someone in by a
  number alone (the CCCD QR text or a BHYT number, neither of them secret) lets the facility
  write the visit, and read back what it wrote, but not the history written elsewhere;
- a clinician may open any record in an emergency by giving a reason (break-the-glass): it
  is allowed, kept open to them for a shift, and audited as such;
- analysts and registry administrators see no identifiable record; insurance appraisers see
  claims data only;
- a commune health worker sees the residents of their commune.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sokhoe.access.care import RECORD, WINDOW, group_of, standing
from sokhoe.access.principal import Principal
from sokhoe.access.rights import (
    BREAK_GLASS_ROLES,
    NO_RECORD_ROLES,
    grantees,
    is_platform,
)
from sokhoe.messages import Message
from sokhoe.store.ports import FhirStore

RELATIONSHIP_WINDOW = WINDOW
"""How long after a visit the facility keeps access (``access/care.py``)."""

__all__ = [
    "BREAK_GLASS_ROLES",
    "NO_RECORD_ROLES",
    "RELATIONSHIP_WINDOW",
    "Decision",
    "Policy",
    "is_platform",
]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """In English: what the audit records and the API answers."""
    break_glass: bool = False
    message: Message | None = field(default=None, compare=False)
    """A refusal's reason as the pages translate it (``sokhoe.messages``)."""


def _refused(message: Message) -> Decision:
    return Decision(False, str(message), message=message)


class Policy:
    """Decides patient access against the record store (relationships are data).

    ``check_in_opens_record``: a deployment may let a check-in by number open the history
    written elsewhere (some public hospitals ask for it); strict by default.
    """

    def __init__(
        self,
        store: FhirStore,
        window: timedelta = RELATIONSHIP_WINDOW,
        *,
        check_in_opens_record: bool = False,
    ) -> None:
        self.store = store
        self.window = window
        self.check_in_opens_record = check_in_opens_record

    def patient(
        self,
        principal: Principal,
        patient_id: str,
        break_glass: str | None = None,
        now: datetime | None = None,
    ) -> Decision:
        """May ``principal`` see the record of ``patient_id``?"""
        if is_platform(principal):
            return Decision(True, "platform access")
        if principal.role in NO_RECORD_ROLES:
            return _refused(
                Message("the %(role)s role sees aggregates only", role=str(principal.role))
            )
        when = now or datetime.now(UTC)
        with self.store.begin() as tx:
            people = group_of(tx, patient_id)
            if principal.kind == "citizen":
                if set(people) & set(principal.patient_ids):
                    return Decision(True, "own record")
            names = grantees(principal)
            found = standing(tx.care(people, names), names, when) if names else None
        if found is not None and found.level == RECORD:
            who = principal.facility or principal.commune or principal.subject
            return Decision(True, f"current relationship with {who}")
        if break_glass and break_glass.strip() and principal.role in BREAK_GLASS_ROLES:
            return Decision(True, f"break-the-glass: {break_glass.strip()}", break_glass=True)
        if break_glass and principal.role not in BREAK_GLASS_ROLES:
            return _refused(
                Message("the %(role)s role cannot break the glass", role=str(principal.role))
            )
        if principal.kind == "citizen":
            return _refused(Message("a citizen sees only their own record and their children's"))
        caller = (
            Message("facility %(code)s", code=principal.facility)
            if principal.facility
            else Message("the caller")
        )
        if found is not None:
            return _refused(
                Message(
                    "Patient/%(id)s was checked in at %(who)s by a number only: the history "
                    "written elsewhere opens with the one-time code sent to the patient's phone "
                    "($confirm-presence), the patient's share code, or break-the-glass",
                    id=patient_id,
                    who=caller,
                )
            )
        return _refused(
            Message(
                "Patient/%(id)s has no current relationship with %(who)s; "
                "a clinician may break the glass with a reason",
                id=patient_id,
                who=caller,
            )
        )
