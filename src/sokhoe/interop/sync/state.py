"""What was synchronised with which peer: the ``sync_state`` rows and the two watermarks.

Every row is written in its own short transaction right after the item it describes was
applied on both sides, so a sync cut anywhere leaves at most the in-flight item unrecorded —
and redoing that item is a no-op (same content, same id: no new version on either side).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sokhoe.fhir.resources import format_instant, parse_instant
from sokhoe.interop.watermark import read_watermark, save_watermark
from sokhoe.store.sql.sync_schema import sync_state

SAFETY_MARGIN = timedelta(minutes=5)
"""How far before a watermark the next run starts reading again: versions committed late
with an earlier timestamp (a long transaction, equal instants) are then still seen, and
re-reading the ones already applied costs nothing (idempotent apply)."""


@dataclass(frozen=True, slots=True)
class Synced:
    """The versions last known to hold the same content locally and upstream."""

    local_version: int
    upstream_version: int
    conflict_task: str | None


class SyncState:
    """The ``sync_state`` rows and watermarks of one peer in the local database."""

    def __init__(self, engine: Engine, peer: str) -> None:
        self.engine = engine
        self.peer = peer

    def get(self, resource_type: str, rid: str) -> Synced | None:
        c = sync_state.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.local_version, c.upstream_version, c.conflict_task).where(
                    c.peer == self.peer, c.resource_type == resource_type, c.id == rid
                )
            ).first()
        return None if row is None else Synced(row[0], row[1], row[2])

    def record(
        self,
        resource_type: str,
        rid: str,
        local_version: int,
        upstream: int,
        conflict_task: str | None = None,
    ) -> None:
        """Both sides now hold the same content at these versions — or, with
        ``conflict_task``, they diverged there and the resource is held for that review."""
        now = datetime.now(UTC)
        values = {
            "local_version": local_version,
            "upstream_version": upstream,
            "synced_at": now,
            "conflict_task": conflict_task,
        }
        with self.engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(sync_state).values(
                peer=self.peer, resource_type=resource_type, id=rid, **values
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["peer", "resource_type", "id"], set_=values
                )
            )

    def mark_conflict(
        self, resource_type: str, rid: str, task_id: str, local_version: int, upstream: int
    ) -> None:
        """Hold the resource for review: neither side is synchronised until a person acts."""
        self.record(resource_type, rid, local_version, upstream, conflict_task=task_id)

    def conflicts(self) -> list[tuple[str, str, str]]:
        """(type, id, task id) of every resource waiting for review."""
        c = sync_state.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.resource_type, c.id, c.conflict_task).where(
                    c.peer == self.peer, c.conflict_task.is_not(None)
                )
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    # -- watermarks ------------------------------------------------------------------------
    def _name(self, direction: str) -> str:
        return f"sync:{direction}:{self.peer}"

    def since(self, direction: str) -> datetime | None:
        """Where to start reading (``push`` local history, ``pull`` upstream changes)."""
        value = read_watermark(self.engine, self._name(direction))
        return None if value is None else parse_instant(value) - SAFETY_MARGIN

    def advance(self, direction: str, instant: datetime) -> None:
        """Called only once every item up to ``instant`` was applied; never moves back (a
        run that found only versions inside the safety margin must not widen the next)."""
        name = self._name(direction)
        saved = read_watermark(self.engine, name)
        if saved is not None and parse_instant(saved) >= instant:
            return
        with self.engine.begin() as conn:
            save_watermark(conn, name, format_instant(instant))


__all__ = ["SAFETY_MARGIN", "SyncState", "Synced"]
