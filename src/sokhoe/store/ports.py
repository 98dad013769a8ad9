"""The storage port: what the FHIR layer needs from a database, and nothing more.

The FHIR semantics (versioning, conditional interactions, bundles) live in
``fhir/repository.py``; a store only persists versions atomically, answers compiled searches
and keeps the patient compartment column that lets a national deployment partition by patient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

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


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Matching resources of one page, the included ones, and the total when known."""

    matches: list[StoredResource]
    included: list[StoredResource]
    total: int | None
    more: bool | None = None
    """Whether another page may follow, when ``total`` is withheld and the page is short
    because the access guard filtered it (paging must not stop at a filtered page)."""


class StoreSession(Protocol):
    """One database transaction: reads see its own writes; it commits or rolls back whole."""

    def read(self, resource_type: str, id: str) -> StoredResource | None: ...

    def read_many(self, keys: Sequence[tuple[str, str]]) -> list[StoredResource]: ...

    def current_versions(self, resource_type: str, ids: Sequence[str]) -> dict[str, int]: ...

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource | None: ...

    def search(self, query: SearchQuery) -> SearchPage: ...

    def search_ids(self, query: SearchQuery, limit: int) -> list[str]: ...

    def write(self, items: Sequence[WriteItem]) -> None: ...

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]: ...

    def compartment(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str] | None,
        since: datetime | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]: ...

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

    def iter_all(self, resource_type: str | None = None) -> Iterator[StoredResource]: ...

    def close(self) -> None: ...
