"""The database the access layer keeps its tables in.

With a SQL record store it is the same database (one backup; an audit row can commit with the
write it records). With the in-memory record store (tests, demos) it is a private in-memory
SQLite database, so the access code has one implementation.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from sokhoe.store.ports import FhirStore
from sokhoe.store.sql import migrate


def access_engine(store: FhirStore) -> Engine:
    """The writer engine of a SQL store, or a fresh migrated in-memory SQLite."""
    writer = getattr(store, "writer", None)
    if isinstance(writer, Engine):
        return writer
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def _on_begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    migrate.upgrade(engine)
    return engine
