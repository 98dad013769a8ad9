"""A Subscription's ``criteria`` (a FHIR search such as ``Observation?patient=Patient/1``):
checked once when it is registered, then evaluated against each changed resource.

Evaluation runs the very search the criteria name, restricted to the changed resource's id,
on the store: so a criteria matches exactly what a client's search would find (accent-folded
strings, token systems, chains, linked patients), with no second matcher to drift apart.
See: https://hl7.org/fhir/R4/subscription-definitions.html#Subscription.criteria
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from sokhoe.errors import InvalidRequest
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.patient_links import widen_to_linked_patients
from sokhoe.fhir.repository import FhirRepository
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import Confinement, StoreSession

RESULT_ONLY = frozenset(
    {"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total"}
)
"""Search parameters that shape a result page but select nothing: refused in criteria."""


@dataclass(frozen=True, slots=True)
class Criteria:
    """A parsed criteria string: the resource type it watches and its search parameters."""

    text: str
    resource_type: str
    params: tuple[tuple[str, str], ...]


def parse_criteria(repo: FhirRepository, text: object) -> Criteria:
    """Check ``text`` is ``Type?param=value&…`` (or ``Type``) with parameters the server knows.

    Unknown parameters are refused (the strict parser) rather than ignored: a subscription that
    silently ignored ``paitent=…`` would send every Observation of every patient.
    """
    where = "Subscription.criteria"
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("A Subscription needs criteria such as 'Observation?patient=…'", where)
    value = text.strip()
    if value.startswith(("/", "http:", "https:")):
        raise InvalidRequest(f"Criteria '{value}' must be relative: 'Type?params'", where)
    rtype, _, query = value.partition("?")
    if rtype not in resource_types():
        raise InvalidRequest(f"Criteria '{value}': '{rtype}' is not a FHIR R4 resource type", where)
    params = tuple(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
    if query and not params:
        raise InvalidRequest(f"Criteria '{value}' has no parameters after '?'", where)
    for name, raw in params:
        base = name.partition(":")[0]
        if base in RESULT_ONLY:
            raise InvalidRequest(f"Criteria '{value}': '{name}' selects nothing", where)
        if not raw:
            raise InvalidRequest(f"Criteria '{value}': parameter '{name}' has no value", where)
    try:
        repo.parse_query(rtype, params, strict=True)
    except InvalidRequest as exc:
        detail = "; ".join(i.diagnostics for i in exc.issues)
        raise InvalidRequest(f"Criteria '{value}' is not a valid search: {detail}", where) from exc
    return Criteria(value, rtype, params)


def matching_ids(
    repo: FhirRepository,
    tx: StoreSession,
    criteria: Criteria,
    ids: Sequence[str],
    access: Confinement | None = None,
) -> set[str]:
    """Which of the resources ``ids`` (of the criteria's type) the criteria find now, in one
    search confined to ``access`` (the subscriber's). Deleted resources never match: a
    criteria is a search, and no search finds them."""
    query: SearchQuery = repo.parse_query(criteria.resource_type, criteria.params, strict=True)
    wanted = list(dict.fromkeys(ids))
    if query.ids is not None:
        wanted = [i for i in wanted if i in query.ids]
    if not wanted:
        return set()
    query = replace(
        query, ids=wanted, includes=[], revincludes=[], sort=[], count=len(wanted), offset=0
    )
    return set(tx.search_ids(widen_to_linked_patients(tx, query), len(wanted), access))


__all__ = ["Criteria", "matching_ids", "parse_criteria"]
