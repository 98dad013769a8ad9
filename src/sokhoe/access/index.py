"""Building the care-relationship index for a database that holds records without it.

The index is kept with every write (``access/care.py``); a database written by a version
before it existed has records and no rows. :func:`rebuild` derives the rows from the stored
Patients (record numbers, home address), Encounters (visits) and Consents (share codes,
restrictions) as if the platform had loaded them; ``sokhoe serve`` runs it once when it finds
records and no index, and ``sokhoe access rebuild`` runs it on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sokhoe.access import care
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import FhirStore, StoredResource

TYPES = ("Organization", "Patient", "Encounter", "Consent")


def rebuild(store: FhirStore, progress: Callable[[int], object] | None = None) -> int:
    """Derive the whole index again; returns how many records it read."""
    seen = 0
    now = datetime.now(UTC)
    with store.begin(write=True) as tx:
        people = [r.id for r in store.iter_all("Patient")]
        for start in range(0, len(people), 500):
            chunk = people[start : start + 500]
            tx.unrelate(tx.care(chunk))
            tx.unrestrict(tx.restrictions(chunk))

        def records() -> list[StoredResource]:
            nonlocal seen
            found = [r for t in TYPES[1:] for r in store.iter_all(t)]
            seen = len(found)
            if progress is not None:
                progress(seen)
            return found

        care.rebuild(records, tx, now)
    return seen


def ensure_care_index(store: FhirStore) -> int:
    """Rebuild the index when the store holds patients and none of them has a row."""
    with store.begin() as tx:
        sample = tx.search_ids(SearchQuery("Patient"), 50)
        if not sample or tx.care(sample):
            return 0
    return rebuild(store)
