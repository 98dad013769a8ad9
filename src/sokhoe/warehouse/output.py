"""Write view rows as CSV, NDJSON or Parquet, typed by the view's declared column types.

- **csv**: a header row with the column names in view order, then one line per row (``\\n``
  line ends, RFC 4180 quoting). No value is an empty field; booleans are ``true``/``false``;
  ``collection`` columns and complex values are written as JSON text.
- **json**: newline-delimited JSON (NDJSON, as FHIR Bulk Data uses), one object per row with
  every column in view order and ``null`` for no value. Chosen over one JSON array so output
  streams, and so DuckDB's ``read_json`` and Spark read it line by line.
- **parquet**: one Arrow column per view column, typed from the column's FHIR ``type``: boolean
  → ``bool``; integer, positiveInt, unsignedInt, integer64 → ``int64``; decimal → ``float64``;
  every other primitive (string, code, date, dateTime, instant, time, uri…) → ``string`` (FHIR
  dates may be partial, ``1970-06``, which no Arrow temporal type can hold); complex types and
  columns without a type → ``string`` holding JSON for non-strings; ``collection`` → ``list<…>``.
  An all-null column therefore still has its declared type, and a value that does not fit the
  declared type is an error naming the column. Rows are written in batches, so memory stays
  flat whatever the input size.

CSV and NDJSON write values as the view produced them (they have no column types to enforce).

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/#type-hinting-with-tags
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.viewdef import Column

FORMATS = ("csv", "json", "parquet")
_BATCH_ROWS = 10_000

_INTEGER_TYPES = frozenset({"integer", "positiveInt", "unsignedInt", "integer64"})


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type a column is written with (see the module docstring)."""
    kind = column.type
    if kind == "boolean":
        base: pa.DataType = pa.bool_()
    elif kind in _INTEGER_TYPES:
        base = pa.int64()
    elif kind == "decimal":
        base = pa.float64()
    else:
        base = pa.string()
    return pa.list_(base) if column.collection else base


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c), nullable=True) for c in columns])


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _scalar(value: Any, column: Column) -> Any:
    """``value`` coerced to the column's declared type; a value that does not fit is an error."""
    if value is None:
        return None
    kind = column.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind in _INTEGER_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    else:
        return value if isinstance(value, str) else _json_text(value)
    raise InvalidRequest(
        f"column {column.name!r} is declared {kind} but a row has {value!r}",
        f"{column.location}.type",
        code="processing",
    )


def _typed(value: Any, column: Column) -> Any:
    if column.collection and value is not None:
        return [_scalar(v, column) for v in value]
    return _scalar(value, column)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return _json_text(value)


def write_csv(rows: Iterable[dict[str, Any]], columns: Sequence[Column], out: IO[str]) -> int:
    """Write a header and the rows to ``out``; return the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    count = 0
    for row in rows:
        writer.writerow([_csv_cell(row.get(c.name)) for c in columns])
        count += 1
    return count


def write_ndjson(rows: Iterable[dict[str, Any]], columns: Sequence[Column], out: IO[bytes]) -> int:
    """Write one JSON object per line to ``out``; return the number of rows written."""
    names = [c.name for c in columns]
    count = 0
    for row in rows:
        out.write(orjson.dumps({n: row.get(n) for n in names}, option=orjson.OPT_APPEND_NEWLINE))
        count += 1
    return count


def _batches(
    rows: Iterable[dict[str, Any]], columns: Sequence[Column], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, _BATCH_ROWS)):
        arrays = [
            pa.array([_typed(r.get(c.name), c) for r in chunk], type=schema.field(c.name).type)
            for c in columns
        ]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_parquet(rows: Iterable[dict[str, Any]], columns: Sequence[Column], path: Path) -> int:
    """Write the rows to a Parquet file at ``path``; return the number of rows written.

    The file is written even when there are no rows, so the schema is always there.
    """
    schema = arrow_schema(columns)
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in _batches(rows, columns, schema):
            writer.write_batch(batch)
            count += batch.num_rows
    return count
