"""The database the access layer keeps its tables in.

With a SQL record store it is the same database (one backup; an audit row commits with the
write it records). The in-memory record store (tests, demos) keeps them in its own SQLite
file, and runs a write session's work on them in one transaction with the session
(``StoreSession.side_tables``).
"""

from __future__ import annotations

from sqlalchemy import Engine

from sokhoe.store.ports import FhirStore


def access_engine(store: FhirStore) -> Engine:
    """The writer engine of a SQL store, or the memory store's access database."""
    for name in ("writer", "access_engine"):
        engine = getattr(store, name, None)
        if isinstance(engine, Engine):
            return engine
    raise TypeError(f"{type(store).__name__} keeps no access tables")


def access_reader(store: FhirStore) -> Engine:
    """The engine for reads of the access tables: a SQLite store's reader (plain ``BEGIN``,
    never queued behind the writer's lock, as every request's token check would otherwise
    be), or :func:`access_engine` where there is no separate one."""
    engine = getattr(store, "reader", None)
    return engine if isinstance(engine, Engine) else access_engine(store)
