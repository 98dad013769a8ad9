"""Fixed-window rate limits kept as rows of ``auth_rate``, so every server process agrees.

A limit in process memory would reset on restart and multiply by the number of workers behind
the load balancer; a row does neither. Each key (``otp:phone:0912345678``) has one row: the
start of its current window and how many hits it counted. A window starts at the first hit
after the previous one ended (a fixed window, not a sliding one: simple, and an attacker gains
at most twice the limit across a boundary, which is acceptable for one-time codes).

Concurrency: the row is created with ``INSERT … ON CONFLICT DO NOTHING`` and then read with
``SELECT … FOR UPDATE`` inside one transaction, so two PostgreSQL sessions hitting the same key
queue on the row lock; on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (see
``store/sql/engine.py`` and ``access/db.py``), which serialises writers for the same effect.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from sokhoe.errors import TooManyRequests
from sokhoe.store.sql.access_schema import auth_rate

VIETNAM_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
"""Times shown to people (lock-outs, retry times) are Vietnam time; no daylight saving."""


class RateLimited(TooManyRequests):
    """429 with the number of seconds after which a retry can succeed (``Retry-After``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def utc(now: datetime | None = None) -> datetime:
    """``now`` (or the current time) in UTC; a naive value is taken to be UTC already.

    Every stored time goes through this: SQLite keeps no offset, so a value written in
    +07:00 would be read back seven hours off.
    """
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def local_hhmm(moment: datetime) -> str:
    """``HH:MM`` in Vietnam time, for messages a person reads."""
    return utc(moment).astimezone(VIETNAM_TZ).strftime("%H:%M")


def insert_ignore(conn: Connection, table: Table, **values: object) -> None:
    """Insert a row unless its primary key exists (PostgreSQL and SQLite ``ON CONFLICT``)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())


def hit(
    engine: Engine,
    key: str,
    limit: int,
    window: timedelta,
    now: datetime | None = None,
) -> None:
    """Count one event for ``key``; :class:`RateLimited` if ``limit`` were exceeded.

    A refused hit is not counted, so a caller who waits for the window to end gets through
    even if they kept trying meanwhile.
    """
    if limit < 1:
        raise ValueError("A rate limit must allow at least one event")
    at = utc(now)
    with engine.begin() as conn:
        insert_ignore(conn, auth_rate, key=key, window_start=at, count=0)
        row = conn.execute(
            select(auth_rate.c.window_start, auth_rate.c.count)
            .where(auth_rate.c.key == key)
            .with_for_update()
        ).one()
        start, count = utc(row[0]), int(row[1])
        if at >= start + window or at < start:
            conn.execute(
                update(auth_rate).where(auth_rate.c.key == key).values(window_start=at, count=1)
            )
            return
        if count >= limit:
            reopens = start + window
            retry_after = max(1, math.ceil((reopens - at).total_seconds()))
            raise RateLimited(
                f"Too many requests; try again after {local_hhmm(reopens)} "
                f"(in {retry_after} seconds)",
                retry_after,
            )
        conn.execute(
            update(auth_rate).where(auth_rate.c.key == key).values(count=auth_rate.c.count + 1)
        )


def reset(engine: Engine, key: str) -> None:
    """Forget the counter of ``key`` (an administrator unblocking a number)."""
    with engine.begin() as conn:
        conn.execute(update(auth_rate).where(auth_rate.c.key == key).values(count=0))
