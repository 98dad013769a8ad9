"""``sokhoe warehouse build``: the record's SQL on FHIR views, de-identified, into DuckDB and
Parquet, refreshed incrementally.

Health departments analyse the record without seeing anyone in it (issue: analysts see
warehouse aggregates only). So the build:

- runs the ViewDefinitions in ``warehouse/views/`` (one table each: patient, encounter,
  condition, observation, medication_request, medication_dispense, immunization,
  imaging_study, facility) over the store, with the same engine as ``sokhoe view run``; a
  table whose columns are not its view's (a warehouse built before the view changed) is made
  again and the build is a full one;
- replaces every resource key of a person's record (columns named ``*_key``) by a keyed
  pseudonym, HMAC-SHA256 with the warehouse key: stable across builds, so tables still join,
  but useless without the key, which stays with the platform (``var/warehouse.key``, or
  ``SOKHOE_WAREHOUSE_KEY``); the views select no names, no identifiers, birth month instead of
  birth date and the commune instead of the street address;
- adds statistics-office codes for the province and commune (``registry.places``), which
  indicators group by;
- keeps a watermark (the last ``meta.lastUpdated`` it saw) and, on the next run, re-derives only
  the resources changed since, from the store's history: their old rows go, their current rows
  come in (a deleted resource just goes);
- writes one Parquet file per view beside the DuckDB file, for Spark and other readers.

Facilities are not people: their ids stay as they are, so dashboards can name them.

See: https://build.fhir.org/ig/FHIR/sql-on-fhir-v2/
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import duckdb
import orjson
import pyarrow as pa  # type: ignore[import-untyped]

from sokhoe.registry.places import find_ward, resolve_province
from sokhoe.store.ports import FhirStore, StoredResource
from sokhoe.warehouse.notifiable import refresh_alerts
from sokhoe.warehouse.output import arrow_schema
from sokhoe.warehouse.viewdef import ViewDefinition, parse_view, run_view

BATCH: Final = 5000
ROW_KEY: Final = "_rid"
"""Hidden column: the pseudonym of the resource a row came from, to replace its rows."""

_WITH_AREA: Final = frozenset({"patient", "facility"})
"""Tables that get statistics-office province and commune codes beside the names."""

_DUCK_TYPES: Final = {
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "positiveInt": "BIGINT",
    "unsignedInt": "BIGINT",
    "integer64": "BIGINT",
    "decimal": "DOUBLE",
}


@cache
def views() -> tuple[ViewDefinition, ...]:
    """The warehouse's ViewDefinitions, parsed once, by name."""
    folder = resources.files("sokhoe.warehouse") / "views"
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".json")), key=lambda p: p.name)
    parsed = tuple(parse_view(orjson.loads(p.read_bytes())) for p in found)
    for v in parsed:
        if not v.name or not v.columns or v.columns[0].path.text != "getResourceKey()":
            raise ValueError(
                f"warehouse view {v.name!r}: needs a name (its table) and the resource key "
                "(getResourceKey()) as its first column"
            )
    return parsed


def table(view: ViewDefinition) -> str:
    """The table of a warehouse view (its name; checked present by :func:`views`)."""
    return view.name or view.resource.lower()


def warehouse_key(var_dir: Path, configured: str | None = None) -> bytes:
    """The pseudonymisation key: configured, or made once under ``var_dir`` (mode 0600)."""
    if configured:
        return configured.encode("utf-8")
    path = var_dir / "warehouse.key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


class Pseudonymiser:
    """Keyed, stable pseudonyms of resource keys (``Patient/123`` or ``123``)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def __call__(self, value: str) -> str:
        return hmac.digest(self.key, value.encode("utf-8"), "sha256").hex()[:32]


@cache
def _area_codes(province: str | None, commune: str | None) -> tuple[str | None, str | None]:
    found = resolve_province(province) if province else None
    if found is None:
        return None, None
    ward = find_ward(found, commune) if commune else None
    return found.code, ward.code if ward else None


def area_columns(view: ViewDefinition) -> list[str]:
    """The statistics-office code columns a view's table gets beside its own (may be none)."""
    return ["province_code", "commune_code"] if table(view) in _WITH_AREA else []


def deidentified_rows(
    view: ViewDefinition,
    resources: Iterable[Mapping[str, Any]],
    pseudonym: Callable[[str], str],
) -> Iterator[dict[str, Any]]:
    """The view's rows over ``resources``, keys pseudonymised, area codes and ``_rid`` added.

    A pure function of its inputs, so the DuckDB build and the Spark runner
    (:mod:`sokhoe.warehouse.runners.spark`) give the same rows for the same key.
    """
    first = view.columns[0].name
    personal = [c.name for c in view.columns if c.name.endswith("_key")]
    with_area = bool(area_columns(view))
    for row in run_view(view, resources):
        row[ROW_KEY] = pseudonym(f"{view.resource}/{row[first]}")
        for name in personal:
            if row[name] is not None:
                row[name] = pseudonym(str(row[name]))
        if with_area:
            row["province_code"], row["commune_code"] = _area_codes(
                row.get("province_name"), row.get("commune_name")
            )
        yield row


