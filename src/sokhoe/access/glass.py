"""Break-the-glass: a clinician opens one record in an emergency, giving the reason.

It is allowed to doctors and nurses only, recorded as a security alert on the patient's
access log with the clinician's words, and written as a row of the care index that opens the
record (restricted categories included) to that one person for a shift
(:data:`~sokhoe.access.levels.BREAK_GLASS_WINDOW`): the treating clinician goes on working
without repeating the reason at every click, and nobody else at the facility gains anything.

The citizen is told by SMS (``portal/glass_alerts.py``), once per *opening*: :func:`openings`
lists the security alerts in the log that no earlier alert by the same person on the same
record precedes within a shift. A connected system that sends its reason with every request
writes an alert per request; the person whose record it is gets one message for the shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from sokhoe.access.audit import AuditLog
from sokhoe.access.care import grant, group_of
from sokhoe.access.levels import BREAK_GLASS_WINDOW, current
from sokhoe.access.otp import linked_phones
from sokhoe.access.rights import user_grantee
from sokhoe.access.session import GuardedSession
from sokhoe.store.ports import StoreSession

if TYPE_CHECKING:
    from sokhoe.access.guard import GuardedRepository


def open_glass(door: GuardedRepository, tx: StoreSession, patient_id: str, now: datetime) -> None:
    """Open ``patient_id`` to the door's clinician, in ``tx``, audited with the reason."""
    grant(
        tx,
        patient_id,
        user_grantee(door.principal),
        "break-glass",
        now,
        until=now + BREAK_GLASS_WINDOW,
        all_labels=True,
    )
    session = GuardedSession(tx, door, None, now)
    session.audit(
        "break-the-glass", "success", [patient_id], reason=f"break-the-glass: {door.break_glass}"
    )


@dataclass(frozen=True)
class Opening:
    """A clinician (or a facility's system) opened a record by breaking the glass."""

    seq: int
    """The audit row's sequence number: the AuditEvent's id."""
    recorded: datetime
    patient_id: str
    agent: str
    facility: str | None
    """The insurance code of the facility the agent acted for (``source.site``)."""
    reason: str


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _reason(content: dict[str, Any]) -> str:
    for purpose in content.get("purposeOfEvent", []):
        if purpose.get("text"):
            return str(purpose["text"])
    return str(content.get("outcomeDesc", "")).removeprefix("break-the-glass: ")


def openings(auditor: AuditLog, since: datetime) -> list[Opening]:
    """The break-the-glass openings recorded since ``since``, oldest first.

    An alert opens the glass unless the same agent broke it on the same record in the
    :data:`BREAK_GLASS_WINDOW` before it; the rule looks back one window only, so the answer
    for a row never depends on how far back the caller looks. The partial index
    ``ix_audit_glass`` keeps this a read of the alerts alone, however long the log
    (:meth:`AuditLog.alerts`).
    """
    start = _aware(since)
    rows = auditor.alerts(start - BREAK_GLASS_WINDOW)
    last: dict[tuple[str, str], datetime] = {}
    found = []
    for row in rows:
        recorded = _aware(row.recorded)
        key = (str(row.agent), str(row.patient_id))
        before = last.get(key)
        last[key] = recorded
        if recorded < start or (before is not None and recorded - before < BREAK_GLASS_WINDOW):
            continue
        content = dict(row.content)
        found.append(
            Opening(
                int(row.seq),
                recorded,
                str(row.patient_id),
                str(row.agent),
                (content.get("source") or {}).get("site"),
                _reason(content),
            )
        )
    return found


def alert_phones(
    repo: GuardedRepository, engine: Engine, patient_id: str
) -> list[tuple[str, bool]]:
    """Who is told when ``patient_id``'s record is opened by breaking the glass: the phones
    linked to the person's records, and for a child the guardians a facility confirmed
    (``(phone, True)``)."""
    with repo.snapshot() as tx:
        people = group_of(tx, patient_id)
        rows = tx.care(people)
    now = repo.clock()
    guardians = [
        row.grantee.split(":", 1)[1]
        for row in rows
        if row.source == "guardian" and row.grantee.startswith("citizen:") and current(row, now)
    ]
    own = linked_phones(engine, people)
    return [(p, False) for p in own] + [(p, True) for p in sorted(set(guardians) - set(own))]
