"""The fixed cells an indicator publishes, computed for every area and period at once and
suppressed together, so that a filter can only pick among them.

A :class:`Cube` is one SQL query at the finest area the indicator uses (its *leaf*: province,
commune or facility) and its own period (month, ISO week, calendar year, or none for a
snapshot), with the other dimensions it is broken down by. From it, :func:`publish` makes
every cell of every published tier: the leaf cells, and the upper tiers as their sums (nation
= the provinces plus the people whose province is unknown; a province = its communes plus the
people whose commune is unknown). The unknown-area remainders are cells too, never published
and so hidden from the start. Every parent and its children form a group of
:mod:`sokhoe.warehouse.suppression`, which decides what to hide over the whole cube; a hidden
count, and every rate or cost computed from it, holds :data:`SUPPRESSED`, which every output
writes as :data:`SUPPRESSED_MARK` (never blank, never 0).

Periods are never added up: distinct people do not add across months (the same person is seen
in several), so there is no exact year to publish from months, and a total over a reader's
range of months is exactly what differencing needs. The period filter selects whole cells of
the indicator's own period.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Final, Literal, cast

import duckdb

from sokhoe.warehouse.suppression import Cell, Group, Key, suppress

Period = Literal["month", "week", "year"]
SUPPRESSED_MARK: Final = "x"
"""How a hidden cell reads in tables and downloads: the same for a small count and for a count
hidden to protect one (telling them apart would tell a reader which is small)."""


class _Suppressed:
    """The value of a hidden cell: not None (no value) and not 0 (a count of nobody); using it
    in arithmetic fails instead of counting it as zero."""

    _instance: _Suppressed | None = None

    def __new__(cls) -> _Suppressed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SUPPRESSED"

    def __str__(self) -> str:
        return SUPPRESSED_MARK


SUPPRESSED: Final = _Suppressed()


@dataclass(frozen=True)
class Tier:
    """One level of the area hierarchy: the columns that name a cell there (each tier's key
    extends the one above), names shown beside them, and public figures joined on the key."""

    name: str
    key: tuple[str, ...]
    labels: tuple[str, ...] = ()
    attach: str | None = None
    """SQL returning the key columns and public columns (the population) to add to each row."""


NATION: Final = Tier("nation", ())
PROVINCE: Final = Tier("province", ("province_code",), ("province",))
COMMUNE: Final = Tier("commune", ("province_code", "commune_code"), ("province", "commune"))


@dataclass(frozen=True)
class Rate:
    """``100 * numerator / denominator``, one decimal, computed in every tier after the sums."""

    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class Cube:
    """What one indicator (or a pair sharing its cells) publishes; see the module docstring."""

    name: str
    sql: str
    """Leaf rows: each tier's key columns (NULL where unknown), the labels, the period column,
    the dimensions and the measures. No parameters: every area and period at once."""
    tiers: tuple[Tier, ...]
    """From the top; the last is the leaf. More than one: the measures must add up."""
    period: Period | None = None
    dimensions: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    """Measures counting people (the first decides whether a row exists), and counts of events
    that are at least one per person: protected."""
    parts: tuple[tuple[str, str], ...] = ()
    """(total, part): ``total - part`` counts people too (not vaccinated, not controlled) and is
    protected like the counts."""
    derived: tuple[str, ...] = ()
    """Other measures computed from the protected people (visits, costs): hidden with them."""
    rates: tuple[Rate, ...] = ()
    tie: tuple[str, ...] = ()
    """Dimensions across which a count repeats (children per cohort, on each vaccine's row): the
    rows differing only in them are hidden together."""
    guards: tuple[tuple[str, str], ...] = ()
    """(measure, column): the measure is computed from counts beyond its own row, and is shown
    only where ``column`` (the smallest of those counts that is not zero) is not small."""

    @property
    def hidden_with_row(self) -> tuple[str, ...]:
        return (*self.counts, *self.derived, *(r.name for r in self.rates))


_CACHE_SIZE: Final = 64
_cache: OrderedDict[tuple[Any, ...], dict[str, list[dict[str, Any]]]] = OrderedDict()
_cache_lock = threading.Lock()


def publish(
    con: duckdb.DuckDBPyConnection, cube: Cube, threshold: int
) -> dict[str, list[dict[str, Any]]]:
    """Every published row of every tier of ``cube``, suppressed together (by tier name).

    The rows are shared and must not be changed. They are kept for the warehouse file as it is
    (its path, size and modification time, its last build) and the day (cohorts follow the
    calendar): a page, its downloads and every filter of it read the same cells, computed once.
    """
    stamp = _stamp(con)
    key = None if stamp is None else (*stamp, date.today(), cube, threshold)
    if key is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    found = _publish(con, cube, threshold)
    if key is not None:
        with _cache_lock:
            _cache[key] = found
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return found


def forget() -> None:
    """Empty the cache of published cells (benchmarks time a first request after a build)."""
    with _cache_lock:
        _cache.clear()


def _stamp(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """What identifies the warehouse's content now, or None (in memory, or never built)."""
    try:
        row = con.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        build = con.execute("SELECT count(*), epoch(max(built)) FROM _build").fetchone()
    except duckdb.Error:
        return None
    if not row or not row[0] or not Path(str(row[0])).is_file():
        return None
    info = Path(str(row[0])).stat()
    return (str(row[0]), info.st_size, info.st_mtime_ns, build)


def _publish(
    con: duckdb.DuckDBPyConnection, cube: Cube, threshold: int
) -> dict[str, list[dict[str, Any]]]:
    cursor = con.execute(cube.sql)
    names = [d[0] for d in cursor.description or []]
    cells: dict[Key, dict[str, Any]] = {}
    tier_of: dict[Key, int] = {}
    residuals: set[Key] = set()
    children: dict[Key, dict[Key, None]] = {}  # ordered sets
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        depth = max(_depth(cube.tiers, row), 0)  # an unknown top tier: a row of its own
        keys = [_key(cube, i, row) for i in range(depth + 1)]
        for i, key in enumerate(keys):
            _add(cells, key, row, cube, cube.tiers[i])
            tier_of[key] = i
            if i:
                children.setdefault(keys[i - 1], {})[key] = None
        known = all(row[c] is not None for c in cube.tiers[depth].key)
        if known and depth < len(cube.tiers) - 1:  # a known area, the next tier unknown
            rest = ("unknown", keys[-1])
            _add(cells, rest, row, cube, None)
            residuals.add(rest)
            children.setdefault(keys[-1], {})[rest] = None
    groups = [Group(parent, tuple(kids)) for parent, kids in children.items()]
    hidden = _hidden(cube, cells, residuals, groups, threshold)
    attached = {t.name: _attach(con, t) for t in cube.tiers if t.attach}
    out: dict[str, list[dict[str, Any]]] = {t.name: [] for t in cube.tiers}
    for key, row in cells.items():
        if key in residuals:
            continue
        tier = cube.tiers[tier_of[key]]
        published = dict(row)
        if tier.name in attached:
            columns, by_key = attached[tier.name]
            found = by_key.get(tuple(row[c] for c in tier.key), {})
            published.update({c: found.get(c) for c in columns})
        if cube.counts:
            published["suppressed"] = key in hidden
        if key in hidden:
            for column in (*cube.counts, *cube.derived):
                published[column] = SUPPRESSED
        for rate in cube.rates:
            published[rate.name] = _rate(published[rate.numerator], published[rate.denominator])
        if threshold > 1:
            for measure, guard in cube.guards:
                if published.get(guard) is not None and published[guard] < threshold:
                    published[measure] = SUPPRESSED
        out[tier.name].append(published)
    return out


def _depth(tiers: tuple[Tier, ...], row: dict[str, Any]) -> int:
    """The deepest tier whose key is known in ``row`` (-1: not even the top one)."""
    depth = -1
    for i, tier in enumerate(tiers):
        if any(row[c] is None for c in tier.key):
            break
        depth = i
    return depth


def _key(cube: Cube, tier: int, row: dict[str, Any]) -> Key:
    area = tuple(row[c] for c in cube.tiers[tier].key)
    period = row[cube.period] if cube.period else None
    return (cube.tiers[tier].name, area, period, tuple(row[d] for d in cube.dimensions))


def _add(
    cells: dict[Key, dict[str, Any]],
    key: Key,
    row: dict[str, Any],
    cube: Cube,
    tier: Tier | None,
) -> None:
    """Add a leaf row into the cell ``key`` (its measures summed, its names kept)."""
    found = cells.get(key)
    if found is None:
        kept = (*tier.key, *tier.labels) if tier else ()
        period = (cube.period,) if cube.period else ()
        cells[key] = {
            **{c: row.get(c) for c in (*kept, *period, *cube.dimensions)},
            **{m: row[m] for m in cube.measures},
        }
        return
    for m in cube.measures:
        found[m] = None if found[m] is None and row[m] is None else (found[m] or 0) + (row[m] or 0)
    for label in tier.labels if tier else ():
        if found[label] is None:
            found[label] = row.get(label)


def _hidden(
    cube: Cube,
    cells: dict[Key, dict[str, Any]],
    residuals: set[Key],
    groups: list[Group],
    threshold: int,
) -> frozenset[Key]:
    if not cube.counts:  # facilities, not people
        return frozenset()

    def count(row: dict[str, Any], column: str) -> int:
        return int(row[column] or 0)

    protected: dict[Key, Cell] = {}
    for key, row in cells.items():
        values = [count(row, c) for c in cube.counts]
        values += [count(row, total) - count(row, part) for total, part in cube.parts]
        published = key not in residuals
        floors = [1 if published else 0] + [0] * (len(values) - 1)
        protected[key] = Cell(tuple(values), tuple(floors), published)
    return suppress(protected, groups, threshold, _ties(cube, cells))


def _ties(cube: Cube, cells: dict[Key, dict[str, Any]]) -> Iterable[list[Key]]:
    if not cube.tie:
        return []
    kept = [i for i, d in enumerate(cube.dimensions) if d not in cube.tie]
    found: dict[Key, list[Key]] = {}
    for key in cells:
        if key[0] == "unknown":  # type: ignore[index]  # residuals are hidden anyway
            continue
        tier, area, period, dims = cast(tuple[str, tuple[Any, ...], Any, tuple[Any, ...]], key)
        found.setdefault((tier, area, period, tuple(dims[i] for i in kept)), []).append(key)
    return [keys for keys in found.values() if len(keys) > 1]


def _attach(
    con: duckdb.DuckDBPyConnection, tier: Tier
) -> tuple[list[str], dict[tuple[Any, ...], dict[str, Any]]]:
    """The public columns of ``tier.attach`` and their values by the tier's key."""
    cursor = con.execute(tier.attach or "")
    width = len(tier.key)
    columns = [d[0] for d in cursor.description or []][width:]
    found = {
        tuple(values[:width]): dict(zip(columns, values[width:], strict=True))
        for values in cursor.fetchall()
    }
    return columns, found


def _rate(numerator: Any, denominator: Any) -> Any:
    if numerator is SUPPRESSED or denominator is SUPPRESSED:
        return SUPPRESSED
    if numerator is None or not denominator:
        return None
    exact = Decimal(int(numerator) * 100) / Decimal(int(denominator))
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


__all__ = [
    "COMMUNE",
    "NATION",
    "PROVINCE",
    "SUPPRESSED",
    "SUPPRESSED_MARK",
    "Cube",
    "Period",
    "Rate",
    "Tier",
    "forget",
    "publish",
]
