"""The SQL store: SQLAlchemy Core over SQLite (embedded default) and PostgreSQL."""

from sokhoe.store.sql.repository import SqlStore, open_store

__all__ = ["SqlStore", "open_store"]
