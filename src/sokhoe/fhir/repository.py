"""FHIR interactions (create, read, update, delete, search, history) over store sessions.

This is where FHIR semantics live — versioning, conditional interactions, optimistic locking,
no-op updates — once, for every store and every entry point (REST, bundles, HL7, loaders). The
store only persists what this module decides.

It opens no database itself: a subclass hands it transactions (:meth:`transaction`,
:meth:`snapshot`) and says what the caller may see (:attr:`access`). The one subclass is the
access door (``sokhoe.access.guard.GuardedRepository``), whose sessions authorise every write
on what it writes and audit it in the same transaction; reads that answer a caller are
confined in the query with :attr:`access`. So nothing outside ``sokhoe.access`` can write a
record without the door.
See: https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from sokhoe.errors import (
    Gone,
    InvalidRequest,
    InvalidResource,
    NotFound,
    PreconditionFailed,
)
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.patient_links import linked_patient_ids, widen_to_linked_patients
from sokhoe.fhir.precheck import Checked
from sokhoe.fhir.profiles import profile_issues
from sokhoe.fhir.resources import ID_RE, new_id, same_content, with_meta
from sokhoe.fhir.searchparams import registry
from sokhoe.fhir.validation import find_issues
from sokhoe.registry.sensitivity import ACT_CODE, SENSITIVE
from sokhoe.search.index import compartment_patient_id, extract_index, with_server_rows
from sokhoe.search.parse import SearchParser
from sokhoe.search.query import SearchQuery
from sokhoe.search.rows import IndexRows
from sokhoe.store.ports import Confinement, SearchPage, StoredResource, StoreSession, WriteItem

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of a write: the version now current and the HTTP status it deserves."""

    resource: StoredResource
    status: int
    """201 created, 200 updated or found, 204 nothing to delete."""
    disclosed: bool = True
    """False when a conditional create matched a resource the caller may not see: the answer
    then says so without the resource."""


def check_type(resource_type: str) -> None:
    if resource_type not in resource_types():
        raise NotFound(f"Unknown resource type '{resource_type}'")


def check_id(rid: str) -> None:
    if not ID_RE.match(rid):
        raise InvalidRequest(f"'{rid}' is not a valid FHIR id", "id")


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: W/"3"`` -> 3."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise InvalidRequest(f"If-Match must be an ETag like W/\"3\", got '{value}'", "If-Match")
    return int(text)


def validated(
    resource: Any,
    expected_type: str | None = None,
    where: str = "",
    checked: Checked | None = None,
) -> dict[str, Any]:
    """Check the body is a resource of the expected type and valid R4, or raise with paths.

    ``where`` prefixes the issue paths, e.g. ``Bundle.entry[3].resource``. ``checked`` is what
    a bulk loader's worker process found for this very content (``fhir.precheck``): its issues
    stand for the validator's and the platform rules', and its in-place changes are made here.
    """
    if not isinstance(resource, dict):
        raise InvalidRequest("The body must be a JSON object (a FHIR resource)", where or None)
    rtype = resource.get("resourceType")
    if expected_type and rtype != expected_type:
        raise InvalidRequest(
            f"resourceType '{rtype}' does not match the URL type '{expected_type}'",
            f"{where}.resourceType" if where else "resourceType",
        )
    if checked is None:
        issues = find_issues(resource)
        issues += [i for i in profile_issues(resource) if i not in issues]
    else:
        issues = list(checked.issues)
        if not issues:
            checked.normalised.apply(resource)
    if issues:
        if where:
            issues = [replace(i, expression=_reroot(i.expression, where)) for i in issues]
        raise InvalidResource(list(issues))
    return resource


def sensitive_labels(content: dict[str, Any] | None) -> str | None:
    """The sensitive categories in ``meta.security`` (``HIV,PSY``), or None."""
    if content is None:
        return None
    found = sorted(
        {
            str(s.get("code"))
            for s in (content.get("meta") or {}).get("security", [])
            if isinstance(s, dict) and s.get("system") == ACT_CODE and s.get("code") in SENSITIVE
        }
    )
    return ",".join(found) or None


