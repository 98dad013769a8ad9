"""A parsed FHIR search, independent of any database.

``search/parse.py`` builds it from the HTTP query string; each store compiles it
(``store/sql/search.py`` to SQL). Values are already parsed per parameter type so the
compilers never see raw strings.
See: https://hl7.org/fhir/R4/search.html
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StringValue:
    norm: str
    exact: str


@dataclass(frozen=True, slots=True)
class TokenValue:
    system: str | None
    """None: any system; "" : explicitly no system (``|code``)."""
    code: str | None
    text: str | None = None
    """For ``:text``: the normalised text to look for."""


@dataclass(frozen=True, slots=True)
class RangeValue:
    """A date, number or quantity with its comparison prefix.

    ``low``/``high`` is the half-open range the value stands for at its precision.
    """

    prefix: str
    low: float
    high: float
    system: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    target_type: str | None
    target_id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UriValue:
    value: str


Value = StringValue | TokenValue | RangeValue | ReferenceValue | UriValue


@dataclass(slots=True)
class Criterion:
    """One ``param[:modifier]=v1,v2`` (values are ORed; criteria are ANDed).

    A chained criterion (``subject:Patient.name=x``) has ``chain`` set: the reference values
    are then the resources of ``chain.resource_type`` matching ``chain.criterion``. A reverse
    chain (``_has:Observation:patient:code=x``) has ``has`` set.
    """

    code: str
    type: str
    modifier: str | None
    values: list[Value]
    missing: bool | None = None
    chain: SearchQuery | None = None
    has: HasClause | None = None


@dataclass(slots=True)
class HasClause:
    """``_has:Type:param:criterion``: resources referenced by ``Type.param`` matching it."""

    resource_type: str
    reference_param: str
    query: SearchQuery


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    type: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    """``_include=Source:param[:Target]`` or ``_revinclude``; ``param='*'`` for all."""

    source_type: str
    param: str
    target_type: str | None
    iterate: bool = False


@dataclass(slots=True)
class SearchQuery:
    resource_type: str | None
    """None for a system-level search across all types."""
    criteria: list[Criterion] = field(default_factory=list)
    ids: list[str] | None = None
    """``_id`` values, kept apart because the store filters on its primary key."""
    sort: list[SortKey] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    total: str = "accurate"
    """``none``, ``estimate`` or ``accurate``."""
    summary: str | None = None
    elements: list[str] | None = None
    types: list[str] | None = None
    """``_type`` for system-level search."""
    patient_ids: list[str] | None = None
    """Restrict to these patients' compartments (``Patient/x/Observation?…``)."""
    ignored: list[str] = field(default_factory=list)
    """Parameters that were not understood (reported in an OperationOutcome)."""
