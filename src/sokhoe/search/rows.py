"""The index rows extracted from one resource, one list per search-parameter type.

These are the contract between extraction (``search/index.py``), the stores that persist them
(``store/sql`` writes one table per list, in the same transaction as the resource) and the query
compilers. Values are already normalised the way queries compare them:

* strings: ``norm`` is accent-folded, lower-cased, whitespace-collapsed (``Nguyễn Văn`` ->
  ``nguyen van``); ``exact`` is the original text for ``:exact``;
* dates: ``low``/``high`` are the instants (seconds since the epoch, UTC, half-open
  ``[low, high)``) the value covers at its precision, so ``1990`` covers the whole year;
* references: ``target_type``/``target_id`` for local references, ``url`` for the raw text;
* tokens: ``system``/``code`` (either may be None), ``text`` the normalised display/text.

Rows are named tuples: their values in order are the columns of their table after the
resource keys, so a store inserts them as they are, and they cross process boundaries (bulk
loads index in worker processes) at the cost of plain tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

OF_TYPE = ":of-type"
"""Suffix of the token rows that ``identifier:of-type`` searches: param ``identifier:of-type``,
system ``[type system]|[type code]``, code the identifier's value."""


class StringRow(NamedTuple):
    param: str
    norm: str
    exact: str


class TokenRow(NamedTuple):
    param: str
    system: str | None
    code: str | None
    text: str | None = None


class DateRow(NamedTuple):
    param: str
    low: float
    high: float


class ReferenceRow(NamedTuple):
    param: str
    target_type: str | None
    target_id: str | None
    url: str


class QuantityRow(NamedTuple):
    param: str
    value: float
    system: str | None
    code: str | None
    unit: str | None


class NumberRow(NamedTuple):
    param: str
    value: float


class UriRow(NamedTuple):
    param: str
    value: str


@dataclass(slots=True)
class IndexRows:
    """Everything one resource contributes to the search index."""

    strings: list[StringRow] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    dates: list[DateRow] = field(default_factory=list)
    references: list[ReferenceRow] = field(default_factory=list)
    quantities: list[QuantityRow] = field(default_factory=list)
    numbers: list[NumberRow] = field(default_factory=list)
    uris: list[UriRow] = field(default_factory=list)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as plain tuples: rebuilding a named tuple per row costs far less than
        pickle's generic path, which dominated the transfer from bulk-load workers."""
        return (
            _unpack,
            (
                [tuple(r) for r in self.strings],
                [tuple(r) for r in self.tokens],
                [tuple(r) for r in self.dates],
                [tuple(r) for r in self.references],
                [tuple(r) for r in self.quantities],
                [tuple(r) for r in self.numbers],
                [tuple(r) for r in self.uris],
            ),
        )


def _unpack(
    strings: list[Any],
    tokens: list[Any],
    dates: list[Any],
    references: list[Any],
    quantities: list[Any],
    numbers: list[Any],
    uris: list[Any],
) -> IndexRows:
    return IndexRows(
        list(map(StringRow._make, strings)),
        list(map(TokenRow._make, tokens)),
        list(map(DateRow._make, dates)),
        list(map(ReferenceRow._make, references)),
        list(map(QuantityRow._make, quantities)),
        list(map(NumberRow._make, numbers)),
        list(map(UriRow._make, uris)),
    )
