"""The one door to records: the repository as one caller may use it.

Every request, page, message, import and job reaches the record through a
:class:`GuardedRepository` made for its caller (``web/deps.py``, the adapters, and
:func:`platform_repository` for the platform's own jobs). It is the only implementation of
:class:`~sokhoe.fhir.repository.FhirRepository`, so there is no other way to a transaction:

- **writes** are decided in the transaction, on what is written (``access/session.py``,
  ``access/writes.py``), and audited in that transaction;
- **reads** that answer the caller are confined in the query (:attr:`access`, compiled to SQL
  by the store), so searches, counts, totals, includes, ``_has``, history and ``$everything``
  hold only what the caller may see; a single read the caller may not see is refused with
  the reason;
- **operations** (``$check-in``, ``$merge``, the consent operations, HL7, imports) are
  authorised as a whole (:meth:`operation`) and then run in a session whose writes are
  audited under their name and which alone may write the server-owned content they own.

Each access, allowed or denied, is recorded by the audit log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sokhoe.access.audit import AuditLog
from sokhoe.access.care import Standing, group_of, standing
from sokhoe.access.db import access_engine
from sokhoe.access.glass import open_glass
from sokhoe.access.policy import Decision, Policy
from sokhoe.access.principal import Principal, system_principal
from sokhoe.access.rights import (
    BREAK_GLASS_ROLES,
    CLAIM_TYPES,
    confinement,
    grantees,
    is_platform,
)
from sokhoe.access.scopes import scopes_allow
from sokhoe.access.session import GuardedSession
from sokhoe.access.writes import Rules
from sokhoe.errors import Forbidden, Gone, NotFound
from sokhoe.fhir.repository import Clock, FhirRepository, Outcome, check_type, utc_now
from sokhoe.messages import Message, Text
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import Confinement, FhirStore, SearchPage, StoredResource, StoreSession

__all__ = ["CLAIM_TYPES", "PLATFORM_SCOPES", "GuardedRepository", "platform_repository"]

PLATFORM_SCOPES = frozenset({"system/*.cruds"})


class GuardedRepository(FhirRepository):
    """The repository as one caller may use it (see the module docstring)."""

    def __init__(
        self,
        store: FhirStore,
        principal: Principal,
        policy: Policy | None = None,
        auditor: AuditLog | None = None,
        *,
        base_url: str,
        clock: Clock = utc_now,
        default_count: int = 50,
        max_count: int = 1000,
        break_glass: str | None = None,
        source: str | None = None,
        audit_reads: bool = True,
        owns: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(base_url, clock=clock, default_count=default_count, max_count=max_count)
        self._store = store
        self.principal = principal
        self.policy = policy if policy is not None else Policy(store)
        self.auditor = auditor if auditor is not None else AuditLog(access_engine(store))
        self.break_glass = (
            break_glass.strip() or None
            if break_glass and principal.role in BREAK_GLASS_ROLES
            else None
        )
        self._refused_glass = bool(break_glass) and self.break_glass is None
        self.source = source
        self.audit_reads = audit_reads
        self.owns = owns
        """Server-owned content every transaction of this door may write: only the platform's
        replication (``sokhoe sync`` pulling what upstream decided) is made with any."""
        self._decisions: dict[str, Decision] = {}
        self._group: tuple[str, ...] | None = None

    def for_caller(self, principal: Principal, **changes: Any) -> GuardedRepository:
        """The same door for another caller (same store, audit log and settings)."""
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "clock": self.clock,
            "default_count": self.default_count,
            "max_count": self.max_count,
            "source": self.source,
            "audit_reads": self.audit_reads,
        }
        options.update(changes)
        return GuardedRepository(self._store, principal, self.policy, self.auditor, **options)

    # -- what the caller may see ---------------------------------------------------------
    @property
    def access(self) -> Confinement | None:
        return confinement(
            self.principal,
            self.clock(),
            patients=self._citizen_group(),
            break_glass=self.break_glass is not None,
        )

    def _citizen_group(self) -> tuple[str, ...]:
        if self.principal.kind != "citizen":
            return ()
        if self._group is None:
            with self._store.begin() as tx:
                people = [p for own in self.principal.patient_ids for p in group_of(tx, own)]
            self._group = tuple(dict.fromkeys(people))
        return self._group

    def standing(self, tx: StoreSession, patient_id: str) -> Standing | None:
        names = grantees(self.principal)
        if not names:
            return None
        return standing(tx.care([patient_id], names), names, self.clock())

    # -- sessions ------------------------------------------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[StoreSession]:
        with self._store.begin() as tx:
            yield GuardedSession(tx, self, None, self.clock())

    @contextmanager
    def transaction(self) -> Iterator[StoreSession]:
        with self._session(None, self.owns) as tx:
            yield tx

    @contextmanager
    def operation(
        self,
        name: str,
        *,
        resource_type: str = "Patient",
        interactions: Sequence[str] = (),
        patients: Sequence[str] = (),
        roles: frozenset[str] | None = None,
        owns: frozenset[str] = frozenset(),
        reason: str | None = None,
        concerns: Sequence[str] = (),
        owner: str | None = None,
    ) -> Iterator[GuardedSession]:
        """Authorise ``$name`` as a whole, then run it in one transaction whose writes are
        audited under its name; it alone may write the server-owned content in ``owns``.

        ``patients`` are the records the caller names (resolved by the operation the same
        way it will act on them); the caller must be allowed each of them. ``concerns`` are
        patients the operation touches under a narrower check of its own (signing one's own
        facility's visit): named in the audit, not required to be open to the caller.
        ``owner``: the facility the resources this operation creates are addressed to, when
        it is not the caller's own (a citizen's concern about an access goes to the facility
        that made it: that facility sees and answers it, whatever its relationship with the
        patient now).
        """
        self.authorise_operation(name, resource_type, interactions, patients, roles)
        with self._session(name, owns, reason=reason or f"${name}", owner=owner) as tx:
            named = list(dict.fromkeys([*patients, *concerns]))
            tx.audit("operation", "success", named, entities=[name])
            yield tx

    @contextmanager
    def _session(
        self,
        operation: str | None,
        owns: frozenset[str],
        reason: str | None = None,
        owner: str | None = None,
    ) -> Iterator[GuardedSession]:
        session: GuardedSession | None = None
        try:
            with self._store.begin(write=True) as tx:
                now = self.clock()

                def standing_of(patient_id: str) -> Standing | None:
                    return self._write_standing(tx, patient_id, now)

                rules = Rules(self.principal, standing_of, owns, operation)
                session = GuardedSession(tx, self, rules, now, reason=reason, owner=owner)
                yield session
        except Forbidden:
            if session is not None and session.denial is not None:
                d = session.denial
                self._record(d.action, "denied", d.patients, d.entities, reason=d.reason)
            raise

    def _write_standing(self, tx: StoreSession, patient_id: str, now: datetime) -> Standing | None:
        if self.principal.kind == "citizen":
            return None
        found = self.standing(tx, patient_id)
        if found is None and self.break_glass is not None:
            self._open_glass(tx, patient_id, now)
            return Standing("record", True)
        return found

    def _open_glass(self, tx: StoreSession, patient_id: str, now: datetime) -> None:
        open_glass(self, tx, patient_id, now)

    def break_glass_for(self, patient_id: str) -> None:
        """Open one record to a clinician who gave an emergency reason (a read of it)."""
        with self._store.begin(write=True) as tx:
            self._open_glass(tx, patient_id, self.clock())

    def _keep_glass_open(self, patient_id: str) -> None:
        """A clinician who broke the glass to open one record keeps it for the shift."""
        if self.break_glass is None:
            return
        with self._store.begin() as tx:
            found = self.standing(tx, patient_id)
        if found is None or found.level != "record":
            self.break_glass_for(patient_id)

    # -- audit ---------------------------------------------------------------------------
    def _record(
        self,
        action: str,
        outcome: str,
        patients: Sequence[str],
        entities: Sequence[str] = (),
        *,
        reason: str | None = None,
        query: str | None = None,
    ) -> None:
        """One audit event in its own short transaction (reads, refusals)."""
        if outcome == "success" and not self.audit_reads and action in _READS:
            return
        with self._store.begin(write=True) as tx:
            session = GuardedSession(tx, self, None, self.clock())
            session.audit(
                action, outcome, patients, entities=list(entities), reason=reason, query=query
            )

    def record_access(
        self,
        action: str,
        patient_ids: Sequence[str],
        entities: Sequence[str] = (),
        *,
        query: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Audit an access an adapter answered itself (an operation's result)."""
        self._record(action, "success", patient_ids, entities, query=query, reason=reason)

    def record_refusal(self, action: str, patient_ids: Sequence[str], reason: str) -> None:
        """Audit a refusal an operation decided itself (a wrong presence code)."""
        self._record(action, "denied", patient_ids, [], reason=reason)

    def record_read(
        self,
        tx: StoreSession,
        action: str,
        resources: Sequence[StoredResource],
        query: str | None,
    ) -> None:
        if isinstance(tx, GuardedSession):
            patients = sorted({r.patient_id for r in resources if r.patient_id})
            tx.audit(action, "success", patients, query=query, reason=self._glass_reason())
        else:  # pragma: no cover - every session of the door is guarded
            raise TypeError("a read inside a transaction needs the door's session")

    def _glass_reason(self) -> str | None:
        return f"break-the-glass: {self.break_glass}" if self.break_glass else None

    def _read_action(self, action: str) -> str:
        return "break-the-glass" if self.break_glass else action

    # -- checks --------------------------------------------------------------------------
    def require_scope(self, resource_type: str, interaction: str) -> None:
        if not scopes_allow(self.principal.scopes, resource_type, interaction):
            self._record(interaction, "denied", [], [resource_type], reason="scope")
            raise Forbidden(
                f"The token's scopes do not allow {interaction} on {resource_type} "
                f"(granted: {' '.join(sorted(self.principal.scopes)) or 'none'})"
            )

    def decide(self, patient_id: str) -> Decision:
        if patient_id not in self._decisions:
            self._decisions[patient_id] = self.policy.patient(
                self.principal, patient_id, self.break_glass, self.clock()
            )
        return self._decisions[patient_id]

    def require_patient(self, patient_id: str, interaction: str) -> None:
        decision = self.decide(patient_id)
        if not decision.allowed:
            reason: Text = decision.message or decision.reason
            if self._refused_glass:
                role = str(self.principal.role)
                reason = Message("the %(role)s role cannot break the glass", role=role)
            self._record(interaction, "denied", [patient_id], [], reason=str(reason))
            raise Forbidden(reason)
        if decision.break_glass:
            self.break_glass_for(patient_id)

    def _require_visible(self, stored: StoredResource, interaction: str) -> None:
        access = self.access
        if access is None:
            return
        with self.snapshot() as tx:
            if self.discloses(tx, stored):
                return
        self._refuse_hidden(stored, interaction)

    def _refuse_hidden(self, stored: StoredResource, interaction: str) -> None:
        """``stored`` is not shown to the caller: the reason, audited, or the glass broken."""
        if stored.patient_id is not None and self.principal.role not in ("insurance-appraiser",):
            self.require_patient(stored.patient_id, interaction)  # says why (or breaks glass)
            if self.break_glass is not None:
                return
            reason = "The patient keeps this sensitive record for the treating facility only"
        elif self.principal.role == "insurance-appraiser":
            reason = "Insurance appraisers see claims data only"
        else:
            reason = f"You may not {interaction} {stored.resource_type}/{stored.id}"
        patients = [stored.patient_id] if stored.patient_id else []
        self._record(interaction, "denied", patients, [], reason=reason)
        raise Forbidden(reason)

    def authorise_operation(
        self,
        name: str,
        resource_type: str,
        interactions: Sequence[str],
        patient_ids: Sequence[str] = (),
        roles: frozenset[str] | None = None,
    ) -> None:
        """Check an ``$operation``: the scopes, the staff roles allowed (platform callers
        always are) and access to each patient it names."""
        for interaction in interactions:
            self.require_scope(resource_type, interaction)
        if self.principal.app is not None:
            # an app a person connected does what its scopes say, not all the person may: an
            # operation changes the record or who may see it (a share code, a restriction),
            # so it needs a write scope, whatever the person could do on their own pages
            self.require_scope(resource_type, "update")
        if roles is not None and not is_platform(self.principal):
            if self.principal.role not in roles:
                self._record("operation", "denied", patient_ids, [name], reason="role")
                raise Forbidden(
                    Message(
                        "$%(name)s needs one of the roles: %(roles)s",
                        name=name,
                        roles=", ".join(sorted(roles)),
                    )
                )
        for pid in patient_ids:
            self.require_patient(pid, "operation")

    # -- reads -------------------------------------------------------------------------
    def read(self, resource_type: str, rid: str) -> StoredResource:
        """One query finds the resource and whether the caller may see it (the hot path of
        every facility's reads); refusals and break-the-glass take the slow path."""
        self.require_scope(resource_type, "read")
        check_type(resource_type)
        access = self.access
        with self._store.begin() as tx:
            if access is None:
                current, shown = tx.read(resource_type, rid), True
            else:
                current, shown = tx.read_shown(resource_type, rid, access)
        if current is None:
            raise NotFound(f"{resource_type}/{rid} is not known")
        if not shown:
            self._refuse_hidden(current, "read")
        if current.patient_id is not None:
            self._keep_glass_open(current.patient_id)
        if current.deleted:
            raise Gone(f"{resource_type}/{rid} was deleted (version {current.version_id})")
        found = current
        self._record(
            self._read_action("read"),
            "success",
            _patients([found]),
            [f"{resource_type}/{rid}"],
            reason=self._glass_reason(),
        )
        return found

    def vread(self, resource_type: str, rid: str, version: str) -> StoredResource:
        self.require_scope(resource_type, "vread")
        found = super().vread(resource_type, rid, version)
        access = self.access
        if access is not None:
            with self._store.begin() as tx:
                shown = tx.visible_version(resource_type, rid, found.version_id, access)
            if not shown:
                self._require_visible(found, "vread")
        self._record(
            self._read_action("vread"),
            "success",
            _patients([found]),
            [f"{resource_type}/{rid}"],
            reason=self._glass_reason(),
        )
        return found

    def search(self, query: SearchQuery) -> SearchPage:
        for rtype in [query.resource_type] if query.resource_type else query.types or ["*"]:
            self.require_scope(rtype, "search")
        page = super().search(query)
        self._record(
            self._read_action("search"),
            "success",
            _patients(page.matches + page.included),
            [],
            query=_describe(query),
            reason=self._glass_reason(),
        )
        return page

    def search_union(self, queries: Sequence[SearchQuery], limit: int) -> list[StoredResource]:
        for query in queries:
            self.require_scope(query.resource_type or "*", "search")
        found = super().search_union(queries, limit)
        self._record(
            self._read_action("search"),
            "success",
            _patients(found),
            [],
            query=" | ".join(_describe(q) for q in queries),
            reason=self._glass_reason(),
        )
        return found

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
            with self._store.begin() as tx:
                current = tx.read(resource_type, rid)
            if current is not None:  # deleted ones too: their history is still the patient's
                self._require_visible(current, "history")
        found, total = super().history(resource_type, rid, since, count, offset)
        self._record(self._read_action("history"), "success", _patients(found), [])
        return found, total

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
        with self._store.begin() as tx:
            patient = tx.read("Patient", patient_id)
        if patient is not None:
            self._require_visible(patient, "operation")
            self._keep_glass_open(patient_id)
        found, total = super().everything(
            patient_id, since=since, types=types, count=count, offset=offset
        )
        self._record(
            self._read_action("operation"),
            "success",
            [patient_id, *_patients(found)],
            [f"Patient/{patient_id}/$everything"],
            reason=self._glass_reason(),
        )
        return found, total

    def stream(self, resource_type: str | None = None) -> Iterator[StoredResource]:
        """Every current resource (of a type) the caller may see, streamed: the bulk export
        and the warehouse read the store this way, confined like any search."""
        yield from self._store.iter_all(resource_type, self.access)

    # -- writes ------------------------------------------------------------------------
    def _require_existing(self, resource_type: str, rid: str, interaction: str) -> None:
        with self._store.begin() as tx:
            current = tx.read(resource_type, rid)
        if current is not None:
            self._require_visible(current, interaction)

    def create(
        self,
        resource: Any,
        resource_type: str,
        *,
        if_none_exist: str | None = None,
        tx: StoreSession | None = None,
    ) -> Outcome:
        if tx is None:
            self.require_scope(resource_type, "create")
        outcome = super().create(resource, resource_type, if_none_exist=if_none_exist, tx=tx)
        if not outcome.disclosed:
            found = outcome.resource
            self._record(
                "create",
                "denied",
                _patients([found]),
                [],
                reason="a conditional create matched a record the caller may not see",
            )
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
        if tx is None:
            self.require_scope(resource_type, "update")
            self._require_existing(resource_type, rid, "update")
        return super().update(resource, resource_type, rid, if_match=if_match, tx=tx)

    def conditional_update(
        self, resource: Any, resource_type: str, query: str, *, tx: StoreSession | None = None
    ) -> Outcome:
        if tx is None:
            self.require_scope(resource_type, "update")
            self.require_scope(resource_type, "search")
        return super().conditional_update(resource, resource_type, query, tx=tx)

    def delete(
        self, resource_type: str, rid: str, *, tx: StoreSession | None = None
    ) -> Outcome | None:
        if tx is None:
            self.require_scope(resource_type, "delete")
            self._require_existing(resource_type, rid, "delete")
        return super().delete(resource_type, rid, tx=tx)

    def conditional_delete(
        self, resource_type: str, query: str, *, tx: StoreSession | None = None
    ) -> Outcome | None:
        if tx is None:
            self.require_scope(resource_type, "delete")
            self.require_scope(resource_type, "search")
        return super().conditional_delete(resource_type, query, tx=tx)


