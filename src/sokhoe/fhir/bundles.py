"""``batch`` and ``transaction`` Bundles.

A transaction is all-or-nothing: every entry is resolved, validated and indexed first, then the
whole set of new versions is written in one store transaction; any failure raises and nothing
is written. ``urn:uuid:`` full URLs and conditional references (``Practitioner?identifier=…``)
are resolved inside the transaction, as the specification asks. A batch runs each entry in its
own transaction and reports each outcome.
See: https://hl7.org/fhir/R4/http.html#transaction
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from sokhoe.errors import (
    FhirError,
    Forbidden,
    InvalidRequest,
    Issue,
    NotFound,
    PreconditionFailed,
    operation_outcome,
)
from sokhoe.fhir.definitions import resource_types
from sokhoe.fhir.precheck import Checked
from sokhoe.fhir.references import walk_references
from sokhoe.fhir.repository import (
    FhirRepository,
    Outcome,
    check_id,
    if_none_exist_query,
    parse_if_match,
    validated,
)
from sokhoe.fhir.resources import format_instant, new_id, same_content
from sokhoe.store.ports import StoredResource, StoreSession, WriteItem

METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_LOCAL = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")


@dataclass
class Entry:
    index: int
    method: str
    url: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None = None
    if_match: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    def split_url(self) -> tuple[str, str | None, str | None]:
        """``Type``, ``Type/id`` or ``Type?query`` -> (type, id, query)."""
        url = self.url
        path, _, query = url.partition("?")
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in resource_types():
            raise InvalidRequest(
                f"Unknown resource type in request.url '{url}'", f"{self.where}.request.url"
            )
        rid = parts[1] if len(parts) > 1 else None
        return parts[0], rid, query or None


def parse_entries(bundle: Any) -> tuple[str, list[Entry]]:
    """Check the Bundle shape; return its type and entries. Raises 400 with the entry path."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("The body must be a Bundle resource", "Bundle")
    btype = bundle.get("type")
    if btype not in ("batch", "transaction"):
        raise InvalidRequest(
            f"Bundle.type must be 'batch' or 'transaction', got '{btype}'", "Bundle.type"
        )
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidRequest("Bundle.entry must be an array", "Bundle.entry")
    entries = []
    for i, e in enumerate(raw_entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(e, dict):
            raise InvalidRequest("A bundle entry must be an object", where)
        req = e.get("request")
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("method"), str)
            or not isinstance(req.get("url"), str)
        ):
            raise InvalidRequest(
                "Each entry needs request.method and request.url", f"{where}.request"
            )
        method = req["method"].upper()
        if method not in METHOD_ORDER:
            raise InvalidRequest(
                f"Unsupported request.method '{method}'", f"{where}.request.method"
            )
        resource = e.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise InvalidRequest(f"A {method} entry needs a resource", f"{where}.resource")
        if method == "PATCH":
            raise InvalidRequest("PATCH in bundles is not supported", f"{where}.request.method")
        entries.append(
            Entry(
                i,
                method,
                req["url"].lstrip("/"),
                resource,
                e.get("fullUrl"),
                req.get("ifNoneExist"),
                req.get("ifMatch"),
                e,
            )
        )
    return btype, entries


