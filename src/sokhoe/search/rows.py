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
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StringRow:
    param: str
    norm: str
    exact: str


@dataclass(frozen=True, slots=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class DateRow:
    param: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    param: str
    target_type: str | None
    target_id: str | None
    url: str


@dataclass(frozen=True, slots=True)
class QuantityRow:
    param: str
    value: float
    system: str | None
    code: str | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class NumberRow:
    param: str
    value: float


@dataclass(frozen=True, slots=True)
class UriRow:
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
