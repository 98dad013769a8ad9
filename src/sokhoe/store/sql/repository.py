"""The SQL implementation of :class:`~sokhoe.store.ports.FhirStore`.

Writes are grouped per table and sent with ``executemany`` inside one transaction, so a
transaction bundle of 1,000 resources costs a handful of statements and one commit (fsync per
resource is the classic ingest ceiling). Index rows are written in the same transaction as the
resource they describe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    false,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError

from sokhoe.errors import Conflict
from sokhoe.search.query import Include, SearchQuery
from sokhoe.search.unions import restrictions, unions
from sokhoe.store.ports import (
    CareRow,
    Confinement,
    Restriction,
    SearchPage,
    StoredResource,
    WriteItem,
)
from sokhoe.store.sql import migrate, partitions
from sokhoe.store.sql import search as sql_search
from sokhoe.store.sql.confine import confine
from sokhoe.store.sql.content import CURRENT, load_dictionaries, record_current
from sokhoe.store.sql.driver import insert_rows
from sokhoe.store.sql.engine import make_engine
from sokhoe.store.sql.identity import param_id, system_id
from sokhoe.store.sql.schema import (
    INDEX_TABLES,
    care_relationship,
    care_restriction,
    content_dictionary,
    resource,
    resource_history,
    resource_pk_seq,
    sp_reference,
    token_system,
)
from sokhoe.store.sql.search import (
    ON_RESOURCE,
    Compiler,
    count_probes,
    param_is,
    selective_criteria,
)
from sokhoe.store.sql.search_cache import ID_STATEMENTS

T = TypeVar("T")

_COLUMNS = (
    resource.c.resource_type,
    resource.c.id,
    resource.c.version_id,
    resource.c.last_updated,
    resource.c.deleted,
    resource.c.content,
    resource.c.patient_id,
    resource.c.owner,
    resource.c.labels,
)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(row: Any, method: str = "PUT") -> StoredResource:
    return StoredResource(
        resource_type=row.resource_type,
        id=row.id,
        version_id=row.version_id,
        last_updated=_utc(row.last_updated),
        deleted=bool(row.deleted),
        content=row.content,
        patient_id=row.patient_id,
        # current rows have no method column; asking getattr would raise inside SQLAlchemy
        method=row.method if "method" in row._fields else method,
        owner=row.owner,
        labels=row.labels,
    )


_HISTORY_COLUMNS = (
    resource_history.c.resource_type,
    resource_history.c.id,
    resource_history.c.version_id,
    resource_history.c.last_updated,
    resource_history.c.deleted,
    func.coalesce(resource_history.c.content, resource.c.content).label("content"),
    resource_history.c.patient_id,
    resource_history.c.method,
    resource_history.c.owner,
    resource_history.c.labels,
)
"""A version's columns; select them from :data:`_VERSIONS`."""

_VERSIONS = resource_history.outerjoin(
    resource,
    and_(
        resource.c.resource_type == resource_history.c.resource_type,
        resource.c.id == resource_history.c.id,
        resource.c.version_id == resource_history.c.version_id,
    ),
)
"""Each version with, for the current one, its JSON, which only ``resource`` holds."""


