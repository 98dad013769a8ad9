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

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine

from sokhoe.errors import Conflict
from sokhoe.search.query import SearchQuery
from sokhoe.store.memory_access import new_access_file
from sokhoe.store.memory_confine import Judge
from sokhoe.store.memory_search import Key, Searcher, TypeTable
from sokhoe.store.ports import (
    CareRow,
    Confinement,
    Restriction,
    SearchPage,
    StoredResource,
    WriteItem,
)

Tables = dict[str, TypeTable]
T = TypeVar("T")


@dataclass(slots=True)
class Access:
    """The care-relationship index and restrictions, published with the tables."""

    care: dict[tuple[str, str, str, str, str], CareRow] = field(default_factory=dict)
    restrictions: dict[tuple[str, str, str, str, str], Restriction] = field(default_factory=dict)

    def copy(self) -> Access:
        return Access(dict(self.care), dict(self.restrictions))


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

    def __init__(self, tables: Tables, access: Access, *, writable: bool) -> None:
        self.tables = tables
        self.access = access
        self.writable = writable
        self.changed = False
        self.access_changed = False
        self._copied: set[str] = set()
        self.side_work: list[Callable[[Connection], object]] = []

    def _judge(self, access: Confinement | None) -> Callable[[StoredResource], bool] | None:
        if access is None:
            return None
        by_patient: dict[str, list[CareRow]] = {}
        for row in self.access.care.values():
            by_patient.setdefault(row.patient_id, []).append(row)
        restricted: dict[str, list[Restriction]] = {}
        for x in self.access.restrictions.values():
            restricted.setdefault(x.patient_id, []).append(x)
        return Judge(access, by_patient, restricted)

    def _searcher(self, access: Confinement | None = None) -> Searcher:
        return Searcher(self.tables, self._judge(access))

    def _current(self, resource_type: str, id: str) -> StoredResource | None:
        table = self.tables.get(resource_type)
        return table.current.get(id) if table else None

    # -- reads -------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredResource | None:
        found = self._current(resource_type, id)
        return _out(found) if found else None

    def read_many(
        self, keys: Sequence[tuple[str, str]], access: Confinement | None = None
    ) -> list[StoredResource]:
        judge = self._judge(access)
        out: list[StoredResource] = []
        for rtype, rid in dict.fromkeys(keys):
            found = self._current(rtype, rid)
            if found is not None and not found.deleted and (judge is None or judge(found)):
                out.append(_out(found))
        return out

    def read_shown(
        self, resource_type: str, id: str, access: Confinement
    ) -> tuple[StoredResource | None, bool]:
        found = self._current(resource_type, id)
        if found is None:
            return None, False
        judge = self._judge(access)
        return _out(found), judge is None or judge(found)

    def visible(self, keys: Sequence[tuple[str, str]], access: Confinement) -> set[tuple[str, str]]:
        judge = self._judge(access)
        assert judge is not None  # noqa: S101 - access is given
        out: set[tuple[str, str]] = set()
        for key in keys:
            found = self._current(*key)
            if found is not None and judge(found):
                out.add(key)
        return out

    def visible_version(
        self, resource_type: str, id: str, version_id: int, access: Confinement
    ) -> bool:
        judge = self._judge(access)
        table = self.tables.get(resource_type)
        for version in table.versions.get(id, ()) if table else ():
            if version.version_id == version_id:
                return judge is None or judge(version)
        return False

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
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]:
        judge = self._judge(access)
        types = [resource_type] if resource_type else list(self.tables)
        found: list[StoredResource] = []
        for rtype in types:
            table = self.tables.get(rtype)
            if table is None:
                continue
            chains = [table.versions.get(id, ())] if id else list(table.versions.values())
            for chain in chains:
                found += [
                    v
                    for v in chain
                    if (since is None or v.last_updated >= since) and (judge is None or judge(v))
                ]
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
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]:
        judge = self._judge(access)
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
                if judge is not None and not judge(res):
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

    def search_ids(
        self, query: SearchQuery, limit: int, access: Confinement | None = None
    ) -> list[str]:
        keys = self._searcher(access).keys(query)
        return [rid for rid, _ in sorted((rid, rtype) for rtype, rid in keys)][:limit]

    def search(self, query: SearchQuery, access: Confinement | None = None) -> SearchPage:
        searcher = self._searcher(access)
        keys = searcher.keys(query)
        total: int | None = None
        if query.total != "none" or query.summary == "count":
            total = len(keys)
        if query.summary == "count" or query.count == 0:
            return SearchPage([], [], total)
        page = searcher.ordered(query, keys)[query.offset : query.offset + query.count]
        matches = self.read_many(page)
        return SearchPage(matches, self._included(searcher, query, matches, access), total)

    def _included(
        self,
        searcher: Searcher,
        query: SearchQuery,
        matches: list[StoredResource],
        access: Confinement | None,
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
            frontier = self.read_many(new, access)
            out += frontier
        return out

    # -- the care-relationship index ----------------------------------------------------
    def care(
        self, patient_ids: Sequence[str], grantees: Sequence[str] | None = None
    ) -> list[CareRow]:
        people, who = set(patient_ids), None if grantees is None else set(grantees)
        found = [
            r
            for r in self.access.care.values()
            if r.patient_id in people and (who is None or r.grantee in who)
        ]
        return sorted(found, key=lambda r: (r.patient_id, r.grantee, r.source))

    def _access(self) -> Access:
        if not self.writable:
            raise RuntimeError("the care index changes only in begin(write=True)")
        if not self.access_changed:
            self.access = self.access.copy()
            self.access_changed = True
        return self.access

    def relate(self, rows: Sequence[CareRow]) -> None:
        if rows:
            care = self._access().care
            for row in rows:
                care[row.key] = row

    def unrelate(self, rows: Sequence[CareRow]) -> None:
        if rows:
            care = self._access().care
            for row in rows:
                care.pop(row.key, None)

    def restrictions(self, patient_ids: Sequence[str]) -> list[Restriction]:
        people = set(patient_ids)
        found = [x for x in self.access.restrictions.values() if x.patient_id in people]
        return sorted(found, key=lambda x: (x.patient_id, x.label, x.facility))

    def restrict(self, rows: Sequence[Restriction]) -> None:
        if rows:
            kept = self._access().restrictions
            for row in rows:
                kept[row.key] = row

    def unrestrict(self, rows: Sequence[Restriction]) -> None:
        if rows:
            kept = self._access().restrictions
            for row in rows:
                kept.pop(row.key, None)

    def side_tables(self, work: Callable[[Connection], T]) -> T | None:
        if not self.writable:
            raise RuntimeError("side_tables() needs a session opened with begin(write=True)")
        self.side_work.append(work)
        return None

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
            owner=item.owner,
            labels=item.labels,
        )
        table.versions[item.id] = (*table.versions.get(item.id, ()), version)
        table.current[item.id] = replace(version, method="PUT")  # as SQL: no method column
        if item.index is None:
            table.index.pop(item.id, None)
        else:
            table.index[item.id] = item.index


