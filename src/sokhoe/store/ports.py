"""The storage port: what the FHIR layer needs from a database, and nothing more.

The FHIR semantics (versioning, conditional interactions, bundles) live in
``fhir/repository.py``; a store only persists versions atomically, answers compiled searches
and keeps the patient compartment column that lets a national deployment partition by patient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection

from sokhoe.search.query import SearchQuery
from sokhoe.search.rows import IndexRows


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One version of one resource as stored (``content`` is None for a deletion)."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    deleted: bool
    content: dict[str, Any] | None
    patient_id: str | None = None
    method: str = "PUT"
    owner: str | None = None
    """The facility (insurance code) whose caller created the resource; None when the
    platform, a citizen or a load did. Kept by every later version."""
    labels: str | None = None
    """The sensitive categories of this version (``HIV,PSY``), from ``meta.security``."""

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


@dataclass(slots=True)
class WriteItem:
    """A new version to persist, already validated and indexed."""

    resource_type: str
    id: str
    version_id: int
    last_updated: datetime
    content: dict[str, Any] | None
    """None for a delete."""
    patient_id: str | None
    index: IndexRows | None
    method: str
    """POST, PUT or DELETE: kept in history (Bundle.entry.request.method)."""
    previous_version: int | None
    """The version this replaces (None for a new resource): lets the store detect lost updates."""
    owner: str | None = None
    """See :attr:`StoredResource.owner`; stamped by the access door, not by clients."""
    labels: str | None = None
    """See :attr:`StoredResource.labels`."""


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Matching resources of one page, the included ones, and the total when known."""

    matches: list[StoredResource]
    included: list[StoredResource]
    total: int | None
    more: bool | None = None
    """Whether another page may follow, when ``total`` is withheld and the page is short
    because the access guard filtered it (paging must not stop at a filtered page)."""


@dataclass(frozen=True, slots=True)
class CareRow:
    """One row of the care-relationship index: ``grantee`` may see (``level`` ``record``) or
    write into (``own``) the compartment of ``patient_id`` from ``since`` until ``until``.

    Grantees are ``facility:<code>``, ``commune:<ward code>``, ``user:<kind>:<subject>`` (a
    clinician who broke the glass) and ``citizen:<phone>`` (a verified guardian). ``via`` is
    the record the grant was made on: a merge copies rows to the other records of the person
    (``via`` kept), and an unmerge removes the copies. ``proven`` says the grant rests on the
    person's presence or consent (a one-time code, a share code, data the platform loaded),
    not only on knowing their number: only proven grants open a merged person's other records.
    ``all_labels`` lets a broken glass read categories the patient restricted.
    """

    patient_id: str
    grantee: str
    level: str
    proven: bool
    source: str
    source_ref: str
    via: str
    since: datetime
    until: datetime | None = None
    all_labels: bool = False

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.patient_id, self.grantee, self.source, self.source_ref, self.via)


@dataclass(frozen=True, slots=True)
class Restriction:
    """A patient keeps resources labelled ``label`` from everyone but ``facility``; a row with
    ``facility`` "" says the label is restricted at all (a restriction may permit nobody)."""

    patient_id: str
    label: str
    facility: str
    source_ref: str
    via: str

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.patient_id, self.label, self.facility, self.source_ref, self.via)


@dataclass(frozen=True, slots=True)
class Confinement:
    """What one caller may see, compiled into every read that answers them (SQL on the SQL
    store, the same rule in Python on the memory store), so counts, totals and pages hold only
    what the caller may see and nothing is filtered after the fact.

    A resource of no patient (a facility, a code system) is visible when ``shared``. A
    resource in a patient's compartment is visible when its type is in ``types`` (if set) and
    the patient is in ``patients``, or ``all_patients``, or a current ``record`` row of the
    care index names one of ``grantees`` for that patient; and a resource ``owner`` created is
    always visible to it. A patient's restriction of a sensitive label hides the resources
    carrying it from everyone the restriction does not permit (``facility``), except the
    patient themselves (``patients``), their owner and a broken glass (``all_labels`` rows).
    """

    now: datetime
    grantees: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    owner: str | None = None
    facility: str | None = None
    all_patients: bool = False
    types: frozenset[str] | None = None
    shared: bool = True
    restrictions: bool = True
    """Whether sensitive-label restrictions apply (not to insurance appraisers' claims)."""
    readable: frozenset[str] | None = None
    """The resource types the caller's scopes let it read (None: all), shared ones too:
    an include or a ``_has`` never reaches a type the token may not read."""