def if_none_exist_query(value: str, resource_type: str) -> str:
    """The search parameters of an ``If-None-Exist`` value (header or a transaction entry's
    ``request.ifNoneExist``).

    The specification says the value is the search parameters alone, "what would be in the URL
    following the ?" (https://hl7.org/fhir/R4/http.html#ccreate). HAPI FHIR's generic client
    (``create().conditionalByUrl(...)``) sends ``[base]/Type?params`` instead, and HAPI's server
    accepts both; so does this: a value whose part before the first ``?`` holds no ``=`` is
    read as a URL, whose last path segment must be ``resource_type``.
    """
    head, mark, query = value.partition("?")
    if not mark or "=" in head:
        return value
    if head.rstrip("/").rsplit("/", 1)[-1] != resource_type:
        raise InvalidRequest(f"If-None-Exist '{value}' does not search {resource_type}")
    return query


def _reroot(expression: str | None, where: str) -> str:
    if not expression:
        return where
    _, _, rest = expression.partition(".")
    return f"{where}.{rest}" if rest else where


class FhirRepository:
    """The FHIR interactions, each in its own transaction unless one is passed in."""

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock = utc_now,
        default_count: int = 50,
        max_count: int = 1000,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.default_count = default_count
        self.max_count = max_count

    # -- what a subclass provides ------------------------------------------------------
    def transaction(self) -> AbstractContextManager[StoreSession]:
        """A write transaction whose writes are authorised and audited (the access door)."""
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[StoreSession]:
        """A read transaction."""
        raise NotImplementedError

    @property
    def access(self) -> Confinement | None:
        """What the caller may see (None: everything); every read that answers the caller
        passes it to the store, which puts it in the query."""
        return None

    def record_read(
        self,
        tx: StoreSession,
        action: str,
        resources: Sequence[StoredResource],
        query: str | None,
    ) -> None:
        """Audit a read answered inside ``tx`` (a bundle's GET entries); the door records it
        in that transaction."""

    def discloses(self, tx: StoreSession, stored: StoredResource) -> bool:
        """Whether the caller may be shown ``stored`` (a conditional create's match)."""
        access = self.access
        if access is None:
            return True
        return (stored.resource_type, stored.id) in tx.visible(
            [(stored.resource_type, stored.id)], access
        )

    # -- helpers shared with bundles ---------------------------------------------------
    def parser(self, *, strict: bool = False) -> SearchParser:
        return SearchParser(
            registry(),
            self.base_url,
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
        )

    def parse_query(
        self, resource_type: str | None, params: Sequence[tuple[str, str]], *, strict: bool = False
    ) -> SearchQuery:
        return self.parser(strict=strict).parse(resource_type, params)

    def conditional_matches(
        self, tx: StoreSession, resource_type: str, query: str, *, confined: bool = False
    ) -> list[str]:
        """Ids matching a conditional (``If-None-Exist``, ``Type?x=y``); at most 2 are needed.

        Conditional creates, updates and deletes match everything (a duplicate must not be
        made because the caller cannot see the original; the door then refuses to show or
        touch it); a conditional *reference* is ``confined``: one may point only at what one
        may see.
        """
        params = parse_qsl(query, keep_blank_values=True)
        if not params:
            raise InvalidRequest(f"Conditional '{resource_type}?{query}' has no criteria")
        q = self.parse_query(resource_type, params, strict=True)
        return tx.search_ids(q, 2, self.access if confined else None)

    def prepare(
        self,
        resource: dict[str, Any],
        rid: str,
        version: int,
        method: str,
        previous: int | None,
        when: datetime,
        client_index: IndexRows | None = None,
    ) -> WriteItem:
        """Stamp meta, extract the search index and the patient compartment of a new version.

        ``client_index`` is the part of the index computed ahead by a bulk loader's workers
        (``search.index.extract_client_index`` of this very content); only the rows of the
        server-assigned values are added here.
        """
        content = with_meta(resource, rid, version, when)
        if client_index is None:
            index = extract_index(content)
        else:
            index = with_server_rows(client_index, rid, content["meta"]["lastUpdated"])
        return WriteItem(
            resource_type=content["resourceType"],
            id=rid,
            version_id=version,
            last_updated=when,
            content=content,
            patient_id=compartment_patient_id(content, index),
            index=index,
            method=method,
            previous_version=previous,
            labels=sensitive_labels(content),
        )

    def deletion(self, current: StoredResource, when: datetime) -> WriteItem:
        return WriteItem(
            current.resource_type,
            current.id,
            current.version_id + 1,
            when,
            None,
            current.patient_id,
            None,
            "DELETE",
            current.version_id,
            owner=current.owner,
            labels=current.labels,
        )

    @staticmethod
    def stored(item: WriteItem) -> StoredResource:
        return StoredResource(
            item.resource_type,
            item.id,
            item.version_id,
            item.last_updated,
            item.content is None,
            item.content,
            item.patient_id,
            item.method,
            item.owner,
            item.labels,
        )

    # -- create ----------------------------------------------------------------------
    def create(
        self,
        resource: Any,
        resource_type: str,
        *,
        if_none_exist: str | None = None,
        tx: StoreSession | None = None,
    ) -> Outcome:
        check_type(resource_type)
        validated(resource, resource_type)
        if tx is None:
            with self.transaction() as session:
                return self._create(session, resource, resource_type, if_none_exist)
        return self._create(tx, resource, resource_type, if_none_exist)

    def _create(
        self,
        tx: StoreSession,
        resource: dict[str, Any],
        resource_type: str,
        if_none_exist: str | None,
    ) -> Outcome:
        if if_none_exist:
            query = if_none_exist_query(if_none_exist, resource_type)
            found = self.conditional_matches(tx, resource_type, query)
            if len(found) > 1:
                raise PreconditionFailed(
                    f"If-None-Exist '{if_none_exist}' matched more than one {resource_type}"
                )
            if found:
                current = tx.read(resource_type, found[0])
                if current is None:  # pragma: no cover - search and read share a transaction
                    raise NotFound(f"{resource_type}/{found[0]} vanished")
                return Outcome(current, 200, self.discloses(tx, current))
        item = self.prepare(resource, new_id(), 1, "POST", None, self.clock())
        tx.write([item])
        return Outcome(self.stored(item), 201)

    # -- read ------------------------------------------------------------------------
    def read(self, resource_type: str, rid: str) -> StoredResource:
        check_type(resource_type)
        with self.snapshot() as tx:
            current = tx.read(resource_type, rid)
        if current is None:
            raise NotFound(f"{resource_type}/{rid} is not known")
        if current.deleted:
            raise Gone(f"{resource_type}/{rid} was deleted (version {current.version_id})")
        return current

    def vread(self, resource_type: str, rid: str, version: str) -> StoredResource:
        check_type(resource_type)
        if not version.isdigit():
            raise NotFound(f"Version '{version}' of {resource_type}/{rid} is not known")
        with self.snapshot() as tx:
            found = tx.vread(resource_type, rid, int(version))
        if found is None:
            raise NotFound(f"Version {version} of {resource_type}/{rid} is not known")
        if found.deleted:
            raise Gone(f"Version {version} of {resource_type}/{rid} is a deletion")
        return found

    # -- update ----------------------------------------------------------------------
    def update(
        self,
        resource: Any,
        resource_type: str,
        rid: str,
        *,
        if_match: str | None = None,
        tx: StoreSession | None = None,
    ) -> Outcome:
        check_type(resource_type)
        check_id(rid)
        validated(resource, resource_type)
        body_id = resource.get("id")
        if body_id is None:
            raise InvalidRequest("An update must carry the resource id in the body", "id")
        if body_id != rid:
            raise InvalidRequest(f"Body id '{body_id}' does not match the URL id '{rid}'", "id")
        expected = parse_if_match(if_match)
        if tx is None:
            with self.transaction() as session:
                return self._update(session, resource, resource_type, rid, expected)
        return self._update(tx, resource, resource_type, rid, expected)

    def _update(
        self,
        tx: StoreSession,
        resource: dict[str, Any],
        resource_type: str,
        rid: str,
        expected: int | None,
    ) -> Outcome:
        current = tx.read(resource_type, rid)
        if expected is not None and (current is None or current.version_id != expected):
            have = "no version" if current is None else f"version {current.version_id}"
            raise PreconditionFailed(
                f"If-Match expected version {expected} of {resource_type}/{rid}; "
                f"the server has {have}"
            )
        if current is not None and not current.deleted and current.content is not None:
            if same_content(current.content, resource):
                return Outcome(current, 200)
        version = 1 if current is None else current.version_id + 1
        previous = None if current is None else current.version_id
        item = self.prepare(resource, rid, version, "PUT", previous, self.clock())
        tx.write([item])
        status = 201 if current is None or current.deleted else 200
        return Outcome(self.stored(item), status)

    def conditional_update(
        self, resource: Any, resource_type: str, query: str, *, tx: StoreSession | None = None
    ) -> Outcome:
        check_type(resource_type)
        validated(resource, resource_type)
        if tx is None:
            with self.transaction() as session:
                return self._conditional_update(session, resource, resource_type, query)
        return self._conditional_update(tx, resource, resource_type, query)

    def _conditional_update(
        self, tx: StoreSession, resource: dict[str, Any], resource_type: str, query: str
    ) -> Outcome:
        found = self.conditional_matches(tx, resource_type, query)
        if len(found) > 1:
            raise PreconditionFailed(
                f"Conditional update '{query}' matched several {resource_type}"
            )
        body_id = resource.get("id")
        if found:
            if body_id and body_id != found[0]:
                raise InvalidRequest(
                    f"Body id '{body_id}' differs from the matched {resource_type}/{found[0]}", "id"
                )
            return self._update(tx, {**resource, "id": found[0]}, resource_type, found[0], None)
        # No match: a new resource with an id of the server's choosing. Taking the body's id
        # would let a conditional update overwrite any resource it names, matched or not.
        rid = new_id()
        return self._update(tx, {**resource, "id": rid}, resource_type, rid, None)

    # -- delete ----------------------------------------------------------------------
    def delete(
        self, resource_type: str, rid: str, *, tx: StoreSession | None = None
    ) -> Outcome | None:
        """Logical delete: a new version marks the resource deleted; history is kept."""
        check_type(resource_type)
        if tx is None:
            with self.transaction() as session:
                return self._delete(session, resource_type, rid)
        return self._delete(tx, resource_type, rid)

    def _delete(self, tx: StoreSession, resource_type: str, rid: str) -> Outcome | None:
        current = tx.read(resource_type, rid)
        if current is None or current.deleted:
            return None
        item = self.deletion(current, self.clock())
        tx.write([item])
        return Outcome(self.stored(item), 200)

    def conditional_delete(
        self, resource_type: str, query: str, *, tx: StoreSession | None = None
    ) -> Outcome | None:
        check_type(resource_type)
        if tx is None:
            with self.transaction() as session:
                return self._conditional_delete(session, resource_type, query)
        return self._conditional_delete(tx, resource_type, query)

    def _conditional_delete(
        self, tx: StoreSession, resource_type: str, query: str
    ) -> Outcome | None:
        found = self.conditional_matches(tx, resource_type, query)
        if len(found) > 1:
            raise PreconditionFailed(
                f"Conditional delete '{query}' matched several {resource_type}"
            )
        return self._delete(tx, resource_type, found[0]) if found else None

    # -- search and history ------------------------------------------------------------
    def search(self, query: SearchQuery) -> SearchPage:
        if query.resource_type is not None:
            check_type(query.resource_type)
        with self.snapshot() as tx:
            return tx.search(widen_to_linked_patients(tx, query), self.access)

    def search_union(self, queries: Sequence[SearchQuery], limit: int) -> list[StoredResource]:
        """The union of several searches' first ``limit`` matches each (in id order, as
        ``search`` pages them), read in one snapshot: what the patient index's blocking
        needs, without a transaction and a full read per blocking key. Each query must name
        its resource type."""
        keys: dict[tuple[str, str], None] = {}
        with self.snapshot() as tx:
            for query in queries:
                if query.resource_type is None:
                    raise ValueError("search_union needs a resource type per query")
                check_type(query.resource_type)
                widened = widen_to_linked_patients(tx, query)
                for rid in tx.search_ids(widened, limit, self.access):
                    keys[(query.resource_type, rid)] = None
            return tx.read_many(list(keys), self.access) if keys else []

    def history(
        self,
        resource_type: str | None,
        rid: str | None,
        since: datetime | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]:
        if resource_type is not None:
            check_type(resource_type)
        with self.snapshot() as tx:
            if resource_type and rid and tx.read(resource_type, rid) is None:
                raise NotFound(f"{resource_type}/{rid} is not known")
            return tx.history(resource_type, rid, since, count, offset, self.access)

    def everything(
        self,
        patient_id: str,
        *,
        since: datetime | None,
        types: list[str] | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]:
        """The patient's compartment (``Patient/{id}/$everything``), paged.

        See: https://hl7.org/fhir/R4/patient-operation-everything.html
        """
        FhirRepository.read(self, "Patient", patient_id)  # 404/410, not a read to audit
        with self.snapshot() as tx:
            people = linked_patient_ids(tx, patient_id)
            return tx.compartment(people, types, since, count, offset, self.access)
