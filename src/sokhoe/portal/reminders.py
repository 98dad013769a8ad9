"""Reminding parents by SMS before a child's vaccination falls due (*nhắc lịch tiêm chủng*),
the job ``sokhoe portal remind`` runs (once a day, from the deployment's scheduler).

For every child under 6 with a phone to tell — a guardian a facility confirmed
(``access/guardians.py``), or the child's own linked phone — the job works out the schedule
(``portal/immunisation.py``) and texts each dose that is due, or falls due within
:data:`LEAD`, once (``portal/notices.py``, key ``dose:<patient>:<vaccine>:<dose>``: claimed
before the message leaves, given back if the gateway fails so the next run tries again). The
message goes to one phone: the guardian the station confirmed first, else the child's own.
Nobody else is texted: not an unconfirmed parent, not a phone that merely knows the child's
number.

The message is Vietnamese, names the child by their given name and the vaccine, and carries
nothing else of the record: no diagnosis, no result, no identifier.

The job reads records as the platform's own processing (``platform_repository``), like the
warehouse: it opens no record to anyone, and what it sends is the reminder the parent asked for
by linking their phone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine

from sokhoe.access.care import current
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import phones_of
from sokhoe.access.sms import SmsGateway
from sokhoe.portal.immunisation import (
    CHILDHOOD_MONTHS,
    DoseStatus,
    add_months,
    plan,
    today_in_vietnam,
)
from sokhoe.portal.notices import already, send_once

LEAD: Final = timedelta(days=3)
"""How long before a dose falls due its reminder goes out."""
BATCH: Final = 200
KIND: Final = "vaccination"
MESSAGE: Final = (
    "Sổ sức khỏe: bé {name} {when} tiêm vắc xin {vaccine} (mũi {number}) từ ngày {day}. "
    "Mời gia đình đưa bé đến trạm y tế, mang theo sổ tiêm chủng."
)


@dataclass
class Report:
    """What one run did."""

    children: int = 0
    """Children with a phone to tell."""
    sent: int = 0
    """Doses reminded."""
    already: int = 0
    """Doses reminded on an earlier run."""
    failed: int = 0
    """Doses the gateway could not deliver (tried again next run)."""


def notice_key(patient_id: str, dose: DoseStatus) -> str:
    return f"dose:{patient_id}:{dose.key}"


def text_of(child: dict[str, Any], dose: DoseStatus, today: date) -> str:
    """The reminder, in Vietnamese: the child's given name, the vaccine and the day."""
    names = (child.get("name") or [{}])[0]
    given = [g for g in names.get("given", []) if g]
    return MESSAGE.format(
        name=given[-1] if given else "",
        when="sắp đến lịch" if dose.due > today else "đã đến lịch",
        vaccine=dose.vaccine.name_vi,
        number=dose.dose.number,
        day=dose.due.strftime("%d/%m/%Y"),
    )


def _pages(
    repo: GuardedRepository, params: list[tuple[str, str]]
) -> Iterator[list[dict[str, Any]]]:
    offset = 0
    while True:
        query = repo.parse_query(
            "Patient",
            [*params, ("_count", str(BATCH)), ("_offset", str(offset)), ("_sort", "_id")],
            strict=True,
        )
        found = [m.content for m in repo.search(query).matches if m.content is not None]
        if found:
            yield found
        if len(found) < BATCH:
            return
        offset += BATCH


def recipients(
    repo: GuardedRepository, engine: Engine, children: Sequence[str], now: datetime
) -> dict[str, list[str]]:
    """Who to tell for each child: the guardians a facility confirmed (their care-index rows,
    the first confirmed first), then the child's own linked phone."""
    found: dict[str, list[str]] = defaultdict(list)
    with repo.snapshot() as tx:
        rows = sorted(tx.care(list(children)), key=lambda r: (r.since, r.grantee))
    for row in rows:
        if row.source == "guardian" and row.grantee.startswith("citizen:") and current(row, now):
            phone = row.grantee.split(":", 1)[1]
            if phone not in found[row.patient_id]:
                found[row.patient_id].append(phone)
    for child, phones in phones_of(engine, children).items():
        found[child] += [p for p in phones if p not in found[child]]
    return dict(found)


def _immunizations(
    repo: GuardedRepository, children: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    by_child: dict[str, list[dict[str, Any]]] = defaultdict(list)
    refs = ",".join(f"Patient/{c}" for c in children)
    offset = 0
    while True:
        query = repo.parse_query(
            "Immunization",
            [("patient", refs), ("_count", "1000"), ("_offset", str(offset)), ("_sort", "_id")],
            strict=True,
        )
        matches = repo.search(query).matches
        for m in matches:
            if m.content is not None and m.patient_id:
                by_child[m.patient_id].append(m.content)
        if len(matches) < 1000:
            return by_child
        offset += 1000


def _due(dose: DoseStatus, today: date, lead: timedelta) -> bool:
    if dose.status == "due":
        return True
    return dose.status == "upcoming" and dose.due - lead <= today


def remind(
    repo: GuardedRepository,
    engine: Engine,
    sms: SmsGateway,
    *,
    today: date | None = None,
    lead: timedelta = LEAD,
) -> Report:
    """Send the reminders due on ``today`` (Vietnam's date by default); ``repo`` is the
    platform's door, ``engine`` the database of the portal's tables."""
    day = today or today_in_vietnam(repo)
    now = repo.clock()
    born_after = add_months(day, -CHILDHOOD_MONTHS)
    report = Report()
    for page in _pages(repo, [("birthdate", f"gt{born_after.isoformat()}")]):
        children = {str(c["id"]): c for c in page if _alive(c)}
        phones = recipients(repo, engine, list(children), now)
        if not phones:
            continue
        given = _immunizations(repo, list(phones))
        for child_id, to in sorted(phones.items()):
            child = children[child_id]
            report.children += 1
            birth = date.fromisoformat(str(child["birthDate"])[:10])
            for dose in plan(birth, given.get(child_id, []), day).doses:
                if not _due(dose, day, lead):
                    continue
                key = notice_key(child_id, dose)
                if already(engine, [key]):
                    report.already += 1
                elif send_once(engine, sms, key, to[0], KIND, text_of(child, dose, day)):
                    report.sent += 1
                else:
                    report.failed += 1  # the gateway refused: tried again on the next run
    return report


def _alive(patient: dict[str, Any]) -> bool:
    """A current record of a living child (a merged-away or deceased one is not texted)."""
    if patient.get("active") is False or len(str(patient.get("birthDate") or "")) != 10:
        return False
    return not (patient.get("deceasedBoolean") or patient.get("deceasedDateTime"))


__all__ = ["LEAD", "MESSAGE", "Report", "notice_key", "recipients", "remind", "text_of"]
