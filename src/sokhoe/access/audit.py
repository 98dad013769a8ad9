"""The audit log: every access to the record as a FHIR AuditEvent in an append-only hash chain.

Circular 13/2025/TT-BYT (on electronic medical records, replacing Circular 46/2018) asks for a
log of every transaction (*nhật ký giao dịch*); the shared record is only acceptable if the
citizen can see who opened it. So every sign-in (and failed attempt), read, search, write,
export, consent change and break-the-glass is written here, and nobody — an administrator with
SQL access included — can edit or delete a row unnoticed: each row's ``hash`` covers its fields
and the previous row's hash, and :meth:`AuditLog.verify` (``sokhoe audit verify``) recomputes the
chain.

One row per patient concerned. A search that returned three patients writes three rows, each
naming one patient, so a citizen's listing is an index range on ``patient_id``
(``ix_audit_patient``) and never shows another patient's id; an event that concerns no patient
(a sign-in) writes one row with ``patient_id`` NULL. The rows of one event share ``recorded``
and are consecutive in the chain.

What the chain cannot prove on its own is that the newest rows were not cut off, or that
someone did not rewrite the whole tail and recompute every hash. Anchors answer both:
``sokhoe audit anchor`` appends the head (seq, hash) to a file that is meant to leave the
machine (a daily e-mail, a second site, paper); ``sokhoe audit verify --anchors FILE`` then
checks that every anchored row is still there with the same hash.

See: https://hl7.org/fhir/R4/auditevent.html
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any, Final

import orjson
from sqlalchemy import ColumnElement, Connection, Engine, and_, func, insert, select, text
from sqlalchemy.pool import StaticPool

from sokhoe.access.group_commit import GroupCommit
from sokhoe.access.principal import Principal
from sokhoe.metrics import AUDIT_WRITE
from sokhoe.store.sql.access_schema import audit_event

GENESIS: Final = "0" * 64
"""The ``prev_hash`` of the first row."""

_LOCK_KEY: Final = 0x736F6B686F65  # "sokhoe": the PostgreSQL advisory lock of the chain's head
_HEAD_KEY: Final = "sokhoe.audit.head"
"""``Connection.info`` key: (transaction, seq, hash) of the row this transaction wrote last."""

_EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
_ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
_ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_SID: Final = "https://fhir.sokhoe.vn/sid/"
_SID_BY_KIND: Final = {"client": "client", "staff": "user", "citizen": "phone"}

_REST: Final = {"system": _EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
_LOGIN: Final = {"system": _DCM, "code": "110114", "display": "User Authentication"}
_LOGIN_SUB: Final = {"system": _DCM, "code": "110122", "display": "Login"}


@dataclass(frozen=True)
class _Kind:
    type: Mapping[str, str]
    subtype: Mapping[str, str] | None
    action: str
    """AuditEvent.action: C R U D E."""


def _rest(code: str, action: str) -> _Kind:
    return _Kind(_REST, {"system": _INTERACTION, "code": code}, action)


_ACTIONS: Final[Mapping[str, _Kind]] = {
    "read": _rest("read", "R"),
    "vread": _rest("vread", "R"),
    "search": _rest("search-type", "E"),
    "create": _rest("create", "C"),
    "update": _rest("update", "U"),
    "delete": _rest("delete", "D"),
    "history": _rest("history-instance", "R"),
    "operation": _rest("operation", "E"),
    "export": _Kind(
        {"system": _DCM, "code": "110106", "display": "Export"},
        {"system": _INTERACTION, "code": "operation"},
        "R",
    ),
    # a paper copy leaves the system as an export does; the subtype says it was printed
    "print": _Kind(
        {"system": _DCM, "code": "110106", "display": "Export"},
        {"system": "https://fhir.sokhoe.vn/CodeSystem/audit-subtype", "code": "print"},
        "R",
    ),
    "login": _Kind(_LOGIN, _LOGIN_SUB, "E"),
    "login-failed": _Kind(_LOGIN, _LOGIN_SUB, "E"),
    "break-the-glass": _Kind(
        {"system": _DCM, "code": "110113", "display": "Security Alert"}, None, "E"
    ),
    # a consent changes who may read the record: DICOM's "security attributes changed"
    "consent": _Kind(
        {"system": _DCM, "code": "110137", "display": "User Security Attributes Changed"},
        None,
        "U",
    ),
}
ACTIONS: Final = frozenset(_ACTIONS)
"""The actions :meth:`AuditLog.record` accepts."""

_OUTCOMES: Final = {"success": "0", "denied": "4", "error": "8"}
"""AuditEvent.outcome: 0 success, 4 minor failure (refused by policy), 8 serious failure."""
OUTCOMES: Final = frozenset(_OUTCOMES)


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`AuditLog.verify` found."""

    ok: bool
    checked: int
    """Rows whose hash was recomputed."""
    first_bad_seq: int | None
    """The first row that does not follow from the one before it (None when ok)."""
    reason: str
    head: str = GENESIS
    """The hash of the last good row: keep it elsewhere to detect a truncated tail."""
    head_seq: int = 0


