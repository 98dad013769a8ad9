"""Break-the-glass: a clinician opens one record in an emergency, giving the reason.

It is allowed to doctors and nurses only, recorded as a security alert on the patient's
access log with the clinician's words, and written as a row of the care index that opens the
record (restricted categories included) to that one person for a shift
(:data:`~sokhoe.access.levels.BREAK_GLASS_WINDOW`): the treating clinician goes on working
without repeating the reason at every click, and nobody else at the facility gains anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sokhoe.access.care import grant
from sokhoe.access.levels import BREAK_GLASS_WINDOW
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
