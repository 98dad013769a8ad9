"""Bring a database to the current schema with Alembic (the migrations ship in the package)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("sokhoe.store.sql") / "migrations"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every pending migration in one transaction."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