@dataclass(frozen=True)
class Anchor:
    """A head of the chain saved outside the database (see the module docstring)."""

    seq: int
    hash: str
    recorded: datetime

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"seq": self.seq, "hash": self.hash, "recorded": self.recorded.isoformat()}
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> Anchor:
        data = orjson.loads(line)
        return cls(int(data["seq"]), str(data["hash"]), datetime.fromisoformat(data["recorded"]))


def read_anchors(path: Path) -> list[Anchor]:
    """The anchors in a JSON-lines file written by ``sokhoe audit anchor``; a malformed line
    is an error naming it (a damaged anchor file must not pass for a clean one)."""
    anchors = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            anchors.append(Anchor.from_json(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not an audit anchor ({exc})") from exc
    return anchors


def _utc(moment: datetime) -> datetime:
    """UTC, aware. SQLite gives back naive datetimes (stored as UTC), PostgreSQL aware ones."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def chain_hash(
    prev_hash: str,
    seq: int,
    recorded: datetime,
    patient_id: str | None,
    agent: str,
    action: str,
    outcome: str,
    content: Any,
) -> str:
    """sha256 of the previous hash and the canonical JSON (sorted keys) of the row's fields.

    Sorted keys make the hash independent of how the database returns JSON (PostgreSQL's
    ``jsonb`` reorders keys); the timestamp is hashed as UTC ISO text for the same reason.
    """
    fields = [seq, _utc(recorded).isoformat(), patient_id, agent, action, outcome, content]
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode("ascii") + canonical).hexdigest()


def agent_key(principal: Principal | None) -> str:
    """How the log names an agent (``staff:bs.an``, ``citizen:0912345678``): one column, so a
    listing can leave out one agent's own rows in its query."""
    if principal is None:
        return "anonymous"
    key = f"{principal.kind}:{principal.subject}"
    if principal.app:  # an app acting for the person: not the person's own views
        key += f" app:{principal.app}"
    return key[:200]


def _sid(principal: Principal) -> str:
    """The identifier system of the agent: a citizen signed in through an identity provider
    is named by that provider's subject (``oidc:host:sub``), not by a phone number."""
    if principal.kind == "citizen" and principal.subject.startswith("oidc:"):
        return _SID + "oidc-subject"
    return _SID + _SID_BY_KIND[principal.kind]


def _agent(principal: Principal | None, source: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True}
    if principal is None:
        agent["who"] = {"display": "anonymous"}
    else:
        agent["who"] = {
            "identifier": {"system": _sid(principal), "value": principal.subject},
            "display": principal.display,
        }
        if principal.role:
            agent["role"] = [{"text": principal.role}]
    if source:
        agent["network"] = {"address": source, "type": "2"}  # 2: IP address
    return agent


def _app_agent(principal: Principal) -> dict[str, Any]:
    """The app that acted for the person (SMART App Launch): a second agent, not the
    requestor, of type "application" as the AuditEvent agent types say.
    See: https://hl7.org/fhir/R4/auditevent.html"""
    return {
        "type": {"coding": [{"system": _DCM, "code": "110150", "display": "Application"}]},
        "who": {
            "identifier": {"system": _SID + "app", "value": principal.app},
            "display": principal.app_name or principal.app,
        },
        "requestor": False,
    }


def _entities(
    patient_id: str | None, entities: Sequence[str], query: str | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if patient_id is not None:
        out.append(
            {
                "what": {"reference": f"Patient/{patient_id}"},
                "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    for ref in entities:
        if ref.startswith("Patient/"):
            continue  # patients are the rows' own subject, one per row
        out.append(
            {
                "what": {"reference": ref},
                "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
            }
        )
    if query:
        out.append(
            {
                "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": _OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(query.encode("utf-8")).decode("ascii"),
            }
        )
    return out


@dataclass(frozen=True)
class _Event:
    """One call to :meth:`AuditLog.record`; it becomes one AuditEvent per patient concerned."""

    recorded: datetime
    principal: Principal | None
    action: str
    outcome: str
    entities: Sequence[str]
    query: str | None
    reason: str | None
    source: str | None
    by_patient: Mapping[str, Sequence[str]] | None = None
    """Entities per patient, when each row names only what concerned its patient."""

    def content(self, seq: int, patient_id: str | None) -> dict[str, Any]:
        kind = _ACTIONS[self.action]
        event: dict[str, Any] = {
            "resourceType": "AuditEvent",
            "id": str(seq),
            "type": dict(kind.type),
        }
        if kind.subtype:
            event["subtype"] = [dict(kind.subtype)]
        event |= {
            "action": kind.action,
            "recorded": self.recorded.isoformat(),
            "outcome": _OUTCOMES[self.outcome],
        }
        if self.reason:
            event["outcomeDesc"] = self.reason
        if self.action == "break-the-glass":
            etreat = {"system": _ACT_REASON, "code": "ETREAT", "display": "Emergency Treatment"}
            purpose: dict[str, Any] = {"coding": [etreat]}
            if self.reason:
                purpose["text"] = self.reason
            event["purposeOfEvent"] = [purpose]
        event["agent"] = [_agent(self.principal, self.source)]
        if self.principal is not None and self.principal.app:
            event["agent"].append(_app_agent(self.principal))
        facility = self.principal.facility if self.principal else None
        event["source"] = {"site": facility} if facility else {}
        event["source"]["observer"] = {"display": "sokhoe"}
        entities = self.entities
        if self.by_patient is not None and patient_id is not None:
            entities = self.by_patient.get(patient_id, entities)
        found = _entities(patient_id, entities, self.query)
        if found:
            event["entity"] = found
        return event


class AuditLog:
    """Append-only AuditEvent log in the access database (see the module docstring).

    Sequence numbers are assigned inside the writing transaction after taking the chain's
    lock, so concurrent writers never fork the chain: SQLite writers are already serialised by
    ``BEGIN IMMEDIATE``; on PostgreSQL the transaction takes an advisory lock first.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The in-memory store's access engine is ONE SQLite connection shared by all threads
        # (StaticPool): two threads would interleave their BEGINs on it. That store is
        # single-process by definition, so a process lock is a complete answer there.
        self._lock: threading.Lock | None = (
            threading.Lock() if isinstance(engine.pool, StaticPool) else None
        )
        self._group: GroupCommit | None = GroupCommit(engine) if self._lock is None else None
        """Events written on their own (reads, refusals) go through a group commit."""

    @contextmanager
    def _serial(self) -> Iterator[None]:
        if self._lock is None:
            yield
        else:
            with self._lock:
                yield

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
    ) -> int:
        """Write the event in its own transaction; return the last sequence number written.

        ``patient_ids``: every patient the event concerns (for a search, those that appeared
        in the results), one row each. ``query``: the search as received, kept base64 in
        ``entity.query``. ``reason``: why (``outcomeDesc``; for break-the-glass the
        clinician's justification). ``source``: the caller's network address.
        """
        _check(action, outcome)
        stamped = when or datetime.now(UTC)  # the event's own time, not its batch's

        def write(conn: Connection) -> int:
            return self.record_in(
                conn,
                principal,
                action,
                outcome,
                patient_ids=patient_ids,
                entities=entities,
                query=query,
                reason=reason,
                source=source,
                when=stamped,
            )

        if self._group is not None:  # concurrent requests' rows share one commit
            return self._group.run(write)
        with self._serial(), self.engine.begin() as conn:
            return write(conn)

    def record_in(
        self,
        conn: Connection,
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
        by_patient: Mapping[str, Sequence[str]] | None = None,
    ) -> int:
        """:meth:`record` inside the caller's open write transaction on ``conn``.

        The audit rows then commit (or roll back) with the caller's own write, so the log never
        claims a write that did not happen nor misses one that did. On PostgreSQL the chain's
        advisory lock is held until that transaction ends: keep it short, and use READ
        COMMITTED (the default) so the head read after the lock is current. On the in-memory
        store's engine the caller's transaction holds the one shared connection, so other
        threads must not write audit rows meanwhile.
        """
        _check(action, outcome)
        started = perf_counter()
        recorded = _utc(when or datetime.now(UTC))
        event = _Event(
            recorded, principal, action, outcome, entities, query, reason, source, by_patient
        )
        transaction = conn.get_transaction()
        mine = conn.info.get(_HEAD_KEY)
        if mine is not None and transaction is not None and mine[0] is transaction:
            # this transaction wrote the newest row and still holds the chain (the advisory
            # lock on PostgreSQL, the writer's lock on SQLite): no one can have written since
            seq, prev = int(mine[1]), str(mine[2])
        else:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            a = audit_event.c
            head = conn.execute(select(a.seq, a.hash).order_by(a.seq.desc()).limit(1)).first()
            seq, prev = (int(head.seq), str(head.hash)) if head else (0, GENESIS)
        agent = agent_key(principal)
        subjects: list[str | None] = [*dict.fromkeys(patient_ids)] or [None]
        rows = []
        for patient_id in subjects:
            seq += 1
            content = event.content(seq, patient_id)
            digest = chain_hash(prev, seq, recorded, patient_id, agent, action, outcome, content)
            rows.append(
                {
                    "seq": seq,
                    "recorded": recorded,
                    "patient_id": patient_id,
                    "agent": agent,
                    "action": action,
                    "outcome": outcome,
                    "content": content,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        conn.execute(insert(audit_event), rows)
        if transaction is not None:
            conn.info[_HEAD_KEY] = (transaction, seq, prev)
        AUDIT_WRITE.observe(perf_counter() - started)  # the lock wait included: it is the cost
        return seq

    def head(self) -> Anchor:
        """The newest row's sequence number and hash (seq 0 and :data:`GENESIS` when empty)."""
        a = audit_event.c
        with self._serial(), self.engine.connect() as conn:
            row = conn.execute(select(a.seq, a.hash).order_by(a.seq.desc()).limit(1)).first()
        recorded = datetime.now(UTC)
        return (
            Anchor(int(row.seq), str(row.hash), recorded) if row else Anchor(0, GENESIS, recorded)
        )

    def verify(self, batch: int = 5000, anchors: Sequence[Anchor] = ()) -> VerifyReport:
        """Recompute the chain in sequence order, ``batch`` rows per short read transaction.

        Detects an edited row (its hash no longer matches its fields), a deleted row (a gap in
        ``seq`` or a ``prev_hash`` that is not the previous row's hash) and rows moved or
        swapped (``seq`` is hashed). Reports the first row that does not follow. With
        ``anchors`` (heads saved earlier elsewhere) it also detects a cut-off tail and a tail
        rewritten with recomputed hashes.
        """
        return self._walk(batch, {a.seq: a.hash for a in anchors if a.seq > 0})

    def _walk(self, batch: int, anchored: Mapping[int, str]) -> VerifyReport:
        a = audit_event.c
        # in chain_hash's order, then the stored links
        columns = (a.seq, a.recorded, a.patient_id, a.agent, a.action, a.outcome, a.content)
        last_seq, prev, checked = 0, GENESIS, 0
        while True:
            with self._serial(), self.engine.connect() as conn:
                rows = conn.execute(
                    select(*columns, a.prev_hash, a.hash)
                    .where(a.seq > last_seq)
                    .order_by(a.seq)
                    .limit(batch)
                ).all()
            if not rows:
                beyond = [s for s in anchored if s > last_seq]
                if beyond:
                    cut = (
                        f"the log ends at seq {last_seq} but seq {min(beyond)} was anchored: "
                        "newest rows were cut off"
                    )
                    return VerifyReport(False, checked, last_seq + 1, cut, prev, last_seq)
                reason = f"{checked} events, chain intact"
                if anchored:
                    reason += f", {len(anchored)} anchors match"
                return VerifyReport(True, checked, None, reason, prev, last_seq)
            for row in rows:
                seq = int(row.seq)
                problem: str | None = None
                if seq != last_seq + 1:
                    problem = f"seq {seq} follows {last_seq}: rows are missing"
                elif row.prev_hash != prev:
                    problem = f"seq {seq} does not link to the row before it"
                elif row.hash != chain_hash(prev, *tuple(row)[:7]):
                    problem = f"seq {seq} was altered: its hash does not match its fields"
                elif seq in anchored and anchored[seq] != row.hash:
                    problem = f"seq {seq} differs from its anchor: the log was rewritten"
                if problem:
                    return VerifyReport(False, checked, seq, problem, prev, last_seq)
                checked += 1
                last_seq, prev = seq, str(row.hash)

    def for_patient(
        self,
        patient_ids: Sequence[str],
        count: int = 50,
        offset: int = 0,
        *,
        exclude_agents: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], int]:
        """The AuditEvents concerning these patients, newest first, and how many there are.

        What a citizen sees for their own record and their children's: who (agent), when
        (recorded), from which facility (source.site) and why (outcomeDesc, purposeOfEvent).
        The staff's search text is left out: it may name other people. ``exclude_agents``
        (:func:`agent_key` values) are left out in the query, so totals and pages stay exact:
        the portal leaves out the citizen's own views of their record.
        """
        ids = list(dict.fromkeys(patient_ids))
        if not ids:
            return [], 0
        a = audit_event.c
        where: ColumnElement[bool] = a.patient_id.in_(ids)
        if exclude_agents:
            where = and_(where, a.agent.not_in(list(exclude_agents)))
        with self._serial(), self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(audit_event).where(where))
            found = int(total.scalar_one())
            rows = conn.execute(
                select(a.content).where(where).order_by(a.seq.desc()).limit(count).offset(offset)
            ).all()
        return [_for_citizen(row.content) for row in rows], found

    def event_for_patient(self, patient_ids: Sequence[str], seq: int) -> dict[str, Any] | None:
        """The AuditEvent ``seq`` as :meth:`for_patient` shows it, or None unless it concerns
        one of these patients (a citizen naming another person's event finds nothing)."""
        ids = list(dict.fromkeys(patient_ids))
        if not ids:
            return None
        a = audit_event.c
        with self._serial(), self.engine.connect() as conn:
            row = conn.execute(select(a.content).where(a.seq == seq, a.patient_id.in_(ids))).first()
        return None if row is None else _for_citizen(row.content)

    def alerts(self, since: datetime) -> list[Any]:
        """The successful break-the-glass rows naming a patient recorded since ``since``, in
        chain order: ``seq, recorded, patient_id, agent, content`` (``access/glass.py``)."""
        a = audit_event.c
        query = (
            select(a.seq, a.recorded, a.patient_id, a.agent, a.content)
            .where(
                a.action == "break-the-glass",
                a.outcome == "success",
                a.recorded >= _utc(since),
                a.patient_id.is_not(None),
            )
            .order_by(a.seq)
        )
        with self._serial(), self.engine.connect() as conn:
            return list(conn.execute(query).all())


def _for_citizen(content: Mapping[str, Any]) -> dict[str, Any]:
    event = dict(content)
    if "entity" in event:
        kept = [e for e in event["entity"] if "query" not in e]
        if kept:
            event["entity"] = kept
        else:
            del event["entity"]
    return event


def _check(action: str, outcome: str) -> None:
    if action not in _ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}: expected one of {sorted(_ACTIONS)}")
    if outcome not in _OUTCOMES:
        raise ValueError(f"Unknown audit outcome {outcome!r}: expected one of {sorted(_OUTCOMES)}")
