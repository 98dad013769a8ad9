"""The in-memory implementation of :class:`~sokhoe.store.ports.FhirStore`: reference semantics.

Why it exists (STYLE.md §1, §9): the SQL store's behaviour is spread over SQL clauses, two
dialects and transaction isolation; this one states the same behaviour in plain Python, so the
contract tests (``tests/store``) and the API tests run the same bodies against memory, SQLite
and PostgreSQL, and a difference points at a bug. It is also the fastest store for unit tests.

Transactions are copy-on-write: committed state is a dict of :class:`TypeTable` that is never
mutated once published. A write session copies the outer dict and each type's table on its
first write to it, works on the copies, and publishes them on a clean exit of ``with
store.begin(write=True)``; an exception drops the copies, so nothing is left behind. Writers
are serialised by one lock (as SQLite's ``BEGIN IMMEDIATE``); readers take the committed
state as a snapshot and never block. A write whose ``previous_version`` is not the current
version raises :class:`~sokhoe.errors.Conflict`, as the SQL store does on a lost update.
Contents are copied in and out (through JSON, as a database would), so callers cannot alter
what is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from sokhoe.errors import Conflict
from sokhoe.search.query import SearchQuery
from sokhoe.store.memory_search import Key, Searcher, TypeTable
from sokhoe.store.ports import SearchPage, StoredResource, WriteItem

Tables = dict[str, TypeTable]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _clone(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if content is None:
        return None
    copied: dict[str, Any] = orjson.loads(orjson.dumps(content))
    return copied


def _out(res: StoredResource) -> StoredResource:
    """A copy for the caller: its content may be mutated without touching the store."""
    return res if res.content is None else replace(res, content=_clone(res.content))


class MemorySession:
    """One transaction over a snapshot (see :class:`~sokhoe.store.ports.StoreSession`)."""

    def __init__(self, tables: Tables, *, writable: bool) -> None:
        self.tables = tables
        self.writable = writable
        self.changed = False
        self._copied: set[str] = set()

    def _searcher(self) -> Searcher:
        return Searcher(self.tables)

    def _current(self, resource_type: str, id: str) -> StoredResource | None:
        table = self.tables.get(resource_type)
        return table.current.get(id) if table else None

    # -- reads -------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredResource | None:
        found = self._current(resource_type, id)
        return _out(found) if found else None

    def read_many(self, keys: Sequence[tuple[str, str]]) -> list[StoredResource]:
        out: list[StoredResource] = []
        for rtype, rid in dict.fromkeys(keys):
            found = self._current(rtype, rid)
            if found is not None and not found.deleted:
                out.append(_out(found))
        return out

    def current_versions(self, resource_type: str, ids: Sequence[str]) -> dict[str, int]:
        table = self.tables.get(resource_type)
        if table is None:
            return {}
        return {i: table.current[i].version_id for i in set(ids) if i in table.current}

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource | None:
        table = self.tables.get(resource_type)
        for version in table.versions.get(id, ()) if table else ():
            if version.version_id == version_id:
                return _out(version)
        return None

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]:
        types = [resource_type] if resource_type else list(self.tables)
        found: list[StoredResource] = []
        for rtype in types:
            table = self.tables.get(rtype)
            if table is None:
                continue
            chains = [table.versions.get(id, ())] if id else list(table.versions.values())
            for chain in chains:
                found += [v for v in chain if since is None or v.last_updated >= since]
        found.sort(key=lambda v: (v.resource_type, v.id, -v.version_id))
        found.sort(key=lambda v: v.last_updated, reverse=True)
        return [_out(v) for v in found[offset : offset + count]], len(found)

    def compartment(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str] | None,
        since: datetime | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]:
        patients = set(patient_ids)
        found: list[StoredResource] = []
        for rtype in sorted(set(types) if types else self.tables):
            table = self.tables.get(rtype)
            if table is None:
                continue
            for rid in sorted(table.current):
                res = table.current[rid]
                if res.deleted or res.patient_id not in patients:
                    continue
                if since is None or res.last_updated >= since:
                    found.append(res)
        return [_out(r) for r in found[offset : offset + count]], len(found)

    def deleted_before(self, cutoff: datetime, limit: int) -> list[StoredResource]:
        found = [
            res
            for table in self.tables.values()
            for res in table.current.values()
            if res.deleted and res.last_updated < _utc(cutoff)
        ]
        found.sort(key=lambda r: (r.last_updated, r.resource_type, r.id))
        return found[:limit]

    def purge(self, resource_type: str, id: str) -> int:
        if not self.writable:
            raise RuntimeError("purge() needs a session opened with begin(write=True)")
        existing = self.tables.get(resource_type)
        if existing is None or id not in existing.versions:
            return 0
        table = self._table(resource_type)
        table.current.pop(id, None)
        table.index.pop(id, None)
        return len(table.versions.pop(id))

    def search_ids(self, query: SearchQuery, limit: int) -> list[str]:
        keys = self._searcher().keys(query)
        return [rid for rid, _ in sorted((rid, rtype) for rtype, rid in keys)][:limit]

    def search(self, query: SearchQuery) -> SearchPage:
        searcher = self._searcher()
        keys = searcher.keys(query)
        total: int | None = None
        if query.total != "none" or query.summary == "count":
            total = len(keys)
        if query.summary == "count" or query.count == 0:
            return SearchPage([], [], total)
        page = searcher.ordered(query, keys)[query.offset : query.offset + query.count]
        matches = self.read_many(page)
        return SearchPage(matches, self._included(searcher, query, matches), total)

    def _included(
        self, searcher: Searcher, query: SearchQuery, matches: list[StoredResource]
    ) -> list[StoredResource]:
        if not matches or not (query.includes or query.revincludes):
            return []
        seen = {(m.resource_type, m.id) for m in matches}
        out: list[StoredResource] = []
        frontier = matches
        for rounds in range(3):  # :iterate is followed a bounded number of times, as in SQL
            keys: list[Key] = []
            for inc in query.includes:
                if not rounds or inc.iterate:
                    keys += searcher.include_keys(inc, frontier)
            for inc in query.revincludes:
                if not rounds or inc.iterate:
                    keys += searcher.revinclude_keys(inc, frontier)
            new = [k for k in dict.fromkeys(keys) if k not in seen]
            if not new:
                break
            seen.update(new)
            frontier = self.read_many(new)
            out += frontier
        return out

    # -- writes ------------------------------------------------------------------------
    def write(self, items: Sequence[WriteItem]) -> None:
        """Persist new versions, all or none; :class:`Conflict` on a lost update."""
        if not items:
            return
        if not self.writable:
            raise RuntimeError("write() needs a session opened with begin(write=True)")
        ordered = [i for i in items if i.previous_version is None]
        ordered += [i for i in items if i.previous_version is not None]
        self._check(ordered)
        for item in ordered:
            self._apply(item)

    def _check(self, items: Sequence[WriteItem]) -> None:
        """Refuse the whole write before changing anything, as the SQL constraints would."""
        latest: dict[Key, int | None] = {}
        taken: set[tuple[str, str, int]] = set()
        for item in items:
            key = (item.resource_type, item.id)
            if key not in latest:
                current = self._current(*key)
                latest[key] = current.version_id if current else None
            if item.previous_version is None and latest[key] is not None:
                raise Conflict(
                    "A resource was created or changed concurrently; retry with the new version"
                )
            if item.previous_version is not None and latest[key] != item.previous_version:
                raise Conflict(
                    f"{item.resource_type}/{item.id} changed concurrently "
                    f"(expected version {item.previous_version})"
                )
            table = self.tables.get(item.resource_type)
            old = table.versions.get(item.id, ()) if table else ()
            version = (item.resource_type, item.id, item.version_id)
            if version in taken or any(v.version_id == item.version_id for v in old):
                raise Conflict(
                    "A resource was created or changed concurrently; retry with the new version"
                )
            taken.add(version)
            latest[key] = item.version_id

    def _table(self, resource_type: str) -> TypeTable:
        """This transaction's own copy of a type's table (copied on first write)."""
        if not self.changed:
            self.tables = dict(self.tables)
            self.changed = True
        if resource_type not in self._copied:
            old = self.tables.get(resource_type)
            self.tables[resource_type] = old.copy() if old else TypeTable()
            self._copied.add(resource_type)
        return self.tables[resource_type]

    def _apply(self, item: WriteItem) -> None:
        table = self._table(item.resource_type)
        version = StoredResource(
            resource_type=item.resource_type,
            id=item.id,
            version_id=item.version_id,
            last_updated=_utc(item.last_updated),
            deleted=item.content is None,
            content=_clone(item.content),
            patient_id=item.patient_id,
            method=item.method,
        )
        table.versions[item.id] = (*table.versions.get(item.id, ()), version)
        table.current[item.id] = replace(version, method="PUT")  # as SQL: no method column
        if item.index is None:
            table.index.pop(item.id, None)
        else:
            table.index[item.id] = item.index


class MemoryStore:
    """A FHIR store in Python dicts: the reference semantics, and the store of fast tests."""

    def __init__(self) -> None:
        self._tables: Tables = {}
        self._lock = threading.Lock()

    @contextmanager
    def begin(self, *, write: bool = False) -> Iterator[MemorySession]:
        if not write:
            yield MemorySession(self._tables, writable=False)
            return
        with self._lock:
            session = MemorySession(self._tables, writable=True)
            yield session  # an exception propagates from here: the copies are dropped
            if session.changed:
                self._tables = session.tables

    def iter_all(self, resource_type: str | None = None) -> Iterator[StoredResource]:
        """Every current resource (deleted ones excluded), by type then id, of one snapshot."""
        tables = self._tables
        for rtype in [resource_type] if resource_type else sorted(tables):
            current = tables[rtype].current if rtype in tables else {}
            for rid in sorted(current):
                if not current[rid].deleted:
                    yield _out(current[rid])

    def close(self) -> None:
        """Nothing to release: the data lives as long as the object (a closed SQL store's
        database outlives it too)."""