def _chunks(seq: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


_VERSION_COLUMNS: Final = (
    "resource_type",
    "id",
    "version_id",
    "last_updated",
    "deleted",
    "patient_id",
    "content",
    "owner",
    "labels",
)
"""The columns ``resource`` and ``resource_history`` share, in :func:`_version_values`' order."""


def _version_values(item: WriteItem, content: dict[str, Any] | None) -> tuple[Any, ...]:
    return (
        item.resource_type,
        item.id,
        item.version_id,
        _utc(item.last_updated),
        item.content is None,
        item.patient_id,
        content,
        item.owner,
        item.labels,
    )


def _values(row: object, columns: tuple[str, ...]) -> tuple[Any, ...]:
    """A dataclass row's values in ``columns``' order (``dataclasses.asdict`` deep-copies)."""
    return tuple(getattr(row, c) for c in columns)


def _reference_values(row: Any, _: set[str]) -> tuple[Any, ...]:
    """A reference row's values, without its text when the text is just ``Type/id`` (most
    are): the text is searched only for references not to a resource here (``search.py``)."""
    if row.target_id is not None and row.url == f"{row.target_type}/{row.target_id}":
        return (row.target_type, row.target_id, "")
    return (row.target_type, row.target_id, row.url)


def _token_values(row: Any, systems: set[str]) -> tuple[Any, ...]:
    """A token row's values, its system as a number (``identity.system_id``), noted in
    ``systems`` for ``token_system``."""
    if row.system is None:
        return (None, row.code, row.text)
    systems.add(row.system)
    return (system_id(row.system), row.code, row.text)


def _plain_values(row: Any, _: set[str]) -> tuple[Any, ...]:
    return tuple(row[1:])


_SHAPES: dict[str, Callable[[Any, set[str]], tuple[Any, ...]]] = {
    attr: {"references": _reference_values, "tokens": _token_values}.get(attr, _plain_values)
    for attr in INDEX_TABLES
}
"""IndexRows attribute -> the stored values of one of its rows (after ``resource_pk``,
``patient_id`` and ``pid``)."""


class SqlSession:
    """One transaction on one connection (see :class:`~sokhoe.store.ports.StoreSession`)."""

    def __init__(self, conn: Connection, *, partitioned: bool = False) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.partitioned = partitioned
        """PostgreSQL tables partitioned by patient (``store/sql/partitions.py``)."""
        self._last_pk: int | None = None
        """SQLite: the largest key this transaction allocated (see ``_allocate_pks``)."""

    # -- reads -------------------------------------------------------------------------
    def read(self, resource_type: str, id: str) -> StoredResource | None:
        stmt = select(*_COLUMNS).where(
            resource.c.resource_type == resource_type, resource.c.id == id
        )
        if self.partitioned and resource_type == "Patient":
            # a Patient is its own compartment: one partition, not a probe of each
            stmt = stmt.where(resource.c.patient_id == id)
        row = self.conn.execute(stmt).first()
        return _row(row) if row else None

    def read_many(
        self, keys: Sequence[tuple[str, str]], access: Confinement | None = None
    ) -> list[StoredResource]:
        by_type: dict[str, list[str]] = defaultdict(list)
        for rtype, rid in keys:
            by_type[rtype].append(rid)
        found: dict[tuple[str, str], StoredResource] = {}
        for rtype, ids in by_type.items():
            for chunk in _chunks(sorted(set(ids))):
                stmt = select(*_COLUMNS).where(
                    resource.c.resource_type == rtype,
                    resource.c.id.in_(chunk),
                    resource.c.deleted == false(),
                )
                if self.partitioned and rtype == "Patient":  # as in :meth:`read`
                    stmt = stmt.where(resource.c.patient_id.in_(chunk))
                if access is not None:
                    stmt = stmt.where(confine(access, resource.c))
                rows = self.conn.execute(stmt)
                for row in rows:
                    found[(row.resource_type, row.id)] = _row(row)
        return [found[k] for k in dict.fromkeys(keys) if k in found]

    def current_versions(self, resource_type: str, ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(sorted(set(ids))):
            stmt = select(resource.c.id, resource.c.version_id).where(
                resource.c.resource_type == resource_type, resource.c.id.in_(chunk)
            )
            if self.dialect == "postgresql":
                stmt = stmt.with_for_update()
            try:
                out.update({r.id: r.version_id for r in self.conn.execute(stmt)})
            except DBAPIError as exc:
                if partitions.moved_concurrently(exc):
                    raise Conflict(
                        f"A {resource_type} changed patient concurrently; retry"
                    ) from exc
                raise
        return out

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource | None:
        h = resource_history.c
        row = self.conn.execute(
            select(*_HISTORY_COLUMNS)
            .select_from(_VERSIONS)
            .where(h.resource_type == resource_type, h.id == id, h.version_id == version_id)
        ).first()
        return _row(row) if row else None

    def read_shown(
        self, resource_type: str, id: str, access: Confinement
    ) -> tuple[StoredResource | None, bool]:
        r = resource.c
        row = self.conn.execute(
            select(*_COLUMNS, confine(access, r).label("shown")).where(
                r.resource_type == resource_type, r.id == id
            )
        ).first()
        return (_row(row), bool(row.shown)) if row else (None, False)

    def visible(self, keys: Sequence[tuple[str, str]], access: Confinement) -> set[tuple[str, str]]:
        by_type: dict[str, list[str]] = defaultdict(list)
        for rtype, rid in keys:
            by_type[rtype].append(rid)
        out: set[tuple[str, str]] = set()
        r = resource.c
        for rtype, ids in by_type.items():
            for chunk in _chunks(sorted(set(ids))):
                rows = self.conn.execute(
                    select(r.id).where(
                        r.resource_type == rtype, r.id.in_(chunk), confine(access, r)
                    )
                )
                out.update((rtype, row.id) for row in rows)
        return out

    def visible_version(
        self, resource_type: str, id: str, version_id: int, access: Confinement
    ) -> bool:
        h = resource_history.c
        found = self.conn.execute(
            select(h.version_id).where(
                h.resource_type == resource_type,
                h.id == id,
                h.version_id == version_id,
                confine(access, h),
            )
        ).first()
        return found is not None

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]:
        h = resource_history.c
        conds = []
        if resource_type:
            conds.append(h.resource_type == resource_type)
        if id:
            conds.append(h.id == id)
        if since:
            conds.append(h.last_updated >= since)
        if access is not None:
            conds.append(confine(access, h))
        where = and_(True, *conds)
        total = self.conn.execute(select(func.count()).select_from(resource_history).where(where))
        rows = self.conn.execute(
            select(*_HISTORY_COLUMNS)
            .select_from(_VERSIONS)
            .where(where)
            .order_by(h.last_updated.desc(), h.resource_type, h.id, h.version_id.desc())
            .limit(count)
            .offset(offset)
        )
        return [_row(r) for r in rows], int(total.scalar_one())

    def compartment(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str] | None,
        since: datetime | None,
        count: int,
        offset: int,
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]:
        r = resource.c
        conds = [r.patient_id.in_(list(patient_ids)), r.deleted == false()]
        if types:
            conds.append(r.resource_type.in_(list(types)))
        if since:
            conds.append(r.last_updated >= since)
        if access is not None:
            conds.append(confine(access, r))
        total = self.conn.execute(select(func.count()).select_from(resource).where(*conds))
        rows = self.conn.execute(
            select(*_COLUMNS)
            .where(*conds)
            .order_by(r.resource_type, r.id)
            .limit(count)
            .offset(offset)
        )
        return [_row(x) for x in rows], int(total.scalar_one())

    def deleted_before(self, cutoff: datetime, limit: int) -> list[StoredResource]:
        r = resource.c
        rows = self.conn.execute(
            select(*_COLUMNS)
            .where(r.deleted == true(), r.last_updated < cutoff)
            .order_by(r.last_updated, r.resource_type, r.id)
            .limit(limit)
        )
        return [_row(row) for row in rows]

    def purge(self, resource_type: str, id: str) -> int:
        r, h = resource.c, resource_history.c
        pk = self.conn.execute(
            select(r.pk).where(r.resource_type == resource_type, r.id == id)
        ).scalar_one_or_none()
        if pk is not None:
            self._delete_index([int(pk)])
            self.conn.execute(delete(resource).where(r.pk == pk))
        if self.partitioned:
            partitions.release(self.conn, resource_type, id)
        removed = self.conn.execute(
            delete(resource_history).where(h.resource_type == resource_type, h.id == id)
        ).rowcount
        return int(removed)

    def search_ids(
        self, query: SearchQuery, limit: int, access: Confinement | None = None
    ) -> list[str]:
        driver = self._driver(query, access)
        cached = ID_STATEMENTS.statement(query, limit, driver) if access is None else None
        if cached is not None:
            return [row[-1] for row in self.conn.execute(*cached)]
        stmt = self._compiler(access).ids(query, driver).order_by(resource.c.id).limit(limit)
        return [row[-1] for row in self.conn.execute(stmt)]

    def search(self, query: SearchQuery, access: Confinement | None = None) -> SearchPage:
        if (
            access is None
            and self.dialect == "sqlite"
            and query.resource_type is not None
            and query.total == "none"
            and query.summary is None
            and query.count > 0
            and not (query.sort or query.includes or query.revincludes)
            and ID_STATEMENTS.cacheable(query)
        ):
            # the id statement of this shape is compiled already: ids, then the rows. Same
            # order (by id) and page; one SQLite transaction is one snapshot, so the two
            # statements see the same data
            page = self.search_ids(query, query.offset + query.count)[query.offset :]
            return SearchPage(self.read_many([(query.resource_type, i) for i in page]), [], None)
        compiler = self._compiler(access)
        ids = compiler.ids(query, self._driver(query, access)).subquery()
        total: int | None = None
        if query.total != "none" or query.summary == "count":
            total = int(self.conn.execute(select(func.count()).select_from(ids)).scalar_one())
        if query.summary == "count" or query.count == 0:
            return SearchPage([], [], total)
        r = resource.c
        if query.resource_type is not None:
            join_on = and_(r.resource_type == query.resource_type, r.id == ids.c.id)
        else:
            join_on = and_(r.resource_type == ids.c.resource_type, r.id == ids.c.id)
        if self.partitioned and query.patient_ids is not None:  # so already; said, it prunes
            join_on = and_(join_on, r.patient_id.in_(query.patient_ids))
        stmt = (
            select(*_COLUMNS)
            .select_from(resource.join(ids, join_on))
            .order_by(*compiler.sort_columns(query))
            .limit(query.count)
            .offset(query.offset)
        )
        matches = [_row(x) for x in self.conn.execute(stmt)]
        included = self._included(query, matches, access)
        return SearchPage(matches, included, total)

    def _driver(self, query: SearchQuery, access: Confinement | None) -> int | None:
        """Which criterion a search starts from (``Compiler.ids``): the one with the fewest
        index rows, each counted up to PROBE_ROWS. SQLite only: PostgreSQL's planner keeps
        statistics per value and chooses by itself."""
        if self.dialect != "sqlite" or query.resource_type is None or selective_criteria(query) < 2:
            return None
        counts = self._count(query, access, sql_search.PROBE_ROWS)
        if len(counts) < 2:
            return None
        if min(counts) >= sql_search.PROBE_ROWS:  # every one passed the cap: count them further
            counts = self._count(query, access, sql_search.WIDE_PROBE_ROWS)
        return counts.index(min(counts))

    def _count(self, query: SearchQuery, access: Confinement | None, rows: int) -> list[int]:
        """Index rows of each unit of ``query`` (``Compiler.units``), counted up to ``rows``."""
        cached = ID_STATEMENTS.probes(query, rows) if access is None else None
        if cached is None:
            cached = count_probes(self._compiler(access), query, rows), {}
        probes, params = cached
        return [int(self.conn.execute(p, params).scalar_one()) for p in probes]

    def _compiler(self, access: Confinement | None) -> Compiler:
        # PostgreSQL's index rows carry the patient (``_insert_index``): on partitioned tables a
        # compartment search names it in their subqueries too, which prunes their partitions
        return Compiler(access, index_by_patient=self.partitioned)

    def _included(
        self, query: SearchQuery, matches: list[StoredResource], access: Confinement | None
    ) -> list[StoredResource]:
        if not matches or not (query.includes or query.revincludes):
            return []
        seen = {(m.resource_type, m.id) for m in matches}
        out: list[StoredResource] = []
        frontier = matches
        for rounds in range(3):  # :iterate is followed a bounded number of times
            keys: list[tuple[str, str]] = []
            for inc in query.includes:
                if rounds and not inc.iterate:
                    continue
                keys += self._include_keys(inc, frontier)
            for inc in query.revincludes:
                if rounds and not inc.iterate:
                    continue
                keys += self._revinclude_keys(inc, frontier)
            new = [k for k in dict.fromkeys(keys) if k not in seen]
            if not new:
                break
            seen.update(new)
            frontier = self.read_many(new, access)
            out += frontier
        return out

    def _include_keys(self, inc: Include, frontier: list[StoredResource]) -> list[tuple[str, str]]:
        ids = [m.id for m in frontier if m.resource_type == inc.source_type]
        if not ids:
            return []
        s = sp_reference.c
        keys: list[tuple[str, str]] = []
        for chunk in _chunks(ids):
            sources = select(resource.c.pk).where(
                resource.c.resource_type == inc.source_type, resource.c.id.in_(chunk)
            )
            stmt = select(s.target_type, s.target_id).where(
                s.resource_pk.in_(sources),
                s.target_id.is_not(None),
            )
            if inc.param != "*":
                stmt = stmt.where(param_is(sp_reference, inc.source_type, inc.param))
            if inc.target_type:
                stmt = stmt.where(s.target_type == inc.target_type)
            keys += [(r.target_type, r.target_id) for r in self.conn.execute(stmt)]
        return keys

    def _revinclude_keys(
        self, inc: Include, frontier: list[StoredResource]
    ) -> list[tuple[str, str]]:
        s = sp_reference.c
        keys: list[tuple[str, str]] = []
        by_type: dict[str, list[str]] = defaultdict(list)
        for m in frontier:
            by_type[m.resource_type].append(m.id)
        for target_type, ids in by_type.items():
            if inc.target_type and inc.target_type != target_type:
                continue
            for chunk in _chunks(ids):
                sources = select(s.resource_pk).where(
                    s.target_type == target_type, s.target_id.in_(chunk)
                )
                if inc.param != "*":
                    sources = sources.where(param_is(sp_reference, inc.source_type, inc.param))
                stmt = select(resource.c.resource_type, resource.c.id).where(
                    resource.c.pk.in_(sources), resource.c.resource_type == inc.source_type
                )
                keys += [(r.resource_type, r.id) for r in self.conn.execute(stmt)]
        return keys

    # -- the care-relationship index ----------------------------------------------------
    def care(
        self, patient_ids: Sequence[str], grantees: Sequence[str] | None = None
    ) -> list[CareRow]:
        c = care_relationship.c
        out: list[CareRow] = []
        for chunk in _chunks(sorted(set(patient_ids))):
            stmt = select(care_relationship).where(c.patient_id.in_(chunk))
            if grantees is not None:
                stmt = stmt.where(c.grantee.in_(list(grantees)))
            for row in self.conn.execute(stmt.order_by(c.patient_id, c.grantee, c.source)):
                out.append(
                    CareRow(
                        row.patient_id,
                        row.grantee,
                        row.level,
                        bool(row.proven),
                        row.source,
                        row.source_ref,
                        row.via,
                        _utc(row.since),
                        _utc(row.until) if row.until is not None else None,
                        bool(row.all_labels),
                    )
                )
        return out

    def relate(self, rows: Sequence[CareRow]) -> None:
        self._replace_rows(care_relationship, rows)

    def unrelate(self, rows: Sequence[CareRow]) -> None:
        self._delete_rows(care_relationship, rows)

    def _replace_rows(self, table: Table, rows: Sequence[CareRow | Restriction]) -> None:
        """Insert ``rows`` (dataclasses named like the table's columns); a row with the same
        primary key is replaced."""
        if not rows:
            return
        latest = {r.key: r for r in rows}
        self._delete_rows(table, list(latest.values()))
        columns = tuple(c.name for c in table.columns)
        insert_rows(self.conn, table, columns, [_values(r, columns) for r in latest.values()])

    def _delete_rows(self, table: Table, rows: Sequence[CareRow | Restriction]) -> None:
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        stmt = delete(table).where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
        self.conn.execute(stmt, [{f"k_{k}": getattr(r, k) for k in keys} for r in rows])

    def restrictions(self, patient_ids: Sequence[str]) -> list[Restriction]:
        x = care_restriction.c
        out: list[Restriction] = []
        for chunk in _chunks(sorted(set(patient_ids))):
            rows = self.conn.execute(
                select(care_restriction)
                .where(x.patient_id.in_(chunk))
                .order_by(x.patient_id, x.label, x.facility)
            )
            out += [
                Restriction(r.patient_id, r.label, r.facility, r.source_ref, r.via) for r in rows
            ]
        return out

    def restrict(self, rows: Sequence[Restriction]) -> None:
        self._replace_rows(care_restriction, rows)

    def unrestrict(self, rows: Sequence[Restriction]) -> None:
        self._delete_rows(care_restriction, rows)

    def side_tables(self, work: Callable[[Connection], T]) -> T | None:
        return work(self.conn)

    # -- writes ------------------------------------------------------------------------
    def write(self, items: Sequence[WriteItem]) -> None:
        if not items:
            return
        new = [i for i in items if i.previous_version is None]
        changed = [i for i in items if i.previous_version is not None]
        pks: dict[tuple[str, str], int] = {}
        try:
            if new:
                if self.partitioned:  # the uniqueness resource's own key cannot hold
                    partitions.claim(self.conn, new)
                for item, pk in zip(new, self._allocate_pks(len(new)), strict=True):
                    pks[(item.resource_type, item.id)] = pk
                insert_rows(
                    self.conn,
                    resource,
                    (*_VERSION_COLUMNS, "pk"),
                    [(*_version_values(i, i.content), pks[(i.resource_type, i.id)]) for i in new],
                )
            if changed:
                self._keep_replaced(changed)
                self._update_current(changed)
                old = self._pks(changed)
                self._delete_index(list(old.values()))
                pks.update(old)
            latest = {(i.resource_type, i.id): i for i in items}
            insert_rows(
                self.conn,
                resource_history,
                (*_VERSION_COLUMNS, "method"),
                [
                    # the current version's JSON is in resource alone
                    (
                        *_version_values(
                            i, None if latest[(i.resource_type, i.id)] is i else i.content
                        ),
                        i.method,
                    )
                    for i in items
                ],
            )
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError) or partitions.moved_concurrently(exc):
                raise Conflict(
                    "A resource was created or changed concurrently; retry with the new version"
                ) from exc
            raise
        self._insert_index(items, pks)

    def _allocate_pks(self, n: int) -> list[int]:
        """Surrogate keys for ``n`` new resources.

        PostgreSQL draws them from a sequence in one round trip. SQLite has a single writer
        (``BEGIN IMMEDIATE`` holds the lock for the whole transaction), so counting on from
        the largest key cannot collide; the largest is read once per transaction, since no
        one else can insert until it ends.
        """
        if self.dialect == "postgresql":
            rows = self.conn.execute(
                select(func.nextval(resource_pk_seq.name)).select_from(func.generate_series(1, n))
            )
            return [int(r[0]) for r in rows]
        start = self._last_pk
        if start is None:
            start = int(
                self.conn.execute(select(func.coalesce(func.max(resource.c.pk), 0))).scalar_one()
            )
        self._last_pk = start + n
        return list(range(start + 1, start + 1 + n))

    def _pks(self, items: Sequence[WriteItem]) -> dict[tuple[str, str], int]:
        by_type: dict[str, list[str]] = defaultdict(list)
        for i in items:
            by_type[i.resource_type].append(i.id)
        out: dict[tuple[str, str], int] = {}
        for rtype, ids in by_type.items():
            for chunk in _chunks(ids):
                rows = self.conn.execute(
                    select(resource.c.id, resource.c.pk).where(
                        resource.c.resource_type == rtype, resource.c.id.in_(chunk)
                    )
                )
                out.update({(rtype, r.id): int(r.pk) for r in rows})
        return out

    def _keep_replaced(self, items: Sequence[WriteItem]) -> None:
        """Move the JSON of each version being replaced from ``resource`` to its history row
        (where it was NULL while it was current), in the database, without reading it."""
        r, h = resource.c, resource_history.c
        current = (
            select(r.content)
            .where(r.resource_type == bindparam("k_type"), r.id == bindparam("k_id"))
            .scalar_subquery()
        )
        self.conn.execute(
            update(resource_history)
            .where(
                h.resource_type == bindparam("k_type"),
                h.id == bindparam("k_id"),
                h.version_id == bindparam("k_prev"),
            )
            .values(content=current),
            [
                {"k_type": i.resource_type, "k_id": i.id, "k_prev": i.previous_version}
                for i in items
            ],
        )

    def _update_current(self, items: Sequence[WriteItem]) -> None:
        stmt = (
            update(resource)
            .where(
                resource.c.resource_type == bindparam("k_type"),
                resource.c.id == bindparam("k_id"),
                resource.c.version_id == bindparam("k_prev"),
            )
            .values(
                version_id=bindparam("version_id"),
                last_updated=bindparam("last_updated"),
                deleted=bindparam("deleted"),
                patient_id=bindparam("patient_id"),
                content=bindparam("content", type_=resource.c.content.type),
                owner=bindparam("owner"),
                labels=bindparam("labels"),
            )
        )
        params = [
            {
                "k_type": i.resource_type,
                "k_id": i.id,
                "k_prev": i.previous_version,
                "version_id": i.version_id,
                "last_updated": i.last_updated,
                "deleted": i.content is None,
                "patient_id": i.patient_id,
                "content": i.content,
                "owner": i.owner,
                "labels": i.labels,
            }
            for i in items
        ]
        for p in params:  # one by one: rowcount tells whether someone else got there first
            if self.conn.execute(stmt, p).rowcount != 1:
                raise Conflict(
                    f"{p['k_type']}/{p['k_id']} changed concurrently "
                    f"(expected version {p['k_prev']})"
                )

    def _delete_index(self, pks: list[int]) -> None:
        for table in INDEX_TABLES.values():
            for chunk in _chunks(pks):
                self.conn.execute(delete(table).where(table.c.resource_pk.in_(chunk)))

    def _insert_index(self, items: Sequence[WriteItem], pks: dict[tuple[str, str], int]) -> None:
        """Insert the index rows with one driver-level ``executemany`` per table.

        Ingest writes tens of rows per resource; SQLAlchemy's per-row parameter processing was
        the largest cost of a bulk load, and these columns need no type conversion.
        """
        # PostgreSQL partitions (and Citus distributes) index rows by patient; one SQLite file
        # has no use for 36 more bytes in every row and index entry
        by_patient = self.dialect == "postgresql"
        union = unions()  # their rows are their members' (``search/unions.py``)
        restricted = restrictions()  # their rows to the type they restrict to are too
        systems: set[str] = set()
        for attr, table in INDEX_TABLES.items():
            shaped = _SHAPES[attr]
            params = [
                (
                    pks[(item.resource_type, item.id)],
                    item.patient_id if by_patient else None,
                    param_id(item.resource_type, row[0]),
                    *shaped(row, systems),
                )
                for item in items
                if item.index is not None
                for row in getattr(item.index, attr)
                if row[0] not in ON_RESOURCE  # searched in ``resource`` (``search.py``)
                and (item.resource_type, row[0]) not in union
                and not (
                    attr == "references"
                    and (r := restricted.get((item.resource_type, row[0]))) is not None
                    and row.target_type == r.target
                )
            ]
            insert_rows(self.conn, table, tuple(c.name for c in table.columns), params)
        if systems:  # each system's text beside its number, once (``identity.py``)
            add = sqlite_insert if self.dialect == "sqlite" else pg_insert
            self.conn.execute(
                add(token_system).on_conflict_do_nothing(index_elements=["id"]),
                [{"id": system_id(x), "system": x} for x in sorted(systems)],
            )


