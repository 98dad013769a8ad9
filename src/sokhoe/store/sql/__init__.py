"""The SQL store: SQLAlchemy Core over SQLite (embedded default) and PostgreSQL."""

from sokhoe.store.sql import (  # noqa: F401  (tables on metadata)
    access_schema,
    bulk_schema,
    clinic_schema,
    interop_schema,
    portal_schema,
    prescribing_schema,
    subscription_schema,
    sync_schema,
)
from sokhoe.store.sql.repository import SqlStore, open_store

__all__ = ["SqlStore", "open_store"]
