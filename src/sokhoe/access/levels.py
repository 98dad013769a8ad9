"""How strongly a caller is related to a patient: the levels of the care-relationship index.

``record``: the caller may read the patient's record (and write into it); ``own``: the caller
may write into the compartment and read back only what it wrote. A row is *proven* when it
rests on the person's presence or consent rather than on knowing their number
(``access/care.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sokhoe.store.ports import CareRow

WINDOW = timedelta(days=365)
"""How long after a visit (or a confirmed presence) the facility keeps access."""
BREAK_GLASS_WINDOW = timedelta(hours=8)
"""How long a broken glass keeps a record open to the clinician who broke it (a shift)."""
RECORD, OWN = "record", "own"


@dataclass(frozen=True, slots=True)
class Standing:
    """A grantee's best current row on a patient."""

    level: str
    proven: bool

    def at_least(self, other: Standing | None) -> bool:
        if other is None:
            return True
        rank = {OWN: 0, RECORD: 1}
        return (rank[self.level], self.proven) >= (rank[other.level], other.proven)


def current(row: CareRow, now: datetime) -> bool:
    return row.since <= now and (row.until is None or row.until > now)


def standing(rows: Iterable[CareRow], grantees: Sequence[str], now: datetime) -> Standing | None:
    """The best current standing any of ``grantees`` has in ``rows``."""
    best: Standing | None = None
    names = set(grantees)
    for row in rows:
        if row.grantee in names and current(row, now):
            found = Standing(row.level, row.proven)
            if best is None or found.at_least(best):
                best = found
    return best
