"""A page view is a read: ``devices.seen`` writes ``last_seen`` at most once an hour, and when
it has nothing to write it opens no write transaction (on SQLite that takes the one writer's
lock, which every citizen's page view would otherwise queue for)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from sokhoe.portal import devices
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.portal_schema import citizen_device

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def _last_seen(store: SqlStore) -> datetime:
    with store.reader.connect() as conn:
        found = conn.execute(select(citizen_device.c.last_seen)).scalar_one()
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def test_seen_writes_once_an_hour_and_takes_no_write_lock_in_between(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    try:
        devices.remember(
            store.writer, "0912345678", "j-1", "Chrome/1 Android", T0 + timedelta(days=90), T0
        )
        writes: list[str] = []

        def on_begin(conn: Any) -> None:
            writes.append("begin")

        event.listen(store.writer, "begin", on_begin)
        devices.seen(store.writer, "j-1", T0 + timedelta(minutes=30), reader=store.reader)
        assert writes == []  # nothing due: read only
        assert _last_seen(store) == T0
        devices.seen(store.writer, "j-1", T0 + timedelta(minutes=61), reader=store.reader)
        assert writes == ["begin"]
        assert _last_seen(store) == T0 + timedelta(minutes=61)
        devices.seen(store.writer, "j-unknown", T0 + timedelta(hours=5), reader=store.reader)
        assert writes == ["begin"]  # an unknown session: nothing to write either
    finally:
        store.close()
