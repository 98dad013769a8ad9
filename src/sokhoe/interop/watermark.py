"""Where a change-feed follower stopped, kept in the database so a restart (or a second
process) carries on from there instead of from the beginning."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sokhoe.store.sql.interop_schema import interop_watermark


def read_watermark(engine: Engine, name: str) -> str | None:
    """The value last saved under ``name``, or None when the feed was never followed."""
    with engine.connect() as conn:
        value = conn.execute(
            select(interop_watermark.c.value).where(interop_watermark.c.name == name)
        ).scalar_one_or_none()
    return value


def save_watermark(conn: Connection, name: str, value: str) -> None:
    """Save ``value`` on ``conn``: pass the connection of the transaction that wrote what the
    watermark covers, so both commit or neither does."""
    now = datetime.now(UTC)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(interop_watermark).values(name=name, value=value, updated=now)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["name"], set_={"value": value, "updated": now})
    )


def clear_watermark(conn: Connection, name: str) -> None:
    """Forget ``name`` (the next run starts from the beginning)."""
    conn.execute(delete(interop_watermark).where(interop_watermark.c.name == name))


__all__ = ["clear_watermark", "read_watermark", "save_watermark"]
