"""Alembic environment: runs on the connection handed in by ``sokhoe.store.sql.migrate``."""

from __future__ import annotations

from alembic import context

from sokhoe.store.sql import (
    access_schema,
    bulk_schema,
    clinic_schema,
    interop_schema,
    portal_schema,
    prescribing_schema,
    subscription_schema,
    sync_schema,
)
from sokhoe.store.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for the alembic CLI during development
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