class TransactionProcessor:
    """Runs one transaction Bundle inside one store transaction."""

    def __init__(
        self,
        repo: FhirRepository,
        tx: StoreSession,
        now: datetime,
        checked: Mapping[int, Checked] | None = None,
    ) -> None:
        self.repo = repo
        self.checked = checked or {}
        """Entry index -> issues and index rows a bulk loader's worker computed ahead."""
        self.tx = tx
        self.now = now
        self.ids: dict[str, str] = {}
        """fullUrl -> ``Type/id`` of the resource it became."""
        self.conditional_cache: dict[str, str] = {}
        self.items: list[WriteItem] = []
        self.pending: dict[tuple[str, str], WriteItem] = {}
        self.prefetched: dict[tuple[str, str], StoredResource | None] = {}
        """Current versions of the PUT/DELETE targets, read in one query, not one per entry."""

    def run(self, entries: list[Entry]) -> list[dict[str, Any]]:
        ordered = sorted(entries, key=lambda e: (METHOD_ORDER[e.method], e.index))
        responses: dict[int, dict[str, Any]] = {}
        # 1. decide the identity of every entry (so references can point at it)
        plans: dict[int, tuple[str, str | None, int | None, str]] = {}
        for e in ordered:
            if e.method in ("POST", "PUT", "DELETE"):
                plans[e.index] = self._plan(e, responses)
        self._prefetch([plans[e.index] for e in ordered if e.index in plans])
        # 2. rewrite references, validate, build the new versions
        for e in ordered:
            if e.index in responses:
                continue
            if e.method == "DELETE":
                rtype, rid, _prev, _ = plans[e.index]
                responses[e.index] = self._delete(e, rtype, rid)
            elif e.method in ("POST", "PUT"):
                responses[e.index] = self._write(e, plans[e.index])
        self.tx.write(self.items)
        # 3. reads see the transaction's own writes
        for e in ordered:
            if e.method in ("GET", "HEAD"):
                responses[e.index] = read_entry(self.repo, self.tx, e)
        return [responses[e.index] for e in entries]

    def _plan(
        self, e: Entry, responses: dict[int, dict[str, Any]]
    ) -> tuple[str, str | None, int | None, str]:
        """(type, id, previous version, method) of the version this entry will write."""
        rtype, rid, query = e.split_url()
        if e.resource is not None and e.resource.get("resourceType") != rtype:
            raise InvalidRequest(
                f"resourceType '{e.resource.get('resourceType')}' does not match "
                f"request.url '{e.url}'",
                f"{e.where}.resource.resourceType",
            )
        if e.method == "POST":
            if e.if_none_exist:
                found = self._matches(rtype, if_none_exist_query(e.if_none_exist, rtype), e)
                if found:
                    existing = self.tx.read(rtype, found)
                    if existing is not None:
                        self._map(e, rtype, found)
                        if self.repo.discloses(self.tx, existing):
                            answer = response_entry(existing, 200, self.repo.base_url)
                        else:
                            answer = undisclosed_entry(rtype)
                        responses[e.index] = answer
                        return rtype, found, existing.version_id, "POST"
            rid = new_id()
            self._map(e, rtype, rid)
            return rtype, rid, None, "POST"
        if e.method == "PUT":
            if query:
                # no match: a new id, never the body's (that would overwrite what it names)
                rid = self._matches(rtype, query, e) or new_id()
            if rid is None:
                raise InvalidRequest(
                    "PUT needs Type/id or Type?criteria in request.url", f"{e.where}.request.url"
                )
            check_id(rid)
            self._map(e, rtype, rid)
            return rtype, rid, None, "PUT"
        # DELETE
        if query:
            rid = self._matches(rtype, query, e) or None
        if rid is None:
            return rtype, None, None, "DELETE"
        return rtype, rid, None, "DELETE"

    def _prefetch(self, plans: list[tuple[str, str | None, int | None, str]]) -> None:
        """Known-new targets map to None; live ones to their version; deleted ones are left to
        ``tx.read`` (``read_many`` skips deletions, whose version numbers must continue)."""
        by_type: dict[str, list[str]] = {}
        for rtype, rid, _, method in plans:
            if rid is not None and method != "POST":
                by_type.setdefault(rtype, []).append(rid)
        existing: list[tuple[str, str]] = []
        for rtype, ids in by_type.items():
            versions = self.tx.current_versions(rtype, ids)
            for rid in ids:
                if rid in versions:
                    existing.append((rtype, rid))
                else:
                    self.prefetched[(rtype, rid)] = None
        for found in self.tx.read_many(existing):
            self.prefetched[(found.resource_type, found.id)] = found

    def _current(self, rtype: str, rid: str) -> StoredResource | None:
        if (rtype, rid) in self.prefetched:
            return self.prefetched[(rtype, rid)]
        return self.tx.read(rtype, rid)

    def _map(self, e: Entry, rtype: str, rid: str) -> None:
        if e.full_url:
            self.ids[e.full_url] = f"{rtype}/{rid}"

    def _matches(self, rtype: str, query: str, e: Entry) -> str | None:
        found = self.repo.conditional_matches(self.tx, rtype, query)
        if len(found) > 1:
            raise PreconditionFailed(f"{e.where}: '{rtype}?{query}' matched more than one resource")
        return found[0] if found else None

    def _needs_rewrite(self, value: str) -> bool:
        return (
            value in self.ids
            or value.startswith(("urn:uuid:", "urn:oid:"))
            or ("?" in value and not value.startswith("#"))
        )

    def _resolve_references(self, e: Entry, resource: dict[str, Any]) -> dict[str, str]:
        """Rewrite fullUrl and conditional references in place; returns old text -> new."""
        changes: dict[str, str] = {}
        for ref in walk_references(resource):
            value = ref["reference"]
            if value in self.ids:
                ref["reference"] = changes[value] = self.ids[value]
            elif value.startswith("urn:uuid:") or value.startswith("urn:oid:"):
                raise InvalidRequest(
                    f"Reference '{value}' does not match any fullUrl in the bundle",
                    f"{e.where}.resource",
                )
            elif "?" in value and not value.startswith("#"):
                ref["reference"] = changes[value] = self._conditional_reference(e, value)
        return changes

    def _conditional_reference(self, e: Entry, value: str) -> str:
        """Resolve ``Type?criteria`` to the single matching resource, or fail the transaction."""
        if value in self.conditional_cache:
            return self.conditional_cache[value]
        rtype, _, query = value.partition("?")
        if rtype not in resource_types():
            raise InvalidRequest(
                f"Conditional reference '{value}' names no known type", f"{e.where}.resource"
            )
        found = self.repo.conditional_matches(self.tx, rtype, query, confined=True)
        # resources created earlier in this same bundle are visible only once written
        pending = self._pending_matches(rtype, query)
        candidates = list(dict.fromkeys(found + pending))
        if len(candidates) > 1:
            raise PreconditionFailed(f"{e.where}: conditional reference '{value}' matched several")
        if not candidates:
            raise NotFound(f"{e.where}: conditional reference '{value}' matched nothing")
        self.conditional_cache[value] = f"{rtype}/{candidates[0]}"
        return self.conditional_cache[value]

    def _pending_matches(self, rtype: str, query: str) -> list[str]:
        """Match ``identifier=system|value`` conditionals against resources of this bundle."""
        params = parse_qsl(query)
        if len(params) != 1 or params[0][0] != "identifier":
            return []
        system, _, value = params[0][1].rpartition("|")
        out = []
        for (t, rid), item in self.pending.items():
            if t != rtype or item.content is None:
                continue
            for ident in item.content.get("identifier", []):
                if ident.get("value") == value and (not system or ident.get("system") == system):
                    out.append(rid)
        return out

    def _write(self, e: Entry, plan: tuple[str, str | None, int | None, str]) -> dict[str, Any]:
        rtype, rid, _, method = plan
        assert rid is not None  # noqa: S101 - _plan always assigns an id to POST/PUT
        resource = dict(e.resource or {})
        pre = self.checked.get(e.index)
        if pre is not None and not any(map(self._needs_rewrite, pre.references)):
            changes: dict[str, str] = {}
        else:
            changes = self._resolve_references(e, resource)
        if method == "PUT":
            resource["id"] = rid
        else:
            resource.pop("id", None)
        if changes and pre is not None:
            pre = pre.rewritten(resource, changes)
        validated(resource, rtype, f"{e.where}.resource", pre)
        if (rtype, rid) in self.pending:
            raise InvalidRequest(f"{rtype}/{rid} appears twice in the transaction", e.where)
        current = self._current(rtype, rid) if method == "PUT" else None
        expected = parse_if_match(e.if_match)
        if expected is not None and (current is None or current.version_id != expected):
            raise PreconditionFailed(f"{e.where}: ifMatch {e.if_match} is not the current version")
        if current is not None and not current.deleted and current.content is not None:
            if same_content(current.content, {**resource, "id": rid}):
                return response_entry(current, 200, self.repo.base_url)
        version = 1 if current is None else current.version_id + 1
        previous = None if current is None else current.version_id
        item = self.repo.prepare(
            resource, rid, version, method, previous, self.now, pre.index if pre else None
        )
        self.items.append(item)
        self.pending[(rtype, rid)] = item
        status = 201 if current is None or current.deleted else 200
        return response_entry(self.repo.stored(item), status, self.repo.base_url)

    def _delete(self, e: Entry, rtype: str, rid: str | None) -> dict[str, Any]:
        if rid is None:
            return {"response": {"status": "204 No Content"}}
        current = self._current(rtype, rid)
        if current is None or current.deleted:
            return {"response": {"status": "204 No Content"}}
        item = self.repo.deletion(current, self.now)
        self.items.append(item)
        self.pending[(rtype, rid)] = item
        return {"response": {"status": "200 OK", "etag": f'W/"{item.version_id}"'}}


