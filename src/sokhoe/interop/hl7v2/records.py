"""Writing one message's resources inside its transaction: find by business identifier,
create or update, and note what changed (for the audit).

Every look-up here runs on the caller's open transaction, so what it finds is what the
message's writes will be based on, and the whole message commits or rolls back as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sokhoe.fhir.patient_links import people_holding
from sokhoe.fhir.repository import FhirRepository
from sokhoe.fhir.resources import new_id
from sokhoe.interop.hl7v2 import mapping
from sokhoe.interop.hl7v2.er7 import UNKNOWN_KEY, Hl7Fault, Location
from sokhoe.search.parse import escape_value
from sokhoe.store.ports import StoredResource, StoreSession


@dataclass
class Writes:
    """References of the resources a message created and updated."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


class RecordWriter:
    """The transaction-level steps of applying a message (see the module docstring)."""

    def __init__(self, repo: FhirRepository) -> None:
        self.repo = repo

    def find(
        self, tx: StoreSession, keys: Sequence[tuple[str, str]], *, follow: bool = True
    ) -> StoredResource | None:
        """The (living, after merges) person the strongest identifier finds."""
        for system, value in keys:
            people = people_holding(self.repo, tx, system, value, follow=follow)
            if len(people) > 1:
                raise Hl7Fault(
                    f"Several records hold {value} ("
                    + ", ".join(sorted(people))
                    + "); they must be merged in the review queue first",
                    error_code=UNKNOWN_KEY,
                    location=Location("PID", 1, 3),
                )
            if people:
                return next(iter(people.values()))
        return None

    def put(
        self,
        tx: StoreSession,
        content: dict[str, Any],
        rtype: str,
        rid: str,
        writes: Writes,
        before: StoredResource | None,
    ) -> None:
        """Create or update (``before``: the current version, found by identifier in this
        transaction); an identical re-sent resource makes no new version."""
        outcome = self.repo.update(content, rtype, rid, tx=tx)
        ref = f"{rtype}/{rid}"
        if before is None or before.deleted:
            writes.created.append(ref)
        elif outcome.resource.version_id != before.version_id:
            writes.updated.append(ref)

    def existing(
        self, tx: StoreSession, rtype: str, system: str, value: str
    ) -> StoredResource | None:
        found = self.existing_keys(tx, rtype, [(system, value)])
        return found.get((system, value))

    def existing_keys(
        self, tx: StoreSession, rtype: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredResource]:
        """The current resources of one type holding these identifiers, in one search (the
        identifiers OR-ed), by identifier."""
        if not keys:
            return {}
        tokens = ",".join(f"{escape_value(s)}|{escape_value(v)}" for s, v in keys)
        query = self.repo.parse_query(rtype, [("identifier", tokens)], strict=True)
        wanted = set(keys)
        found: dict[tuple[str, str], StoredResource] = {}
        ids = tx.search_ids(query, limit=len(keys) * 2)
        for match in tx.read_many([(rtype, rid) for rid in ids]):
            for ident in (match.content or {}).get("identifier", []):
                key = (ident.get("system"), ident.get("value"))
                if key in wanted and key not in found and not match.deleted:
                    found[key] = match
        return found

    def existing_many(
        self, tx: StoreSession, plans: Sequence[mapping.Plan]
    ) -> dict[tuple[str, str], StoredResource]:
        """The current version of each plan's resource: one search per resource type."""
        by_type: dict[str, list[tuple[str, str]]] = {}
        for plan in plans:
            by_type.setdefault(plan.resource_type, []).append((plan.system, plan.value))
        found: dict[tuple[str, str], StoredResource] = {}
        for rtype, keys in by_type.items():
            found |= self.existing_keys(tx, rtype, keys)
        return found

    def upsert_encounter(
        self,
        tx: StoreSession,
        plan: mapping.Plan,
        event: str,
        patient_id: str,
        org_id: str,
        writes: Writes,
        ids: dict[tuple[str, str], str],
    ) -> str | None:
        old = self.existing(tx, "Encounter", plan.system, plan.value)
        if old is None and event in ("A08", "link"):
            return None  # an update or a result names a visit the platform never heard of
        content = dict(plan.content)
        content["subject"] = {"reference": f"Patient/{patient_id}"}
        content["serviceProvider"] = {"reference": f"Organization/{org_id}"}
        if old is not None and old.content is not None:
            content = mapping.merge_encounter(old.content, content, event)
        if event == "link" and old is not None:
            return old.id
        rid = old.id if old is not None else new_id()
        content["id"] = rid
        self.put(tx, content, "Encounter", rid, writes, old)
        ids[(plan.system, plan.value)] = rid
        return rid

    def upsert(
        self,
        tx: StoreSession,
        plan: mapping.Plan,
        writes: Writes,
        ids: dict[tuple[str, str], str],
        before: StoredResource | None,
    ) -> None:
        rid = ids[(plan.system, plan.value)]
        content = dict(plan.content)
        for element, rtype, system, value in plan.refers:
            target = ids.get((system, value))
            if target is None:
                found = self.existing(tx, rtype, system, value)
                target = found.id if found is not None else None
            ref: dict[str, Any] = (
                {"reference": f"{rtype}/{target}"}
                if target
                else {"type": rtype, "identifier": {"system": system, "value": value}}
            )
            content.setdefault(element, []).append(ref)
        content["id"] = rid
        self.put(tx, content, plan.resource_type, rid, writes, before)
