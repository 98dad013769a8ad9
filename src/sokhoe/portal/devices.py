"""The phones a citizen stays signed in on (*thiết bị đăng nhập*).

A resident signs in once on their own phone and stays signed in for months: typing a one-time
code at every visit would lose most of them. A long session is only safe if it can be ended,
so each portal sign-in writes a device row naming its token's ``jti``; the citizen sees the
list (browser and system, first and last use) and ends one session or all of them, which
revokes the tokens through the token service's revocation list, the same one every request
checks. The rows live in the database, not the process (DESIGN.md: several server processes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, insert, select, update

from sokhoe.access.tokens import TokenService
from sokhoe.store.sql.portal_schema import citizen_device

SEEN_EVERY: Final = timedelta(hours=1)
"""``last_seen`` is written at most this often: a page view is a read, not a write."""

_BROWSERS: Final = (
    ("Zalo", r"Zalo"),
    ("Cốc Cốc", r"coc_coc|CocCoc"),
    ("Edge", r"Edg/"),
    ("Samsung Internet", r"SamsungBrowser"),
    ("Firefox", r"Firefox/"),
    ("Chrome", r"Chrome/|CriOS/"),
    ("Safari", r"Safari/"),
)
_SYSTEMS: Final = (
    ("Android", r"Android"),
    ("iPhone", r"iPhone|iPad|iOS"),
    ("Windows", r"Windows"),
    ("macOS", r"Mac OS X|Macintosh"),
    ("Linux", r"Linux"),
)


@dataclass(frozen=True)
class Device:
    jti: str
    label: str
    created: datetime
    last_seen: datetime


def label_of(user_agent: str | None) -> str:
    """What a person recognises a device by ("Chrome · Android"), from its User-Agent."""
    text = user_agent or ""
    browser = next((name for name, pattern in _BROWSERS if re.search(pattern, text)), "")
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, text)), "")
    return " · ".join(part for part in (browser, system) if part) or "?"


def _utc(moment: datetime | None) -> datetime:
    return (moment or datetime.now(UTC)).astimezone(UTC)


def remember(
    engine: Engine,
    phone: str,
    jti: str,
    user_agent: str | None,
    expires: datetime,
    now: datetime | None = None,
) -> None:
    """Record the session ``jti`` just started on a device."""
    at = _utc(now)
    with engine.begin() as conn:
        conn.execute(
            insert(citizen_device).values(
                jti=jti,
                phone=phone,
                label=label_of(user_agent)[:200],
                created=at,
                last_seen=at,
                expires=expires,
                ended=None,
            )
        )


def seen(
    engine: Engine, jti: str, now: datetime | None = None, reader: Engine | None = None
) -> None:
    """Note that the session was used (at most once an hour).

    Read first, through ``reader`` when given: on SQLite a write transaction takes the one
    writer's lock even when its ``UPDATE`` matches nothing, and every page a citizen opens
    would otherwise queue behind the platform's writes for a no-op."""
    at = _utc(now)
    stale = citizen_device.c.jti == jti, citizen_device.c.last_seen < at - SEEN_EVERY
    with (reader or engine).connect() as conn:
        due = conn.execute(select(citizen_device.c.jti).where(*stale)).first()
    if due is None:
        return
    with engine.begin() as conn:
        conn.execute(update(citizen_device).where(*stale).values(last_seen=at))


def active(engine: Engine, phone: str, now: datetime | None = None) -> list[Device]:
    """The citizen's live sessions, the most recently used first."""
    at = _utc(now)
    query = (
        select(citizen_device)
        .where(
            citizen_device.c.phone == phone,
            citizen_device.c.ended.is_(None),
            citizen_device.c.expires > at,
        )
        .order_by(citizen_device.c.last_seen.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Device(r.jti, r.label, _aware(r.created), _aware(r.last_seen)) for r in rows]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def end(
    engine: Engine,
    tokens: TokenService,
    phone: str,
    jti: str | None = None,
    now: datetime | None = None,
) -> int:
    """End the citizen's session ``jti`` (or every one of them when None): its token is
    revoked at once. Only the citizen's own sessions: another phone's ``jti`` ends nothing.
    Returns how many ended."""
    at = _utc(now)
    where = [citizen_device.c.phone == phone, citizen_device.c.ended.is_(None)]
    if jti is not None:
        where.append(citizen_device.c.jti == jti)
    with engine.begin() as conn:
        found = conn.execute(
            select(citizen_device.c.jti, citizen_device.c.expires).where(*where)
        ).all()
        if found:
            conn.execute(
                update(citizen_device)
                .where(citizen_device.c.jti.in_([row.jti for row in found]))
                .values(ended=at)
            )
    for row in found:
        tokens.revoke(row.jti, _aware(row.expires))
    return len(found)


__all__ = ["Device", "active", "end", "label_of", "remember", "seen"]
