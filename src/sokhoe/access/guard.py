"""The one door to records: a FhirRepository that checks scopes and the policy, and audits.

The web layer hands every request a :class:`GuardedRepository` for its caller instead of the
plain repository, so a route cannot forget a check: reads and ``$everything`` are refused
unless the policy allows the patient; search, history and includes are filtered resource by
resource (and a citizen's searches are confined to their own compartment before they run);
writes need the scope and, for clinical data, access to the patient the data is about. Each
access, allowed or denied, is recorded by the auditor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sokhoe.access.consent import restricted_labels
from sokhoe.access.policy import BREAK_GLASS_ROLES, Decision, Policy, is_platform
from sokhoe.access.principal import Principal
from sokhoe.access.scopes import scopes_allow
from sokhoe.errors import Forbidden
from sokhoe.fhir.definitions import patient_compartment
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.references import walk_references
from sokhoe.fhir.repository import FhirRepository, Outcome
from sokhoe.registry.sensitivity import ACT_CODE, SENSITIVE
from sokhoe.search.index import compartment_patient_id, extract_index
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import SearchPage, StoredResource, StoreSession

CLAIM_TYPES = frozenset({"Claim", "ClaimResponse", "ExplanationOfBenefit", "Coverage"})
"""What an insurance appraiser may read: the claims data of any patient, and nothing else."""


class Auditor(Protocol):
    def record(
        self,
        principal: Principal | None,
        action: str,
        outcome: str,
        *,
        patient_ids: Sequence[str] = (),
        entities: Sequence[str] = (),
        query: str | None = None,
        reason: str | None = None,
        source: str | None = None,
        when: datetime | None = None,
    ) -> int: ...


class GuardedRepository(FhirRepository):
    """The repository as one caller may use it (see the module docstring)."""

    def __init__(
        self,
        inner: FhirRepository,
        principal: Principal,
        policy: Policy,
        auditor: Auditor | None = None,
        *,
        break_glass: str | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(
            inner.store,
            inner.base_url,
            clock=inner.clock,
            default_count=inner.default_count,
            max_count=inner.max_count,
        )
        self.inner = inner
        self.principal = principal
        self.policy = policy
        self.auditor = auditor
        self.break_glass = break_glass
        self.source = source
        self._decisions: dict[str, Decision] = {}
        self._restrictions: dict[str, dict[str, set[str]]] = {}

    # -- checks ------------------------------------------------------------------------
    def require_scope(self, resource_type: str, interaction: str) -> None:
        if not scopes_allow(self.principal.scopes, resource_type, interaction):
            self._audit(interaction, "denied", [], [resource_type], reason="scope")
            raise Forbidden(
                f"The token's scopes do not allow {interaction} on {resource_type} "
                f"(granted: {' '.join(sorted(self.principal.scopes)) or 'none'})"
            )

    def decide(self, patient_id: str) -> Decision:
        if patient_id not in self._decisions:
            decision = self.policy.patient(self.principal, patient_id, self.break_glass)
            self._decisions[patient_id] = decision
            if decision.break_glass:
                self._audit("break-the-glass", "success", [patient_id], [], decision.reason)
        return self._decisions[patient_id]

    def visible(self, stored: StoredResource) -> bool:
        if self.principal.role == "insurance-appraiser":
            return stored.resource_type in CLAIM_TYPES or stored.patient_id is None
        if stored.patient_id is None:
            return True
        return self.decide(stored.patient_id).allowed and self._sensitive_ok(stored)

    def _sensitive_ok(self, stored: StoredResource) -> bool:
        """A resource labelled sensitive that its patient restricted to the treating
        facility is hidden from everyone else (the patient, the platform and a broken glass
        still see it)."""
        labels = {
            s.get("code")
            for s in ((stored.content or {}).get("meta") or {}).get("security", [])
            if s.get("system") == ACT_CODE
        } & set(SENSITIVE)
        if not labels or stored.patient_id is None or is_platform(self.principal):
            return True
        if self.principal.kind == "citizen":
            return True
        if self.break_glass and self.principal.role in BREAK_GLASS_ROLES:
            reason = f"break-the-glass on restricted data: {self.break_glass}"
            self._audit("break-the-glass", "success", [stored.patient_id], [], reason)
            return True
        key = stored.patient_id
        if key not in self._restrictions:
            with self.store.begin() as tx:
                people = linked_patient_ids(tx, key)
                parser = self.parser(strict=True)
                self._restrictions[key] = restricted_labels(parser, tx, people)
        restricted = self._restrictions[key]
        return all(
            label not in restricted or self.principal.facility in restricted[label]
            for label in labels
        )

    def require_patient(self, patient_id: str, interaction: str) -> None:
        decision = self.decide(patient_id)
        if not decision.allowed:
            self._audit(interaction, "denied", [patient_id], [], decision.reason)
            raise Forbidden(decision.reason)

    def _require_visible(self, stored: StoredResource, interaction: str) -> None:
        if self.principal.role == "insurance-appraiser":
            if not self.visible(stored):
                self._audit(interaction, "denied", _patients([stored]), [], "claims only")
                raise Forbidden("Insurance appraisers see claims data only")
            return
        if stored.patient_id is not None:
            self.require_patient(stored.patient_id, interaction)
            if not self._sensitive_ok(stored):
                self._audit(interaction, "denied", [stored.patient_id], [], "restricted")
                raise Forbidden(
                    "The patient keeps this sensitive record for the treating facility only"
                )

    def _audit(
        self,
        action: str,
        outcome: str,
        patient_ids: Sequence[str],
        entities: Sequence[str],
        reason: str | None = None,
        query: str | None = None,
    ) -> None:
        if self.auditor is None:
            return
        self.auditor.record(
            self.principal,
            action,
            outcome,
            patient_ids=sorted(set(patient_ids)),
            entities=entities,
            query=query,
            reason=reason,
            source=self.source,
        )

    def authorise_operation(
        self,
        name: str,
        resource_type: str,
        interactions: Sequence[str],
        patient_ids: Sequence[str] = (),
        roles: frozenset[str] | None = None,
    ) -> None:
        """Check an ``$operation`` that then runs on the plain repository: the scopes, the
        staff roles allowed (platform callers always are) and access to each patient."""
        for interaction in interactions:
            self.require_scope(resource_type, interaction)
        if roles is not None and not is_platform(self.principal):
            if self.principal.role not in roles:
                self._audit("operation", "denied", patient_ids, [name], reason="role")
                raise Forbidden(f"${name} needs one of the roles: {', '.join(sorted(roles))}")
        for pid in patient_ids:
            self.require_patient(pid, "operation")
        self._audit("operation", "success", patient_ids, [name])

    def authorise_bundle(self, bundle: Any) -> None:
        """Check every entry of a batch/transaction before it runs (bundles write through the
        store directly, so this is their door): scopes per entry, access to the patient each
        new version is about, and to what a DELETE removes. GET entries are answered inside
        the bundle without per-resource filtering, so only platform callers may use them."""
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        if not isinstance(entries, list):
            return  # the bundle code refuses malformed bundles with the exact path
        created = {
            e.get("fullUrl")
            for e in entries
            if isinstance(e, dict) and (e.get("resource") or {}).get("resourceType") == "Patient"
        }
        for i, e in enumerate(entries):
            request = e.get("request") if isinstance(e, dict) else None
            if not isinstance(request, dict) or not isinstance(request.get("url"), str):
                continue
            method = str(request.get("method", "")).upper()
            rtype = request["url"].lstrip("/").split("/")[0].split("?")[0]
            if method in ("GET", "HEAD"):
                if not is_platform(self.principal):
                    raise Forbidden(
                        f"Bundle.entry[{i}]: read entries in bundles are for platform callers; "
                        "use the REST reads and searches"
                    )
                self.require_scope(rtype, "read")
            elif method == "DELETE":
                self.require_scope(rtype, "delete")
                parts = request["url"].split("?")[0].split("/")
                if len(parts) >= 2:
                    self._require_existing(rtype, parts[1], "delete")
            elif method in ("POST", "PUT"):
                self.require_scope(rtype, "create" if method == "POST" else "update")
                resource = e.get("resource")
                if isinstance(resource, dict) and rtype != "Patient":
                    subject = compartment_patient_id(resource, extract_index(resource))
                    if subject is not None and f"urn:uuid:{subject}" not in created:
                        self.require_patient(subject, "create")
                    for ref in walk_references(resource):
                        if ref["reference"].startswith("Patient?"):
                            self._require_conditional(ref["reference"][len("Patient?") :])
                if method == "PUT" and "?" not in request["url"]:
                    parts = request["url"].split("/")
                    if len(parts) >= 2:
                        self._require_existing(rtype, parts[1], "update")
        self._audit("operation", "success", [], ["Bundle"])

    def _require_conditional(self, query: str) -> None:
        with self.store.begin() as tx:
            for pid in self.conditional_matches(tx, "Patient", query):
                self.require_patient(pid, "create")

    # -- reads -------------------------------------------------------------------------
    def read(self, resource_type: str, rid: str) -> StoredResource:
        self.require_scope(resource_type, "read")
        found = super().read(resource_type, rid)
        self._require_visible(found, "read")
        self._audit("read", "success", _patients([found]), [f"{resource_type}/{rid}"])
        return found

    def vread(self, resource_type: str, rid: str, version: str) -> StoredResource:
        self.require_scope(resource_type, "vread")
        found = super().vread(resource_type, rid, version)
        self._require_visible(found, "vread")
        self._audit("vread", "success", _patients([found]), [f"{resource_type}/{rid}"])
        return found

    def search(self, query: SearchQuery) -> SearchPage:
        for rtype in [query.resource_type] if query.resource_type else query.types or ["*"]:
            self.require_scope(rtype, "search")
        query = self._confine(query)
        page = super().search(query)
        matches = [m for m in page.matches if self.visible(m)]
        included = [m for m in page.included if self.visible(m)]
        hidden = len(matches) < len(page.matches)
        more = None
        if hidden:  # paging goes on by what the store found, not what the caller may see
            more = (
                query.offset + len(page.matches) < page.total
                if page.total is not None
                else len(page.matches) == query.count
            )
        result = SearchPage(matches, included, None if hidden else page.total, more)
        self._audit(
            "search",
            "success",
            _patients(matches + included),
            [],
            query=_describe(query),
        )
        return result

    def _confine(self, query: SearchQuery) -> SearchQuery:
        """A citizen's search runs inside their own compartment (nothing else is fetched)."""
        if self.principal.kind != "citizen" or is_platform(self.principal):
            return query
        rtype = query.resource_type
        own = list(self.principal.patient_ids)
        if rtype == "Patient":
            ids = own if query.ids is None else [i for i in query.ids if i in own]
            return replace(query, ids=ids)
        if rtype is not None and patient_compartment().get(rtype):
            current = query.patient_ids
            allowed = own if current is None else [p for p in current if p in own]
            confined = replace(query)
            confined.patient_ids = allowed
            return confined
        return query

    def history(
        self,
        resource_type: str | None,
        rid: str | None,
        since: datetime | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]:
        self.require_scope(resource_type or "*", "history")
        if resource_type and rid:
            with self.store.begin() as tx:
                current = tx.read(resource_type, rid)
            if current is not None:  # deleted ones too: their history is still the patient's
                self._require_visible(current, "history")
        found, total = super().history(resource_type, rid, since, count, offset)
        shown = [r for r in found if self.visible(r)]
        self._audit("history", "success", _patients(shown), [])
        # the total stays the store's: paging must go on past a page the guard thinned out
        # (it counts versions, which names nobody)
        return shown, total

    def everything(
        self,
        patient_id: str,
        *,
        since: datetime | None,
        types: list[str] | None,
        count: int,
        offset: int,
    ) -> tuple[list[StoredResource], int]:
        self.require_scope("Patient", "read")
        self.require_patient(patient_id, "operation")
        found, total = super().everything(
            patient_id, since=since, types=self._readable(types), count=count, offset=offset
        )
        # a restricted sensitive category stays hidden here as in search; the total stays the
        # store's so paging goes on past a thinned page (that the patient restricted something
        # is no secret: their Consent is in the same compartment)
        shown = [r for r in found if self.visible(r)]
        self._audit("operation", "success", [patient_id], [f"Patient/{patient_id}/$everything"])
        return shown, total

    def _readable(self, types: list[str] | None) -> list[str] | None:
        """The compartment types (of ``types``, or all) the scopes let the caller read: a
        receptionist's ``$everything`` is the Patient and the visits, not the lab results."""
        wanted = types if types is not None else ["Patient", *sorted(patient_compartment())]
        allowed = [t for t in wanted if scopes_allow(self.principal.scopes, t, "read")]
        if types is None and len(allowed) == len(wanted):
            return None
        return allowed or ["Patient"]

    # -- writes ------------------------------------------------------------------------
    def _require_write(self, resource: Any, resource_type: str, interaction: str) -> None:
        self.require_scope(resource_type, interaction)
        if not isinstance(resource, dict) or resource_type == "Patient":
            return
        patient = compartment_patient_id(resource, extract_index(resource))
        if patient is not None:
            self.require_patient(patient, interaction)

    def _require_existing(self, resource_type: str, rid: str, interaction: str) -> None:
        with self.store.begin() as tx:
            current = tx.read(resource_type, rid)
        if current is not None and not current.deleted:
            self._require_visible(current, interaction)

    def create(
        self,
        resource: Any,
        resource_type: str,
        *,
        if_none_exist: str | None = None,
        tx: StoreSession | None = None,
    ) -> Outcome:
        self._require_write(resource, resource_type, "create")
        outcome = super().create(resource, resource_type, if_none_exist=if_none_exist, tx=tx)
        self._audit("create", "success", _patients([outcome.resource]), [_ref(outcome)])
        return outcome

    def update(
        self,
        resource: Any,
        resource_type: str,
        rid: str,
        *,
        if_match: str | None = None,
        tx: StoreSession | None = None,
    ) -> Outcome:
        self._require_write(resource, resource_type, "update")
        self._require_existing(resource_type, rid, "update")
        outcome = super().update(resource, resource_type, rid, if_match=if_match, tx=tx)
        self._audit("update", "success", _patients([outcome.resource]), [_ref(outcome)])
        return outcome

    def conditional_update(
        self, resource: Any, resource_type: str, query: str, *, tx: StoreSession | None = None
    ) -> Outcome:
        self._require_write(resource, resource_type, "update")
        self.require_scope(resource_type, "search")
        if not is_platform(self.principal):
            with self.store.begin() as session:
                for rid in self.conditional_matches(session, resource_type, query):
                    self._require_existing(resource_type, rid, "update")
        outcome = super().conditional_update(resource, resource_type, query, tx=tx)
        self._audit("update", "success", _patients([outcome.resource]), [_ref(outcome)])
        return outcome

    def delete(
        self, resource_type: str, rid: str, *, tx: StoreSession | None = None
    ) -> Outcome | None:
        self.require_scope(resource_type, "delete")
        self._require_existing(resource_type, rid, "delete")
        outcome = super().delete(resource_type, rid, tx=tx)
        self._audit("delete", "success", [], [f"{resource_type}/{rid}"])
        return outcome

    def conditional_delete(
        self, resource_type: str, query: str, *, tx: StoreSession | None = None
    ) -> Outcome | None:
        self.require_scope(resource_type, "delete")
        self.require_scope(resource_type, "search")
        with self.store.begin() as session:
            for rid in self.conditional_matches(session, resource_type, query):
                self._require_existing(resource_type, rid, "delete")
        outcome = super().conditional_delete(resource_type, query, tx=tx)
        self._audit("delete", "success", [], [f"{resource_type}?{query}"])
        return outcome


def _patients(resources: Sequence[StoredResource]) -> list[str]:
    return [r.patient_id for r in resources if r.patient_id]


def _ref(outcome: Outcome) -> str:
    return f"{outcome.resource.resource_type}/{outcome.resource.id}"


def _describe(query: SearchQuery) -> str:
    names = [c.code for c in query.criteria]
    return f"{query.resource_type or '*'}?{'&'.join(names)}"
