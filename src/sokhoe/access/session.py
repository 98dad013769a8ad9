"""A store transaction opened by the access door.

Reads pass through (the repository confines the ones that answer a caller with its
:class:`~sokhoe.store.ports.Confinement`; an operation's own lookups are its business). Every
write goes through :meth:`GuardedSession.write`, which, inside the transaction:

1. decides each new version on what it is (``access/writes.py``) — its compartment, and the
   compartment and owner of the version it replaces — and refuses the whole write otherwise;
   a version a signature targets is replaced or deleted by nobody but an amendment
   (``access/signed.py``: one search in this transaction for the writes that replace one);
2. stamps the owner (the facility that created the resource, or the one an operation
   addressed it to; later versions keep it);
3. writes, then keeps the care-relationship index in step (``access/care.py``);
4. records the audit rows naming every patient the write touched, in the same transaction:
   a write that commits has its audit rows, a write that fails leaves none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection

from sokhoe.access.care import Maintainer, Writer
from sokhoe.access.rights import is_platform
from sokhoe.access.signed import AMENDMENT, FROZEN, STATE, signed_versions, state_only
from sokhoe.access.writes import Rules, authorise, interaction_of
from sokhoe.errors import Forbidden
from sokhoe.search.query import SearchQuery
from sokhoe.store.ports import (
    CareRow,
    Confinement,
    Restriction,
    SearchPage,
    StoredResource,
    StoreSession,
    WriteItem,
)

if TYPE_CHECKING:
    from sokhoe.access.guard import GuardedRepository

T = TypeVar("T")


@dataclass(frozen=True)
class Denial:
    """What a refused write tried, audited after its transaction rolled back."""

    action: str
    patients: tuple[str, ...]
    entities: tuple[str, ...]
    reason: str


class GuardedSession:
    """One transaction through the door (see the module docstring)."""

    def __init__(
        self,
        inner: StoreSession,
        door: GuardedRepository,
        rules: Rules | None,
        now: datetime,
        *,
        reason: str | None = None,
        owner: str | None = None,
    ) -> None:
        self.inner = inner
        self.door = door
        self.rules = rules
        self.now = now
        self.reason = reason
        self.owner = owner
        """The owner of what this session creates, when an operation addresses it to a
        facility other than the caller's (``GuardedRepository.operation``)."""
        self.denial: Denial | None = None

    # -- reads: as stored (the repository confines what answers a caller) ----------------
    def read(self, resource_type: str, id: str) -> StoredResource | None:
        return self.inner.read(resource_type, id)

    def read_many(
        self, keys: Sequence[tuple[str, str]], access: Confinement | None = None
    ) -> list[StoredResource]:
        return self.inner.read_many(keys, access)

    def current_versions(self, resource_type: str, ids: Sequence[str]) -> dict[str, int]:
        return self.inner.current_versions(resource_type, ids)

    def vread(self, resource_type: str, id: str, version_id: int) -> StoredResource | None:
        return self.inner.vread(resource_type, id, version_id)

    def search(self, query: SearchQuery, access: Confinement | None = None) -> SearchPage:
        return self.inner.search(query, access)

    def search_ids(
        self, query: SearchQuery, limit: int, access: Confinement | None = None
    ) -> list[str]:
        return self.inner.search_ids(query, limit, access)

    def visible(self, keys: Sequence[tuple[str, str]], access: Confinement) -> set[tuple[str, str]]:
        return self.inner.visible(keys, access)

    def read_shown(
        self, resource_type: str, id: str, access: Confinement
    ) -> tuple[StoredResource | None, bool]:
        return self.inner.read_shown(resource_type, id, access)

    def visible_version(
        self, resource_type: str, id: str, version_id: int, access: Confinement
    ) -> bool:
        return self.inner.visible_version(resource_type, id, version_id, access)

    def history(
        self,
        resource_type: str | None,
        id: str | None,
        since: datetime | None,
        count: int,
        offset: int,
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]:
        return self.inner.history(resource_type, id, since, count, offset, access)

    def compartment(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str] | None,
        since: datetime | None,
        count: int,
        offset: int,
        access: Confinement | None = None,
    ) -> tuple[list[StoredResource], int]:
        return self.inner.compartment(patient_ids, types, since, count, offset, access)

    def deleted_before(self, cutoff: datetime, limit: int) -> list[StoredResource]:
        return self.inner.deleted_before(cutoff, limit)

    def care(
        self, patient_ids: Sequence[str], grantees: Sequence[str] | None = None
    ) -> list[CareRow]:
        return self.inner.care(patient_ids, grantees)

    def restrictions(self, patient_ids: Sequence[str]) -> list[Restriction]:
        return self.inner.restrictions(patient_ids)

    # -- what only an operation of the door may do ----------------------------------------
    def _operation(self, what: str) -> Rules:
        if self.rules is None or self.rules.operation is None:
            raise Forbidden(f"{what} is done only by the operations of the access door")
        return self.rules

    def relate(self, rows: Sequence[CareRow]) -> None:
        self._operation("Changing the care-relationship index")
        self.inner.relate(rows)

    def unrelate(self, rows: Sequence[CareRow]) -> None:
        self._operation("Changing the care-relationship index")
        self.inner.unrelate(rows)

    def restrict(self, rows: Sequence[Restriction]) -> None:
        self._operation("Changing restrictions")
        self.inner.restrict(rows)

    def unrestrict(self, rows: Sequence[Restriction]) -> None:
        self._operation("Changing restrictions")
        self.inner.unrestrict(rows)

    def side_tables(self, work: Callable[[Connection], T]) -> T | None:
        self._operation("Writing the access tables")
        return self.inner.side_tables(work)

    def purge(self, resource_type: str, id: str) -> int:
        rules = self._operation("Purging a record")
        if "purge" not in rules.owns:
            raise Forbidden("Only the retention purge destroys records")
        return self.inner.purge(resource_type, id)

    def audit(self, action: str, outcome: str, patients: Sequence[str], **details: Any) -> None:
        """An audit event in this transaction (a read answered inside it, an operation)."""
        principal = self.door.principal
        auditor = self.door.auditor
        source = self.door.source

        def record(conn: Connection) -> int:
            return auditor.record_in(
                conn,
                principal,
                action,
                outcome,
                patient_ids=sorted(set(patients)),
                source=source,
                **details,
            )

        self.inner.side_tables(record)

    # -- writes --------------------------------------------------------------------------
    def write(self, items: Sequence[WriteItem]) -> None:
        if self.rules is None:
            raise RuntimeError("write() needs a transaction from the door")
        if not items:
            return
        rules = self.rules
        before: dict[tuple[str, str], StoredResource | None] = {}
        for item in items:
            key = (item.resource_type, item.id)
            if key not in before:
                before[key] = self.inner.read(*key) if item.previous_version is not None else None
        principal = self.door.principal
        stamp = None if principal.kind == "citizen" else principal.facility
        if self.owner is not None:
            stamp = self.owner
        signed = self._signed(before) if AMENDMENT not in rules.owns else {}
        for item in items:
            current = before[(item.resource_type, item.id)]
            try:
                authorise(item, current, rules)
                if current is not None:
                    rtype, rid, version = current.resource_type, current.id, current.version_id
                    if (rtype, rid, version) in signed and not (
                        STATE in rules.owns and state_only(current.content, item.content)
                    ):
                        raise Forbidden(
                            f"{rtype}/{rid}/_history/{version} was signed "
                            f"(Provenance/{signed[(rtype, rid, version)]}): {FROZEN}"
                        )
            except Forbidden as refused:
                self._deny(item, current, str(refused))
                raise
            item.owner = current.owner if current is not None else stamp
        self.inner.write(items)
        writer = Writer(
            platform=is_platform(principal),
            facility=principal.facility if principal.kind != "citizen" else None,
            standing=rules.standing,
            created=rules.created,
        )
        Maintainer(self.inner, writer, self.now).apply(items, before)
        self._audit_writes(items, before)

    def _signed(
        self, before: dict[tuple[str, str], StoredResource | None]
    ) -> dict[tuple[str, str, int], str]:
        """The versions about to be replaced or deleted that a signature targets."""
        replaced = [
            (r.resource_type, r.id, r.version_id)
            for r in before.values()
            if r is not None and not r.deleted
        ]
        if not replaced:
            return {}
        return signed_versions(self.inner, self.door.parse_query, replaced)

    def _deny(self, item: WriteItem, current: StoredResource | None, reason: str) -> None:
        patients = {p for p in (item.patient_id, current.patient_id if current else None) if p}
        self.denial = Denial(
            interaction_of(item, current),
            tuple(sorted(patients)),
            (f"{item.resource_type}/{item.id}",),
            reason,
        )

    def _audit_writes(
        self, items: Sequence[WriteItem], before: dict[tuple[str, str], StoredResource | None]
    ) -> None:
        by_action: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        shared: dict[str, list[str]] = defaultdict(list)
        for item in items:
            current = before.get((item.resource_type, item.id))
            action = interaction_of(item, current)
            ref = f"{item.resource_type}/{item.id}"
            patients = {p for p in (item.patient_id, current.patient_id if current else None) if p}
            for patient in patients:
                by_action[action][patient].append(ref)
            if not patients:
                shared[action].append(ref)
        for action, per_patient in sorted(by_action.items()):
            self.audit(
                action,
                "success",
                sorted(per_patient),
                by_patient={p: refs for p, refs in per_patient.items()},
                reason=self.reason,
            )
        for action, refs in sorted(shared.items()):
            self.audit(action, "success", [], entities=refs, reason=self.reason)