class MemoryStore:
    """A FHIR store in Python dicts: the reference semantics, and the store of fast tests.

    The access tables (accounts, tokens, the audit chain, receipts) are SQL in every
    deployment; this store keeps them in a private SQLite file (:attr:`access_engine`) and
    runs a session's work on them (``side_tables``) in one transaction that commits just
    before the session's resources are published: a failure there publishes nothing.
    """

    def __init__(self) -> None:
        self._tables: Tables = {}
        self._access = Access()
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._engine_path: str | None = None
        self._engine_lock = threading.Lock()

    def fork(self) -> MemoryStore:
        """A new store starting from this one's committed records and care index: nothing is
        copied (committed state is never mutated), and each goes its own way after. Its
        access tables are its own, empty."""
        other = MemoryStore()
        other._tables, other._access = self._tables, self._access
        return other

    @property
    def access_engine(self) -> Engine:
        """The SQLite database of the access tables, created (migrated) on first use."""
        with self._engine_lock:
            if self._engine is None:
                from sokhoe.store.sql.engine import make_engine

                path = new_access_file()
                self._engine_path = path
                self._engine = make_engine(f"sqlite:///{path}", write=True)
            return self._engine

    @contextmanager
    def begin(self, *, write: bool = False) -> Iterator[MemorySession]:
        if not write:
            yield MemorySession(self._tables, self._access, writable=False)
            return
        with self._lock:
            session = MemorySession(self._tables, self._access, writable=True)
            yield session  # an exception propagates from here: the copies are dropped
            if session.side_work:
                with self.access_engine.begin() as conn:
                    for work in session.side_work:
                        work(conn)
            if session.changed:
                self._tables = session.tables
            if session.access_changed:
                self._access = session.access

    def iter_all(
        self, resource_type: str | None = None, access: Confinement | None = None
    ) -> Iterator[StoredResource]:
        """Every current resource (deleted ones excluded), by type then id, of one snapshot."""
        session = MemorySession(self._tables, self._access, writable=False)
        judge = session._judge(access)
        tables = session.tables
        for rtype in [resource_type] if resource_type else sorted(tables):
            current = tables[rtype].current if rtype in tables else {}
            for rid in sorted(current):
                res = current[rid]
                if not res.deleted and (judge is None or judge(res)):
                    yield _out(res)

    def close(self) -> None:
        """Releases the access tables' file; the records live as long as the object (a
        closed SQL store's database outlives it too)."""
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            if self._engine_path is not None:
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.unlink(self._engine_path + suffix)
                    except FileNotFoundError:
                        pass
                self._engine_path = None