_READS = frozenset({"read", "vread", "search", "history", "operation"})


def platform_repository(
    store: FhirStore,
    base_url: str,
    *,
    name: str = "sokhoe",
    display: str | None = None,
    clock: Clock = utc_now,
    auditor: AuditLog | None = None,
    audit_reads: bool = False,
    source: str | None = None,
    policy: Policy | None = None,
    owns: frozenset[str] = frozenset(),
) -> GuardedRepository:
    """The door for the platform's own jobs (loads, the patient index, the warehouse, tests):
    a system of the platform with every scope. Its writes are still checked (server-owned
    content, registries) and audited in their transaction; its reads are audited only when
    ``audit_reads``, since the jobs that read everything (matching, building the warehouse)
    are the platform's own processing, not someone opening a record."""
    principal = system_principal(name, display or name, PLATFORM_SCOPES)
    return GuardedRepository(
        store,
        principal,
        policy,
        auditor,
        base_url=base_url,
        clock=clock,
        source=source,
        audit_reads=audit_reads,
        owns=owns,
    )


def _patients(resources: Sequence[StoredResource]) -> list[str]:
    return [r.patient_id for r in resources if r.patient_id]


def _describe(query: SearchQuery) -> str:
    names = [c.code for c in query.criteria]
    return f"{query.resource_type or '*'}?{'&'.join(names)}"