def response_entry(
    stored: StoredResource, status: int, base_url: str, resource: bool = True
) -> dict[str, Any]:
    reason = {200: "OK", 201: "Created", 204: "No Content"}.get(status, "")
    out: dict[str, Any] = {
        "fullUrl": f"{base_url}/{stored.resource_type}/{stored.id}",
        "response": {
            "status": f"{status} {reason}".strip(),
            "location": f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}",
            "etag": stored.etag,
            "lastModified": format_instant(stored.last_updated),
        },
    }
    if resource and stored.content is not None:
        out["resource"] = stored.content
    return out


def undisclosed_entry(rtype: str) -> dict[str, Any]:
    """The answer to a conditional create whose match the caller may not see: nothing was
    created, and nothing about the match is shown."""
    return {
        "response": {
            "status": "200 OK",
            "outcome": operation_outcome([undisclosed_issue(rtype)]),
        }
    }


def undisclosed_issue(rtype: str) -> Issue:
    return Issue(
        "informational",
        f"A {rtype} matching the condition exists that you may not see; nothing was created. "
        "To register a patient at your facility use Patient/$check-in",
        severity="information",
    )


def read_entry(repo: FhirRepository, tx: StoreSession, e: Entry) -> dict[str, Any]:
    """A GET entry: read, vread or search, answered from inside the bundle's transaction
    with what the caller may see (and audited as any read)."""
    path, _, query = e.url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in resource_types():
        raise InvalidRequest(
            f"Unknown resource type in request.url '{e.url}'", f"{e.where}.request.url"
        )
    rtype = parts[0]
    if len(parts) == 1:
        q = repo.parse_query(rtype, parse_qsl(query, keep_blank_values=True))
        page = tx.search(q, repo.access)
        repo.record_read(tx, "search", [*page.matches, *page.included], f"{rtype}?{query}")
        result = {
            "resourceType": "Bundle",
            "type": "searchset",
            **({"total": page.total} if page.total is not None else {}),
            "entry": [
                {
                    "fullUrl": f"{repo.base_url}/{m.resource_type}/{m.id}",
                    "resource": m.content,
                    "search": {"mode": "match"},
                }
                for m in page.matches
            ],
        }
        return {"resource": result, "response": {"status": "200 OK"}}
    rid = parts[1]
    if len(parts) == 4 and parts[2] == "_history":
        found = tx.vread(rtype, rid, int(parts[3])) if parts[3].isdigit() else None
        access = repo.access
        if found is not None and access is not None:
            if not tx.visible_version(rtype, rid, found.version_id, access):
                raise Forbidden(f"{e.where}: you may not read {rtype}/{rid}")
    else:
        found = tx.read(rtype, rid)
        if found is not None and not repo.discloses(tx, found):
            raise Forbidden(f"{e.where}: you may not read {rtype}/{rid}")
    if found is None or found.deleted:
        raise NotFound(f"{e.where}: {rtype}/{rid} is not known")
    repo.record_read(tx, "read", [found], None)
    return response_entry(found, 200, repo.base_url)


