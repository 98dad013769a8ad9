"""Bytes on disk per stored resource, whole database and by part (issue 15: ≤ 1.5 kB).

The parts are what a reader can act on: the resources themselves with their history, the search
index, the audit trail, the access tables, and the rest. Indexes count with their table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text


def part(table: str) -> str:
    """Which part of the store a table (or its index) belongs to."""
    if table.startswith(("resource", "ux_resource", "ix_resource", "ix_history")) or (
        table.startswith("sqlite_autoindex_resource")
    ):
        return "resources and history"
    if table.startswith(("sp_", "ix_sp_", "token_system", "sqlite_autoindex_token_system")):
        return "search index"
    if "audit" in table:
        return "audit"
    if "care" in table:
        return "access"
    return "other"


def sqlite_footprint(path: Path, resources: int) -> dict[str, Any]:
    """The file's bytes (after the WAL is folded in) per resource, whole and by part."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    finally:
        conn.close()
    return _summary(path.stat().st_size, [(str(n), int(s)) for n, s in rows], resources)


def postgres_footprint(url: str, resources: int) -> dict[str, Any]:
    """The database's tables with their indexes and TOAST, per resource, whole and by part."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind IN ('r', 'p') AND n.nspname = 'public'"
                )
            ).all()
    finally:
        engine.dispose()
    sizes = [(str(n), int(s)) for n, s in rows]
    return _summary(sum(s for _, s in sizes), sizes, resources)


def _summary(total: int, sizes: list[tuple[str, int]], resources: int) -> dict[str, Any]:
    parts: dict[str, int] = {}
    for name, size in sizes:
        parts[part(name)] = parts.get(part(name), 0) + size
    n = max(resources, 1)
    return {
        "bytes": total,
        "bytes_per_resource": round(total / n),
        "parts_per_resource": {k: round(v / n) for k, v in sorted(parts.items())},
    }
