"""Id searches compiled once per *shape*, then run with new values.

Building a SQLAlchemy statement costs far more than SQLite takes to answer it: the profile of
the HL7 v2 listener (README, "HL7 v2 over MLLP") showed a third of each message's time in
SQLAlchemy's expression construction, most of it the identifier look-ups and the patient
index's blocking searches, which repeat the same few shapes with different values.

A query's shape is everything except its values: the type, and per criterion the parameter,
its type and modifier, and per value which fields are set (a token with or without a system,
a date's prefix). The statement of a shape is built by the ordinary :class:`Compiler` from a
*template* of the query whose values are bound parameters (``_Slot``), so the SQL is the same
code's, not a second implementation; only shapes whose building treats the values as plain
data (no ``LIKE`` text made from them, no arithmetic) are cached, the rest compile as before.
Confined searches (a caller's :class:`~sokhoe.store.ports.Confinement`) are never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock
from typing import Any, cast

from sqlalchemy import BindParameter, Select, bindparam

from sokhoe.search.query import (
    Criterion,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from sokhoe.store.sql.identity import system_id
from sokhoe.store.sql.schema import resource

MAX_CHAR = "\U0010ffff"
CAPACITY = 512
"""Shapes kept (least recently used dropped): a server sees a few dozen."""

_SAFE_MODIFIERS: dict[str, frozenset[str | None]] = {
    "string": frozenset({None, "exact"}),
    "token": frozenset({None}),
    "date": frozenset({None}),
    "reference": frozenset({None}),
    "uri": frozenset({None, "below"}),
}


class _Slot:
    """A value of the template: a bound parameter to SQLAlchemy (``__clause_element__``),
    and, for a prefix search, a second one for its upper bound (value + U+10FFFF)."""

    __slots__ = ("bind", "upper")

    def __init__(self, name: str) -> None:
        self.bind: BindParameter[Any] = bindparam(name)
        self.upper: BindParameter[Any] = bindparam(f"{name}u")

    def __clause_element__(self) -> BindParameter[Any]:
        return self.bind


class _Template:
    """Builds the template of one query and collects the parameter values in order."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def slot(self, value: Any, *, prefix: bool = False) -> Any:
        name = f"p{len(self.params)}"
        s = _Slot(name)
        self.params[name] = value
        if prefix:
            self.params[f"{name}u"] = value + MAX_CHAR
        return s

    def value(self, ptype: str, modifier: str | None, v: Value) -> tuple[Any, Value] | None:
        """(shape, template value), or None when this value's SQL is not a pure function of
        bound parameters."""
        if isinstance(v, StringValue) and ptype == "string":
            if modifier == "exact":
                return ("s=", StringValue(norm="", exact=self.slot(v.exact)))
            return ("s^", StringValue(norm=self.slot(v.norm, prefix=True), exact=""))
        if isinstance(v, TokenValue) and ptype == "token":
            code = None if v.code is None else self.slot(v.code)
            if v.system:  # a system: its number is a parameter too
                return ("t", v.code is None, "|"), TokenValue(self.slot(system_id(v.system)), code)
            return ("t", v.code is None, v.system), TokenValue(v.system, code)
        if isinstance(v, RangeValue) and ptype == "date" and v.prefix != "ap":
            low, high = self.slot(v.low), self.slot(v.high)
            return ("d", v.prefix), RangeValue(v.prefix, low, high)
        if isinstance(v, ReferenceValue) and ptype == "reference":
            if v.target_id is None:
                return ("r-url",), ReferenceValue(None, None, self.slot(v.url))
            target_type = self.slot(v.target_type) if v.target_type else None
            return ("r", bool(v.target_type)), ReferenceValue(target_type, self.slot(v.target_id))
        if isinstance(v, UriValue) and ptype == "uri":
            return ("u", modifier), UriValue(self.slot(v.value, prefix=modifier == "below"))
        return None


def template(query: SearchQuery) -> tuple[tuple[Any, ...], SearchQuery, dict[str, Any]] | None:
    """(shape, template query, parameter values) of a cacheable query, else None."""
    if (
        query.resource_type is None
        or query.ids is not None
        or query.patient_ids is not None
        or not query.criteria
    ):
        return None
    dates = [c.code for c in query.criteria if c.type == "date"]
    if "_lastUpdated" in dates or len(set(dates)) < len(dates):
        # made into datetimes, or a two-sided range whose bounds the compiler works out
        return None
    t = _Template()
    shape: list[Any] = [query.resource_type]
    criteria: list[Criterion] = []
    for crit in query.criteria:
        if (
            crit.has is not None
            or crit.chain is not None
            or crit.missing is not None
            or crit.modifier not in _SAFE_MODIFIERS.get(crit.type, frozenset())
            or not crit.values
        ):
            return None
        values: list[Value] = []
        shapes: list[Any] = []
        for v in crit.values:
            made = t.value(crit.type, crit.modifier, v)
            if made is None:
                return None
            shapes.append(made[0])
            values.append(made[1])
        shape.append((crit.code, crit.type, crit.modifier, tuple(shapes)))
        criteria.append(Criterion(crit.code, crit.type, crit.modifier, values))
    return tuple(shape), SearchQuery(query.resource_type, criteria), t.params


class IdStatements:
    """``SELECT id … ORDER BY id LIMIT n`` per shape, limit and driver, and the driver probes
    per shape (thread-safe LRU)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def cacheable(query: SearchQuery) -> bool:
        """Whether a query's id statement is kept per shape."""
        return template(query) is not None

    def statement(
        self, query: SearchQuery, limit: int, driver: int | None = None
    ) -> tuple[Select[Any], dict[str, Any]] | None:
        """The cached statement and this query's parameters, or None (compile it as usual)."""
        from sokhoe.store.sql.search import Compiler  # the one compiler (imports this module)

        return self._cached(
            query,
            ("ids", limit, driver),
            lambda tmpl: Compiler(None).ids(tmpl, driver).order_by(resource.c.id).limit(limit),
        )

    def probes(
        self, query: SearchQuery, rows: int
    ) -> tuple[list[Select[Any]], dict[str, Any]] | None:
        """The cached driver probes (``count_probes``) and this query's parameters, or None."""
        from sokhoe.store.sql.search import Compiler, count_probes

        return self._cached(
            query, ("probes", rows), lambda tmpl: count_probes(Compiler(None), tmpl, rows)
        )

    def _cached(
        self, query: SearchQuery, kind: tuple[Any, ...], build: Callable[[SearchQuery], Any]
    ) -> tuple[Any, dict[str, Any]] | None:
        made = template(query)
        if made is None:
            return None
        shape, tmpl, params = made
        key = (shape, *kind)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return found, params
        built = build(tmpl)
        with self._lock:
            self.misses += 1
            self._cache[key] = built
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return built, params


def system_key(system: Any) -> Any:
    """What ``sp_token.system`` holds for ``system``: its number (``identity.system_id``), or
    the template's parameter that carries it."""
    if isinstance(system, _Slot):
        return system
    return system_id(cast(str, system))


def prefix_upper(value: Any) -> Any:
    """The exclusive upper bound of a prefix search on ``value`` (see ``_prefix``)."""
    if isinstance(value, _Slot):
        return value.upper
    return cast(str, value) + MAX_CHAR


ID_STATEMENTS = IdStatements()
"""The process's cache (statements hold no connection and are safe to share)."""