def run_transaction(
    repo: FhirRepository, bundle: Any, checked: Mapping[int, Checked] | None = None
) -> dict[str, Any]:
    btype, entries = parse_entries(bundle)
    if btype != "transaction":
        raise InvalidRequest("Expected a transaction Bundle", "Bundle.type")
    with repo.transaction() as tx:
        responses = TransactionProcessor(repo, tx, repo.clock(), checked).run(entries)
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}


def run_batch(repo: FhirRepository, bundle: Any) -> dict[str, Any]:
    """Each entry on its own: a failure is reported in its response, the others go on."""
    _, entries = parse_entries(bundle)
    out = []
    for e in entries:
        try:
            with repo.transaction() as tx:
                if e.method in ("GET", "HEAD"):
                    out.append(read_entry(repo, tx, e))
                else:
                    out.append(TransactionProcessor(repo, tx, repo.clock()).run([e])[0])
        except FhirError as exc:
            out.append(
                {
                    "response": {
                        "status": str(exc.status),
                        "outcome": exc.outcome,
                    }
                }
            )
    return {"resourceType": "Bundle", "type": "batch-response", "entry": out}


def process_bundle(
    repo: FhirRepository, bundle: Any, checked: Mapping[int, Checked] | None = None
) -> dict[str, Any]:
    """Run a transaction or batch Bundle; ``checked`` as in :class:`TransactionProcessor`."""
    btype, _ = parse_entries(bundle)
    if btype == "transaction":
        return run_transaction(repo, bundle, checked)
    return run_batch(repo, bundle)


__all__ = ["Outcome", "process_bundle", "run_batch", "run_transaction"]