@dataclass
class BuildReport:
    full: bool
    seconds: float = 0.0
    resources: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    watermark: str | None = None
    alerts: int = 0
    """Rows of the outbreak-alert table recomputed by this build."""

    @property
    def rows_per_second(self) -> float:
        return sum(self.rows.values()) / self.seconds if self.seconds else 0.0


class Warehouse:
    """The DuckDB file (and Parquet copies) under ``folder``."""

    def __init__(self, folder: Path, key: bytes) -> None:
        self.folder = folder
        self.path = folder / "warehouse.duckdb"
        self.pseudonym = Pseudonymiser(key)

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.folder.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.path), read_only=read_only)

    # -- schema ---------------------------------------------------------------------------
    def _ensure(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Create the tables; True when a view's table was missing or had other columns (a
        newer view: an incremental refresh would only fill the new columns of changed
        resources, so the caller rebuilds in full)."""
        con.execute(
            "CREATE TABLE IF NOT EXISTS _build "
            "(watermark VARCHAR, built TIMESTAMPTZ, is_full BOOLEAN)"
        )
        existing: dict[str, list[str]] = {}
        for name, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall():
            existing.setdefault(str(name), []).append(str(column))
        changed = False
        for view in views():
            names = [c.name for c in view.columns] + area_columns(view) + [ROW_KEY]
            if existing.get(table(view)) == names:
                continue
            changed = True
            cols = [f'"{c.name}" {_DUCK_TYPES.get(c.type or "", "VARCHAR")}' for c in view.columns]
            cols += [f'"{name}" VARCHAR' for name in [*area_columns(view), ROW_KEY]]
            con.execute(f'DROP TABLE IF EXISTS "{table(view)}"')
            con.execute(f'CREATE TABLE "{table(view)}" ({", ".join(cols)})')
        return changed

    def _reference(
        self, con: duckdb.DuckDBPyConnection, population: Path | None, prices: Path | None
    ) -> None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS population "
            "(province_code VARCHAR, commune_code VARCHAR, population BIGINT)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS test_price (test VARCHAR, vnd BIGINT, description VARCHAR)"
        )
        if population is not None:
            con.execute("DELETE FROM population")
            con.execute(
                "INSERT INTO population SELECT province_code, commune_code, population "
                "FROM read_csv(?, header = true, "
                "columns = {'province_code': 'VARCHAR', 'commune_code': 'VARCHAR', "
                "'population': 'BIGINT'})",
                [str(population)],
            )
        count = con.execute("SELECT count(*) FROM test_price").fetchone()
        if prices is not None or not count or count[0] == 0:
            source = prices or Path(
                str(resources.files("sokhoe.warehouse") / "data" / "test_price.csv")
            )
            con.execute("DELETE FROM test_price")
            con.execute(
                "INSERT INTO test_price SELECT test, vnd, description "
                "FROM read_csv(?, header = true, "
                "columns = {'test': 'VARCHAR', 'vnd': 'BIGINT', 'description': 'VARCHAR'})",
                [str(source)],
            )

    def watermark(self) -> str | None:
        if not self.path.exists():
            return None
        with self.connect(read_only=True) as con:
            tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            if "_build" not in tables:
                return None
            row = con.execute("SELECT max(watermark) FROM _build").fetchone()
        return str(row[0]) if row and row[0] else None

    # -- rows -----------------------------------------------------------------------------
    def rows(
        self, view: ViewDefinition, stored: Iterable[StoredResource]
    ) -> Iterator[dict[str, Any]]:
        """The view's de-identified rows for these resource versions.

        Every warehouse view's first column is the resource's own key (``getResourceKey()``),
        so the rows of one resource are found again on the next refresh by its pseudonym.
        """
        contents = (res.content for res in stored if res.content is not None)
        return deidentified_rows(view, contents, self.pseudonym)

    def _insert(
        self, con: duckdb.DuckDBPyConnection, view: ViewDefinition, rows: list[dict[str, Any]]
    ) -> None:
        if not rows:
            return
        schema = arrow_schema(view.columns)
        extra = ["province_code", "commune_code"] if table(view) in _WITH_AREA else []
        for name in [*extra, ROW_KEY]:
            schema = schema.append(pa.field(name, pa.string()))
        batch = pa.Table.from_pylist(rows, schema=schema)
        con.register("_batch", batch)
        try:
            names = ", ".join(f'"{n}"' for n in schema.names)
            # table and column names come from our own packaged views, never from input
            con.execute(f'INSERT INTO "{table(view)}" ({names}) SELECT {names} FROM _batch')  # noqa: S608
        finally:
            con.unregister("_batch")

    # -- build ----------------------------------------------------------------------------
    def build(
        self,
        store: FhirStore,
        *,
        full: bool = False,
        population: Path | None = None,
        prices: Path | None = None,
        progress: Callable[[int], object] | None = None,
    ) -> BuildReport:
        """Build from scratch (``full``, or no watermark yet), else refresh what changed.

        ``population``: the denominator table (CSV ``province_code,commune_code,population``)
        that coverage is measured against; ``prices``: the reference price list of tests
        (CSV ``test,vnd,description``; default the packaged one). Both are replaced when given
        and kept from the last build otherwise.
        """
        started = time.perf_counter()
        since = None if full else self.watermark()
        now = datetime.now(UTC)
        with self.connect() as con:
            con.execute("BEGIN")
            try:
                if self._ensure(con):  # a new or changed view: every resource again
                    since = None
                report = BuildReport(full=since is None)
                self._reference(con, population, prices)
                if since is None:
                    newest = self._full(con, store, report, progress)
                else:
                    newest = self._incremental(con, store, since, report, progress)
                if report.full or report.resources:  # nothing changed: alerts stand
                    report.alerts = refresh_alerts(con)
                report.watermark = newest or since
                con.execute(
                    "INSERT INTO _build VALUES (?, ?, ?)", [report.watermark, now, report.full]
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if report.full or report.resources:
                self._parquet(con)
        report.seconds = time.perf_counter() - started
        return report

    def _full(
        self,
        con: duckdb.DuckDBPyConnection,
        store: FhirStore,
        report: BuildReport,
        progress: Callable[[int], object] | None,
    ) -> str | None:
        newest: str | None = None
        for view in views():
            con.execute(f'DELETE FROM "{table(view)}"')  # noqa: S608 (our own table names)
            count = 0
            for chunk in _chunks(store.iter_all(view.resource), BATCH):
                stamp = max(_instant(r) for r in chunk)
                newest = stamp if newest is None or stamp > newest else newest
                rows = list(self.rows(view, chunk))
                self._insert(con, view, rows)
                count += len(rows)
                report.resources += len(chunk)
                if progress:
                    progress(len(chunk))
            report.rows[table(view)] = count
        return newest

    def _incremental(
        self,
        con: duckdb.DuckDBPyConnection,
        store: FhirStore,
        since: str,
        report: BuildReport,
        progress: Callable[[int], object] | None,
    ) -> str | None:
        changed, newest = _changed_since(store, datetime.fromisoformat(since))
        by_type: dict[str, list[str]] = {}
        for rtype, rid in changed:
            by_type.setdefault(rtype, []).append(rid)
        for view in views():
            ids = by_type.get(view.resource, [])
            report.rows[table(view)] = 0
            if not ids:
                continue
            keys = [self.pseudonym(f"{view.resource}/{rid}") for rid in ids]
            con.execute(
                f'DELETE FROM "{table(view)}" WHERE "{ROW_KEY}" IN (SELECT unnest(?))',  # noqa: S608
                [keys],
            )
            for chunk in _chunks(iter(ids), BATCH):
                with store.begin() as tx:
                    current = tx.read_many([(view.resource, rid) for rid in chunk])
                rows = list(self.rows(view, current))
                self._insert(con, view, rows)
                report.rows[table(view)] += len(rows)
                report.resources += len(chunk)
                if progress:
                    progress(len(chunk))
        return newest

    def _parquet(self, con: duckdb.DuckDBPyConnection) -> None:
        out = self.folder / "parquet"
        out.mkdir(parents=True, exist_ok=True)
        for view in views():
            target = out / f"{table(view)}.parquet"
            con.execute(
                f'COPY (SELECT * EXCLUDE ("{ROW_KEY}") FROM "{table(view)}") '  # noqa: S608
                f"TO '{target}' (FORMAT parquet)"
            )


def _instant(res: StoredResource) -> str:
    return res.last_updated.astimezone(UTC).isoformat()


def _chunks(items: Iterator[Any] | Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _changed_since(store: FhirStore, since: datetime) -> tuple[set[tuple[str, str]], str | None]:
    """Every (type, id) with a version after ``since``, from the store's history, and the
    newest ``lastUpdated`` among them. A version exactly at ``since`` was already seen."""
    changed: set[tuple[str, str]] = set()
    newest: str | None = None
    offset, page = 0, 5000
    while True:
        with store.begin() as tx:
            found, total = tx.history(None, None, since, page, offset)
        for version in found:
            if version.last_updated.astimezone(UTC) <= since.astimezone(UTC):
                continue
            changed.add((version.resource_type, version.id))
            stamp = _instant(version)
            newest = stamp if newest is None or stamp > newest else newest
        offset += len(found)
        if not found or offset >= total:
            return changed, newest


__all__ = [
    "BuildReport",
    "Pseudonymiser",
    "Warehouse",
    "area_columns",
    "deidentified_rows",
    "table",
    "views",
    "warehouse_key",
]
