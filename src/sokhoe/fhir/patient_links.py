"""One person, several Patient records: following ``Patient.link`` after a merge.

A merge keeps both records (the master patient index must be able to undo it exactly): the
merged one points ``replaced-by`` at the survivor, which points ``replaces`` back. Clinical
resources keep referring to whichever record they were written against, so a search or a
``$everything`` on either identity is widened here to every record of the person.
See: https://hl7.org/fhir/R4/patient.html#links
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sokhoe.search.parse import escape_value
from sokhoe.search.query import Criterion, ReferenceValue, SearchQuery, Value
from sokhoe.store.ports import StoredResource, StoreSession

if TYPE_CHECKING:
    from sokhoe.fhir.repository import FhirRepository

MERGE_LINKS = ("replaced-by", "replaces")
"""Link types that make two records one person (``seealso``/``refer`` do not)."""
MAX_RECORDS = 50
"""A person merged from more records than this is a data error, not a person."""


def surviving_patient(tx: StoreSession, pid: str, depth: int = 0) -> StoredResource | None:
    """The record that survived the merges of ``pid`` (itself if never merged): follows
    ``replaced-by``; None when the record is unknown or deleted."""
    current = tx.read("Patient", pid)
    if current is None or current.deleted or current.content is None or depth > MAX_RECORDS:
        return None
    for link in current.content.get("link", []):
        ref = (link.get("other") or {}).get("reference", "")
        if link.get("type") == "replaced-by" and ref.startswith("Patient/"):
            return surviving_patient(tx, ref.split("/", 1)[1], depth + 1)
    return current


def people_holding(
    repo: FhirRepository, tx: StoreSession, system: str, value: str, *, follow: bool = True
) -> dict[str, StoredResource]:
    """The living records holding identifier ``system|value``, by id: the survivors of their
    merges (``follow``) or the records themselves. More than one is for the caller to refuse
    (check-in, HL7, imports each say so in their own terms)."""
    token = f"{escape_value(system)}|{escape_value(value)}"
    query = repo.parse_query("Patient", [("identifier", token)], strict=True)
    people: dict[str, StoredResource] = {}
    for pid in tx.search_ids(query, limit=20):
        person = surviving_patient(tx, pid) if follow else tx.read("Patient", pid)
        if person is not None and not person.deleted:
            people[person.id] = person
    return people


def linked_patient_ids(tx: StoreSession, patient_id: str) -> list[str]:
    """``patient_id`` and every record merged with it, transitively (``patient_id`` first)."""
    seen = [patient_id]
    frontier = [patient_id]
    while frontier and len(seen) < MAX_RECORDS:
        nxt: list[str] = []
        for current in tx.read_many([("Patient", p) for p in frontier]):
            for link in (current.content or {}).get("link", []):
                ref = (link.get("other") or {}).get("reference", "")
                if link.get("type") in MERGE_LINKS and ref.startswith("Patient/"):
                    other = ref.split("/", 1)[1]
                    if other not in seen:
                        seen.append(other)
                        nxt.append(other)
        frontier = nxt
    return seen


def widen_to_linked_patients(tx: StoreSession, query: SearchQuery) -> SearchQuery:
    """The query with every Patient reference and compartment widened to the whole person."""
    criteria = [_widen(tx, c) for c in query.criteria]
    patient_ids = query.patient_ids
    if patient_ids is not None:
        patient_ids = list(
            dict.fromkeys(p for pid in patient_ids for p in linked_patient_ids(tx, pid))
        )
    if criteria == query.criteria and patient_ids == query.patient_ids:
        return query
    widened = replace(query, criteria=criteria)
    widened.patient_ids = patient_ids
    return widened


def _widen(tx: StoreSession, crit: Criterion) -> Criterion:
    if crit.type != "reference" or crit.modifier not in (None, "Patient") or not crit.values:
        return crit
    values: list[Value] = []
    changed = False
    for v in crit.values:
        if not isinstance(v, ReferenceValue) or v.target_id is None:
            return crit
        values.append(v)
        if v.target_type not in (None, "Patient"):
            continue
        for other in linked_patient_ids(tx, v.target_id)[1:]:
            values.append(ReferenceValue("Patient", other))
            changed = True
    return replace(crit, values=values) if changed else crit
