"""Many rows into one table with one driver-level ``executemany``.

A bulk load writes a resource row, a history row and a dozen search-index rows for every
resource. Through ``conn.execute(insert(table), [dict, ...])`` SQLAlchemy builds a parameter
dictionary and looks up each column's type processor for every row, which cost the single
writer as much time as SQLite's own work. Here the statement text and the processors are
worked out once per table and dialect, and the rows go to the driver as plain tuples, with
exactly the conversions SQLAlchemy would have made (the compressed JSON, SQLite's datetime
text, booleans).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any]


@cache
def _plan(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Processor | None, ...]]:
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(columns)
    marks = ", ".join([mark] * len(columns))
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    )
    return f"INSERT INTO {table.name} ({names}) VALUES ({marks})", processors  # noqa: S608


def insert_rows(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in ``columns``' order) into ``table``."""
    if not rows:
        return
    sql, processors = _plan(table, columns, conn.dialect)
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]
    if converting:
        converted = []
        for row in rows:
            values = list(row)
            for i, process in converting:
                values[i] = process(values[i])
            converted.append(tuple(values))
        rows = converted
    conn.exec_driver_sql(sql, list(rows))