class SqlStore:
    """A FHIR store in SQLite or PostgreSQL (one writer engine and one reader engine)."""

    def __init__(self, url: str, *, migrate_schema: bool = True, partitions: int = 0) -> None:
        self.url = url
        self.writer: Engine = make_engine(url, write=True)
        in_memory = self.writer.dialect.name == "sqlite" and self.writer.url.database in (
            None,
            "",
            ":memory:",
        )  # an in-memory SQLite is one connection's own: a second engine would see nothing
        self.reader: Engine = (
            make_engine(url, write=False)
            if self.writer.dialect.name == "sqlite" and not in_memory
            else self.writer
        )
        self.dialect = self.writer.dialect.name
        if migrate_schema:
            migrate.upgrade(self.writer, partitions=partitions)
        with self.reader.connect() as conn:
            held = load_dictionaries(conn, content_dictionary)
            self.partitioned = _partitioned(conn)
        if CURRENT not in held:  # a database from before this package's dictionary
            with self.writer.begin() as conn:
                record_current(conn, content_dictionary)

    @contextmanager
    def begin(self, *, write: bool = False) -> Iterator[SqlSession]:
        engine = self.writer if write else self.reader
        with engine.begin() as conn:
            yield SqlSession(conn, partitioned=self.partitioned)

    def iter_all(
        self, resource_type: str | None = None, access: Confinement | None = None
    ) -> Iterator[StoredResource]:
        """Every current resource (deleted ones excluded), in a stable order, streamed."""
        r = resource.c
        stmt = select(*_COLUMNS).where(r.deleted == false()).order_by(r.resource_type, r.id)
        if resource_type:
            stmt = stmt.where(r.resource_type == resource_type)
        if access is not None:
            stmt = stmt.where(confine(access, r))
        with self.reader.connect() as conn:
            result = conn.execution_options(yield_per=1000).execute(stmt)
            for row in result:
                yield _row(row)

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


def _partitioned(conn: Connection) -> bool:
    return partitions.is_partitioned(conn)


def open_store(url: str, *, partitions: int = 0) -> SqlStore:
    """The store at ``url``, migrated; ``partitions``: ``Settings.pg_partitions``, used only
    when the migrations create a new PostgreSQL database."""
    return SqlStore(url, partitions=partitions)
