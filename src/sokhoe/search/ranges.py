"""The FHIR search prefixes over ranges, written once for every store.

A stored date covers ``[low, high)`` at its precision and so does a searched one; each prefix is
a condition on the two ranges. The SQL compiler evaluates it on columns (SQLAlchemy overloads
the comparison operators) and the memory store on floats, so both get it from here and cannot
disagree.
See: https://hl7.org/fhir/R4/search.html#prefix
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sokhoe.errors import InvalidRequest
from sokhoe.search.query import RangeValue


def range_condition(
    prefix: str,
    low: Any,
    high: Any,
    v: RangeValue,
    all_of: Callable[..., Any],
    negate: Callable[[Any], Any],
    now: float | None = None,
    any_of: Callable[..., Any] | None = None,
) -> Any:
    """The condition that stored ``[low, high)`` satisfies ``prefix`` + searched ``v``.

    ``all_of``/``negate``/``any_of`` are ``and_``/``not_``/``or_`` for SQL, ``all``-like and
    ``not`` in memory (``any_of`` then follows from them).
    ``ap`` is "within 10 % of the distance between the value and now", as the specification
    suggests for dates, and at least the value's own precision.
    """
    ql, qh = v.low, v.high
    if any_of is None:  # in memory, on booleans: "any" from "all" and "not"

        def any_of(*conditions: Any) -> Any:
            return negate(all_of(*(negate(c) for c in conditions)))

    match prefix:
        case "eq":
            # ``low < qh`` follows from the other two (low < high); in SQL it bounds the scan
            # of the (type, param, low) index on both sides instead of reading every later value
            return all_of(low >= ql, low < qh, high <= qh)
        case "ne":
            return negate(all_of(low >= ql, high <= qh))
        case "gt":
            return high > qh
        case "lt":
            return low < ql
        case "ge":
            # the range above the searched value meets the stored one, or the searched
            # range holds it whole (a stored range ending inside the searched one does not);
            # written so that SQL keeps the bound on one column
            return all_of(high > ql, any_of(high > qh, low >= ql))
        case "le":
            # the mirror image: below the searched value, or held whole by it
            return all_of(low < qh, any_of(low < ql, high <= qh))
        case "sa":
            return low >= qh
        case "eb":
            return high <= ql
        case "ap":
            current = time.time() if now is None else now
            margin = max(qh - ql, abs(current - ql) * 0.1)
            return all_of(low < qh + margin, high > ql - margin)
    raise InvalidRequest(f"Unknown search prefix '{prefix}'")
