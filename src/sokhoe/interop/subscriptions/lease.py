"""A lease row: which process may act now, for work that must have one actor per deployment.

Portable over SQLite and PostgreSQL (an advisory lock would be PostgreSQL-only and tied to one
connection): the holder renews the row each round; when it stops renewing (crash, network
split) for the lease's length, another process takes it over. A round must stay shorter than
the lease, or two holders may overlap for a moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from sokhoe.store.sql.subscription_schema import subscription_lease


def take_lease(engine: Engine, name: str, holder: str, now: datetime, length: timedelta) -> bool:
    """Take or renew ``name`` for ``holder`` until ``now + length``; False if another
    holder's lease is still running."""
    lease = subscription_lease.c
    expires = now + length
    try:
        with engine.begin() as conn:
            taken = conn.execute(
                update(subscription_lease)
                .where(and_(lease.name == name, or_(lease.holder == holder, lease.expires < now)))
                .values(holder=holder, expires=expires)
            ).rowcount
            if taken:
                return True
            if conn.execute(select(lease.holder).where(lease.name == name)).first() is not None:
                return False
            conn.execute(
                subscription_lease.insert().values(name=name, holder=holder, expires=expires)
            )
            return True
    except IntegrityError:  # another process inserted the row first
        return False


def release_lease(engine: Engine, name: str, holder: str) -> None:
    """Give ``name`` up if ``holder`` has it (a clean stop: another may take over at once)."""
    lease = subscription_lease.c
    with engine.begin() as conn:
        conn.execute(delete(subscription_lease).where(lease.name == name, lease.holder == holder))


__all__ = ["release_lease", "take_lease"]
