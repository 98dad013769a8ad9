"""The prefix semantics shared by the SQL and memory stores."""

from __future__ import annotations

import operator

import pytest

from sokhoe.errors import InvalidRequest
from sokhoe.search.index import date_range
from sokhoe.search.query import RangeValue
from sokhoe.search.ranges import range_condition


def _match(prefix: str, stored: str, searched: str, now: float | None = None) -> bool:
    low, high = date_range(stored)
    ql, qh = date_range(searched)
    v = RangeValue(prefix, ql, qh)
    return bool(range_condition(prefix, low, high, v, lambda *c: all(c), operator.not_, now))


@pytest.mark.parametrize(
    ("prefix", "stored", "searched", "expected"),
    [
        ("eq", "1990-05-12", "1990-05", True),
        ("eq", "1990-05", "1990-05-12", False),
        ("ne", "1990-05-12", "1990-05", False),
        ("gt", "1990-06-01", "1990-05", True),
        ("gt", "1990-05-31", "1990-05", False),
        ("ge", "1990-05-31", "1990-05", True),
        ("lt", "1990-04-30", "1990-05", True),
        ("le", "1990-05-01", "1990-05", True),
        ("le", "1990-06-01", "1990-05", False),
        ("sa", "1990-06-01", "1990-05", True),
        ("eb", "1990-04-30", "1990-05", True),
        ("eb", "1990-05-01", "1990-05", False),
    ],
)
def test_prefixes(prefix: str, stored: str, searched: str, expected: bool) -> None:
    assert _match(prefix, stored, searched) is expected


def test_ap_is_ten_percent_of_the_distance_to_now() -> None:
    now = date_range("2026-11-23")[0]
    # ten years before now: ±1 year around the searched day
    assert _match("ap", "2016-06-01", "2016-11-23", now)
    assert not _match("ap", "2015-06-01", "2016-11-23", now)
    # close to now the margin shrinks to the value's own precision
    assert not _match("ap", "2026-10-01", "2026-11-20", now)


def test_unknown_prefix() -> None:
    with pytest.raises(InvalidRequest):
        _match("xx", "2020", "2020")
