"""Text messages the platform sends a citizen of its own accord, each once.

A break-the-glass alert (``glass:<audit seq>:<phone>``) or a vaccination reminder
(``dose:…``) is one event; the ``citizen_notice`` table remembers the events already told, so
a notifier that runs again, on another server process or after a restart, does not tell them
twice. :func:`send_once` claims the key before sending and confirms it after:

- a row being sent (``kind`` ends in :data:`SENDING`) belongs to one sender for
  :data:`LEASE`; another sender skips it meanwhile, and takes it over after (the first died
  between claiming and confirming: the message may then go twice, never zero times);
- a gateway that refuses or cannot be reached gives the claim back at once, so the next round
  tries again;
- a confirmed row (``kind`` without the suffix, ``sent`` the time it left) is never sent again.

The rows hold no text: the message may say which facility opened a record, and the log of
what was sent belongs to the SMS provider's contract, not to this table.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from sokhoe.access.sms import SmsDeliveryError, SmsGateway
from sokhoe.store.sql.portal_schema import citizen_notice

log = logging.getLogger(__name__)

SENDING: Final = "~sending"
"""Suffix of a claimed, not yet confirmed notice's ``kind``."""
LEASE: Final = timedelta(minutes=5)
"""How long a sender keeps a claim before another may take it over (more than a gateway's
time-out, so a slow send is not doubled)."""


def _utc(moment: datetime | None) -> datetime:
    return (moment or datetime.now(UTC)).astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def already(engine: Engine, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` were sent (or are being sent now)."""
    if not keys:
        return set()
    c = citizen_notice.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.key).where(c.key.in_(list(keys)))).all()
    return {str(r.key) for r in rows}


def _claim(engine: Engine, key: str, phone: str, kind: str, at: datetime) -> bool:
    c = citizen_notice.c
    try:
        with engine.begin() as conn:
            conn.execute(
                citizen_notice.insert().values(key=key, phone=phone, kind=kind + SENDING, sent=at)
            )
        return True
    except IntegrityError:
        pass
    with engine.begin() as conn:
        row = conn.execute(select(c.kind, c.sent).where(c.key == key)).first()
        if row is None or not str(row.kind).endswith(SENDING) or _aware(row.sent) > at - LEASE:
            return False
        taken = conn.execute(
            update(citizen_notice)
            .where(c.key == key, c.kind == row.kind, c.sent == row.sent)
            .values(sent=at)
        )
        return taken.rowcount == 1


def send_once(
    engine: Engine,
    gateway: SmsGateway,
    key: str,
    phone: str,
    kind: str,
    text: str,
    now: datetime | None = None,
) -> bool:
    """Send ``text`` to ``phone`` unless the notice ``key`` was sent already (see the module
    docstring); True when this call sent it. A gateway failure leaves the notice unsent for a
    later try and is logged (without the text)."""
    at = _utc(now)
    if not _claim(engine, key, phone, kind, at):
        return False
    c = citizen_notice.c
    try:
        gateway.send(phone, text)
    except (SmsDeliveryError, OSError) as exc:
        log.warning("notice %s not sent: %s", key, exc)
        with engine.begin() as conn:
            conn.execute(delete(citizen_notice).where(c.key == key, c.sent == at))
        return False
    with engine.begin() as conn:
        conn.execute(
            update(citizen_notice).where(c.key == key).values(kind=kind, sent=datetime.now(UTC))
        )
    return True


__all__ = ["LEASE", "SENDING", "already", "send_once"]
