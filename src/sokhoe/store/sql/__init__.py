"""The SQL store: SQLAlchemy Core over SQLite (embedded default) and PostgreSQL."""

from sokhoe.store.sql import access_schema, interop_schema  # noqa: F401  (tables on metadata)
from sokhoe.store.sql.repository import SqlStore, open_store

__all__ = ["SqlStore", "open_store"]
