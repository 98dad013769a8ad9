"""Bring a database to the current schema with Alembic (the migrations ship in the package)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

PARTITIONS = "partitions"
"""``Config.attributes`` key: hash partitions by patient for a new PostgreSQL database
(``Settings.pg_partitions``; migration 0021 reads it)."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("sokhoe.store.sql") / "migrations"))
    return cfg


def upgrade(engine: Engine, *, partitions: int = 0) -> None:
    """Apply every pending migration in one transaction.

    ``partitions`` > 0 on PostgreSQL: the record tables of a database still empty when
    migration 0021 runs are made partitioned by patient (see ``store/sql/partitions.py``);
    a database that has passed 0021 keeps its layout whatever is asked now.
    """
    cfg = alembic_config()
    cfg.attributes[PARTITIONS] = partitions
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