T = TypeVar("T")


class StoreSession(Protocol):
    """One database transaction: reads see its own writes; it commits or rolls back whole."""

    def read(self, resource_type: str, id: str) -> StoredResource | None: ...

    def read_many(
        self, keys: Sequence[tuple[str, str]], access: Confinement | None = None
    ) -> list[StoredResource]: ...

    def current_versions(self, resource_type: str, ids: Sequence[str]) -> dict[str, int]: ...

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource | None: ...

    def search(self, query: SearchQuery, access: Confinement | None = None) -> SearchPage:
        """Matches, includes and total; with ``access``, only what it lets the caller see
        (chains, ``_has`` and includes are confined too)."""
        ...

    def search_ids(
        self, query: SearchQuery, limit: int, access: Confinement | None = None
    ) -> list[str]: ...

    def visible(self, keys: Sequence[tuple[str, str]], access: Confinement) -> set[tuple[str, str]]:
        """Which of these current resources (deleted ones included) ``access`` shows."""
        ...

    def read_shown(
        self, resource_type: str, id: str, access: Confinement
    ) -> tuple[StoredResource | None, bool]:
        """The current resource (deleted included) and whether ``access`` shows it, in one
        look-up: a read answers with one query where it would otherwise need two."""
        ...

    def visible_version(
        self, resource_type: str, id: str, version_id: int, access: Confinement
    ) -> bool:
        """Whether ``access`` shows this version of the resource (history rows)."""
        ...

    def write(self, items: Sequence[WriteItem]) -> None: ...

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]: ...

    def compartment(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str] | None,
        since: datetime | None,
        count: int,
        offset: int,
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]: ...

    # -- the care-relationship index and restrictions (kept by ``sokhoe.access``) ------------
    def care(
        self, patient_ids: Sequence[str], grantees: Sequence[str] | None = None
    ) -> list[CareRow]:
        """The rows of these patients (of these grantees only, when given), current or not."""
        ...

    def relate(self, rows: Sequence[CareRow]) -> None:
        """Add rows; a row with the same key replaces the one there."""
        ...

    def unrelate(self, rows: Sequence[CareRow]) -> None:
        """Remove rows with these keys (absent ones are ignored)."""
        ...

    def restrictions(self, patient_ids: Sequence[str]) -> list[Restriction]: ...

    def restrict(self, rows: Sequence[Restriction]) -> None:
        """Add restriction rows (same key: replaced)."""
        ...

    def unrestrict(self, rows: Sequence[Restriction]) -> None: ...

    def side_tables(self, work: Callable[[Connection], T]) -> T | None:
        """Run ``work`` on the access tables (audit chain, receipts) inside this transaction:
        it commits or rolls back with the resources. The SQL store runs it at once on its own
        connection and returns the result; the memory store keeps its access tables in a
        SQLite file and runs the work there when the session commits (returning None), so
        ``work`` must not need its result before then.
        """
        ...

    def deleted_before(self, cutoff: datetime, limit: int) -> list[StoredResource]:
        """Resources whose current version is a deletion made before ``cutoff``, oldest
        first: the only candidates for a retention purge."""
        ...

    def purge(self, resource_type: str, id: str) -> int:
        """Remove a resource and every version of it for good; return the versions removed.

        The one physical delete in the store: the API's DELETE is logical (a new version),
        and only the retention purge (``sokhoe.access.retention``) calls this.
        """
        ...


class FhirStore(Protocol):
    """A database of FHIR resources. ``begin()`` opens a transaction (a :class:`StoreSession`)."""

    def begin(self, *, write: bool = False) -> AbstractContextManager[StoreSession]: ...

    def iter_all(
        self, resource_type: str | None = None, access: Confinement | None = None
    ) -> Iterator[StoredResource]: ...

    def close(self) -> None: ...
