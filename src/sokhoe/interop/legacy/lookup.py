"""Finding a row's resources by their business identifiers, inside the row's transaction.

Every look-up runs on the open transaction the row will write in, so what it finds is what
the writes are based on, and rows earlier in the same transaction (an all-or-nothing import,
a dry run) are seen.
See: https://hl7.org/fhir/R4/search.html#escaping
"""

from __future__ import annotations

from collections.abc import Sequence

from sokhoe.fhir.patient_links import people_holding
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.legacy.fields import RowError
from sokhoe.search.parse import escape_value
from sokhoe.store.ports import StoredResource, StoreSession


def find_patient(
    repo: FhirRepository, tx: StoreSession, system: str, value: str
) -> StoredResource | None:
    """The one living person (after merges) holding this identifier; several is an error."""
    people = people_holding(repo, tx, system, value)
    if len(people) > 1:
        raise RowError(
            [
                f"several records hold {value} ("
                + ", ".join(f"Patient/{p}" for p in sorted(people))
                + "); merge them in the review queue first"
            ]
        )
    return next(iter(people.values()), None)


def find_one(
    repo: FhirRepository, tx: StoreSession, rtype: str, system: str, value: str
) -> StoredResource | None:
    """The current resource holding this identifier; several is an error."""
    query = repo.parse_query(
        rtype, [("identifier", f"{system}|{escape_value(value)}")], strict=True
    )
    ids = tx.search_ids(query, limit=2)
    if len(ids) > 1:
        raise RowError([f"several {rtype} resources hold {value}; resolve that first"])
    found = tx.read(rtype, ids[0]) if ids else None
    return found if found is not None and not found.deleted else None


def previous_diagnoses(
    repo: FhirRepository,
    tx: StoreSession,
    system: str,
    keys: Sequence[str],
    encounter: StoredResource | None,
) -> dict[str, StoredResource]:
    """The Conditions earlier imports recorded for a visit, by identifier value: all those of
    the stored Encounter (one search), or for a new visit those holding ``keys`` (one search,
    the keys OR-ed)."""
    if encounter is not None:
        params = [("encounter", f"Encounter/{encounter.id}")]
    elif keys:
        params = [("identifier", ",".join(f"{system}|{escape_value(k)}" for k in keys))]
    else:
        return {}
    query = repo.parse_query("Condition", params, strict=True)
    ids = tx.search_ids(query, limit=1000)
    found: dict[str, StoredResource] = {}
    for condition in tx.read_many([("Condition", cid) for cid in ids]):
        if condition.deleted or condition.content is None:
            continue
        for ident in condition.content.get("identifier", []):
            if ident.get("system") == system:
                found[str(ident.get("value"))] = condition
    return found
