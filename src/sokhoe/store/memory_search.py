"""Evaluate a :class:`~sokhoe.search.query.SearchQuery` over index rows held in Python dicts.

The reference semantics of search for :class:`~sokhoe.store.memory.MemoryStore`: each rule
mirrors one clause of ``store/sql/search.py`` (criteria ANDed, values ORed, ``:not`` as "no
row matches", ranges compared as half-open ``[low, high)`` per prefix, sort keys as the
min/max of a parameter's rows with missing values last), so a difference between the two is a
bug in one of them. Values were normalised once by ``search/index.py`` (rows) and
``search/parse.py`` (query), so matching here is plain comparison.
See: https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sokhoe.errors import InvalidRequest
from sokhoe.search.query import (
    Criterion,
    Include,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from sokhoe.search.ranges import range_condition
from sokhoe.search.rows import (
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from sokhoe.store.ports import StoredResource

Key = tuple[str, str]
"""(resource type, id)."""

ROWS_BY_PARAM_TYPE = {
    "string": "strings",
    "token": "tokens",
    "date": "dates",
    "reference": "references",
    "quantity": "quantities",
    "number": "numbers",
    "uri": "uris",
}
"""Search parameter type -> the :class:`IndexRows` list its values are in."""

SORT_FIELD = {
    "string": "norm",
    "token": "code",
    "date": "low",
    "reference": "target_id",
    "quantity": "value",
    "number": "value",
    "uri": "value",
}
"""The row field a sort on a parameter of that type orders by (``high`` for a date, descending)."""

PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
_EMPTY = IndexRows()


@dataclass(slots=True)
class TypeTable:
    """Everything stored for one resource type; replaced, never mutated, once committed."""

    current: dict[str, StoredResource] = field(default_factory=dict)
    index: dict[str, IndexRows] = field(default_factory=dict)
    versions: dict[str, tuple[StoredResource, ...]] = field(default_factory=dict)
    """Every version of each id, oldest first (deletions included)."""

    def copy(self) -> TypeTable:
        return TypeTable(dict(self.current), dict(self.index), dict(self.versions))


def in_range(prefix: str, low: float, high: float, v: RangeValue) -> bool:
    """Compare a stored range [low, high) with a searched one (``search/ranges.py``)."""
    return bool(range_condition(prefix, low, high, v, _all_of, operator.not_))


def _all_of(*conditions: bool) -> bool:
    return all(conditions)


def at_point(prefix: str, x: float, v: RangeValue) -> bool:
    """Numbers and quantities are points; the searched value has an implicit precision range."""
    if prefix == "eq":
        return v.low <= x < v.high
    if prefix == "ne":
        return not v.low <= x < v.high
    if prefix == "ap":
        margin = abs((v.low + v.high) / 2) * 0.1
        return v.low - margin <= x < v.high + margin
    return in_range(prefix, x, x, v)


def row_matches(row: object, modifier: str | None, value: Value) -> bool:
    """Whether one index row satisfies one searched value (``store/sql/search._value_clause``)."""
    if isinstance(value, StringValue) and isinstance(row, StringRow):
        if modifier == "exact":
            return row.exact == value.exact
        if modifier == "contains":
            return value.norm in row.norm
        return row.norm.startswith(value.norm)
    if isinstance(value, TokenValue) and isinstance(row, TokenRow):
        if modifier == "text":
            return row.text is not None and (value.text or "") in row.text
        if value.code is not None and row.code != value.code:
            return False
        if value.system == "":
            return row.system is None
        return value.system is None or row.system == value.system
    if isinstance(value, RangeValue):
        if isinstance(row, DateRow):
            return in_range(value.prefix, row.low, row.high, value)
        if isinstance(row, NumberRow):
            return at_point(value.prefix, row.value, value)
        if isinstance(row, QuantityRow):
            return (
                at_point(value.prefix, row.value, value)
                and (not value.system or row.system == value.system)
                and (not value.code or value.code in (row.code, row.unit))
            )
    if isinstance(value, ReferenceValue) and isinstance(row, ReferenceRow):
        if value.target_id is None:
            return row.url == value.url
        return row.target_id == value.target_id and (
            not value.target_type or row.target_type == value.target_type
        )
    if isinstance(value, UriValue) and isinstance(row, UriRow):
        if modifier == "below":
            return row.value.startswith(value.value)
        if modifier == "above":
            return value.value.startswith(row.value)
        if modifier == "contains":
            return value.value in row.value
        return row.value == value.value
    raise InvalidRequest(f"Unsupported search value {value!r}")


class Searcher:
    """Matches, orders and follows includes over one consistent set of :class:`TypeTable`.

    ``judge`` (a caller's confinement, ``store/memory_confine.py``) decides which resources
    exist for this search at all, chains and ``_has`` included, as the SQL store's ``WHERE``.
    """

    def __init__(
        self,
        tables: Mapping[str, TypeTable],
        judge: Callable[[StoredResource], bool] | None = None,
    ) -> None:
        self.tables = tables
        self.judge = judge

    def _index(self, key: Key) -> IndexRows:
        table = self.tables.get(key[0])
        return table.index.get(key[1], _EMPTY) if table else _EMPTY

    def _rows(self, key: Key, attr: str, param: str) -> list[Any]:
        return [r for r in getattr(self._index(key), attr) if r.param == param]

    # -- matching ----------------------------------------------------------------------
    def keys(self, query: SearchQuery) -> list[Key]:
        """The (type, id) of every current, non-deleted resource matching ``query``."""
        if query.resource_type is not None:
            types = [query.resource_type]
        else:
            types = list(query.types) if query.types else sorted(self.tables)
        tests = [self._criterion(query.resource_type, c) for c in query.criteria]
        ids = None if query.ids is None else set(query.ids)
        patients = None if query.patient_ids is None else set(query.patient_ids)
        out: list[Key] = []
        for rtype in dict.fromkeys(types):
            table = self.tables.get(rtype)
            if table is None:
                continue
            for rid, res in table.current.items():
                if res.deleted or (ids is not None and rid not in ids):
                    continue
                if patients is not None and res.patient_id not in patients:
                    continue
                if self.judge is not None and not self.judge(res):
                    continue
                key = (rtype, rid)
                if all(test(key) for test in tests):
                    out.append(key)
        return out

    def _criterion(self, rtype: str | None, crit: Criterion) -> Callable[[Key], bool]:
        if crit.has is not None:
            has = crit.has
            refs = [
                ref
                for src in self.keys(has.query)
                for ref in self._rows(src, "references", has.reference_param)
                if ref.target_id is not None
            ]
            if rtype is None:  # as the SQL: any type whose id is referenced
                target_ids = {ref.target_id for ref in refs}
                return lambda key: key[1] in target_ids
            targets = {(ref.target_type, ref.target_id) for ref in refs}
            return lambda key: key in targets
        attr = ROWS_BY_PARAM_TYPE.get(crit.type)
        if attr is None:
            raise InvalidRequest(f"Search parameter type '{crit.type}' is not supported")
        code = crit.code
        if crit.missing is not None:
            missing = crit.missing
            return lambda key: bool(self._rows(key, attr, code)) != missing
        if crit.chain is not None:
            chain_type = crit.chain.resource_type
            chain_ids = {rid for _, rid in self.keys(crit.chain)}
            return lambda key: any(
                r.target_type == chain_type and r.target_id in chain_ids
                for r in self._rows(key, attr, code)
            )
        for v in crit.values:
            if isinstance(v, RangeValue) and v.prefix not in PREFIXES:
                raise InvalidRequest(f"Unknown search prefix '{v.prefix}'")
        negate = crit.modifier == "not"
        modifier = crit.modifier
        only_type = (
            modifier if crit.type == "reference" and modifier and modifier[:1].isupper() else None
        )

        def test(key: Key) -> bool:
            found = any(
                (only_type is None or row.target_type == only_type)
                and any(row_matches(row, modifier, v) for v in crit.values)
                for row in self._rows(key, attr, code)
            )
            return found != negate

        return test

    # -- ordering ----------------------------------------------------------------------
    def ordered(self, query: SearchQuery, keys: list[Key]) -> list[Key]:
        """``keys`` in the order of ``_sort``, then type (system search) and id; nulls last."""
        out = sorted(keys)
        values = [self._sort_value(query.resource_type, sk) for sk in query.sort]
        for sk, value in reversed(list(zip(query.sort, values, strict=True))):
            known = [k for k in out if value(k) is not None]
            unknown = [k for k in out if value(k) is None]
            out = sorted(known, key=value, reverse=sk.descending) + unknown
        return out

    def _sort_value(self, rtype: str | None, sk: SortKey) -> Callable[[Key], Any]:
        if sk.code == "_id":
            return lambda key: key[1]
        if sk.code == "_lastUpdated":
            return lambda key: self.tables[key[0]].current[key[1]].last_updated
        attr = ROWS_BY_PARAM_TYPE.get(sk.type)
        if attr is None:
            raise InvalidRequest(f"Cannot sort on '{sk.code}' (type {sk.type})")
        name = "high" if sk.type == "date" and sk.descending else SORT_FIELD[sk.type]
        pick = max if sk.descending else min

        def value(key: Key) -> Any:
            found = [getattr(r, name) for r in self._rows(key, attr, sk.code)]
            found = [x for x in found if x is not None]
            return pick(found) if found else None

        return value

    # -- includes ----------------------------------------------------------------------
    def include_keys(self, inc: Include, frontier: list[StoredResource]) -> list[Key]:
        """Targets of ``inc.source_type:inc.param`` references from the frontier."""
        keys: list[Key] = []
        for m in frontier:
            if m.resource_type != inc.source_type:
                continue
            for r in self._index((m.resource_type, m.id)).references:
                if r.target_id is None or r.target_type is None:
                    continue
                if inc.param != "*" and r.param != inc.param:
                    continue
                if inc.target_type and r.target_type != inc.target_type:
                    continue
                keys.append((r.target_type, r.target_id))
        return keys

    def revinclude_keys(self, inc: Include, frontier: list[StoredResource]) -> list[Key]:
        """Resources of ``inc.source_type`` whose ``inc.param`` refers to one of the frontier."""
        wanted = {
            (m.resource_type, m.id)
            for m in frontier
            if not inc.target_type or inc.target_type == m.resource_type
        }
        table = self.tables.get(inc.source_type)
        if not wanted or table is None:
            return []
        return [
            (inc.source_type, rid)
            for rid, rows in table.index.items()
            if any(
                (r.target_type, r.target_id) in wanted
                and (inc.param == "*" or r.param == inc.param)
                for r in rows.references
            )
        ]
