"""One HL7 v2 message in, one acknowledgement out: checks, mapping, one transaction, receipt.

The steps, each of which can end in a NACK that changed nothing:

1. bytes → UTF-8 text → segments; MSH read (version 2.3–2.5.1, control ID, facility MSH-4);
2. the sender: the transport says whether MSH-4 may send from where the message came from
   (MLLP: the address allow-list; HTTP: the token's facility); the facility must be known
   (an Organization with its *mã CSKCB*);
3. a message already answered (same MSH-4 and MSH-10, table ``hl7_message``) gets the same
   ACK again and writes nothing;
4. the message is read into plans (``patient``, ``mapping``): data faults are ``AE`` naming
   the segment and field;
5. authorisation through the access door (``GuardedRepository``) as the facility's connected
   system: the message runs as an operation of the door, audited in its transaction.
   Registering a new person makes the record the facility's; an ADT about a person found by
   CCCD or BHYT the facility has no relationship with registers the visit as ``$check-in``
   does (the facility's record number; its demographics go to a review Task, since knowing
   someone's numbers is not presence); results and orders need a relationship;
6. one write transaction: the patient is found again on what is committed, every resource is
   created or updated by its business identifier, and the audit rows and the
   ``hl7_message`` receipt commit with the writes.

ADT^A40 (merge) uses the master patient index's merge, which is its own transaction; the
receipt follows it, and a repeated merge into the same survivor counts as done, so a crash in
between is harmless.
See: https://hl7.org/fhir/R4/messaging.html and the HL7 v2.5.1 standard, chapters 2, 3, 4, 7.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import hl7  # type: ignore[import-untyped]  # python-hl7 ships no type information
import orjson
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from sokhoe.access.audit import AuditLog
from sokhoe.access.care import OWN, RECORD, WINDOW, grant
from sokhoe.access.db import access_engine, access_reader
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.policy import Policy, is_platform
from sokhoe.access.principal import Principal, system_principal
from sokhoe.access.session import GuardedSession
from sokhoe.errors import Conflict, FhirError, Forbidden
from sokhoe.fhir.patient_links import surviving_patient
from sokhoe.fhir.resources import new_id
from sokhoe.interop.hl7v2 import mapping
from sokhoe.interop.hl7v2.ack import Header, build_ack
from sokhoe.interop.hl7v2.concepts import ConceptTranslator
from sokhoe.interop.hl7v2.er7 import (
    INTERNAL_ERROR,
    REQUIRED_FIELD_MISSING,
    SUPPORTED_VERSIONS,
    TABLE_VALUE_NOT_FOUND,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION,
    VIETNAM_TZ,
    Hl7Fault,
    Location,
    Segment,
    decode,
    first,
    parse,
    parse_ts,
    required_segment,
)
from sokhoe.interop.hl7v2.patient import PatientData, apply, read_identifiers, read_pid
from sokhoe.interop.hl7v2.records import RecordWriter, Writes
from sokhoe.mpi.identifiers import CCCD, FACILITY, mrn_system, validate_facility_code
from sokhoe.mpi.links import Agent, merge, queue_reviews, review_task
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Candidate, Matcher
from sokhoe.operations.check_in import add_record_number
from sokhoe.store.ports import FhirStore, StoredResource
from sokhoe.store.sql.interop_schema import hl7_message

log = logging.getLogger("sokhoe.hl7v2")

ADT_EVENTS = frozenset({"A01", "A03", "A04", "A08", "A40"})
SUPPORTED = {"ADT": ADT_EVENTS, "ORU": {"R01"}, "ORM": {"O01"}, "OML": {"O21"}}
HL7_SCOPES = frozenset({"system/*.cruds"})
REVIEWS = frozenset({"review-task"})
"""An ADT from a facility without a relationship queues demographic changes for review."""
FACILITY_TTL = 60.0
"""Seconds a facility's Organization is remembered between messages."""


def facility_principal(facility: str, name: str | None = None) -> Principal:
    """The connected system a facility's HL7 interface acts as (MLLP carries no token)."""
    return system_principal(
        f"hl7:{facility}", f"HL7 v2 interface of {name or facility}", HL7_SCOPES, facility
    )


@dataclass
class _Message:
    """A parsed message and what its MSH says."""

    message: hl7.Message
    header: Header
    facility: str
    kind: str
    event: str
    sent: str | None


class Hl7Processor:
    """Applies HL7 v2 messages to the record; safe to share between threads and listeners
    (it keeps no state between messages: receipts live in the database)."""

    def __init__(
        self,
        store: FhirStore,
        base_url: str,
        *,
        engine: Engine | None = None,
        policy: Policy | None = None,
        auditor: AuditLog | None = None,
        match: bool = True,
    ) -> None:
        self.engine = engine if engine is not None else access_engine(store)
        self.reader = engine if engine is not None else access_reader(store)
        """Receipts are read here: a plain read never waits behind (or takes) the writer's
        lock; a race with another connection is settled by the receipt's unique key."""
        self.auditor = auditor if auditor is not None else AuditLog(self.engine)
        self.repo = platform_repository(
            store, base_url, name="sokhoe-hl7v2", auditor=self.auditor, policy=policy
        )
        self.matcher = Matcher(self.repo) if match else None
        self._facilities: dict[str, tuple[float, StoredResource]] = {}
        self.records = RecordWriter(self.repo)

    # -- the entry point -----------------------------------------------------------------
    def handle(
        self,
        raw: bytes,
        *,
        source: str | None = None,
        sender_allowed: Callable[[str], bool] | None = None,
        principal: Principal | None = None,
    ) -> str:
        """The ACK/NACK text for one message (never raises for a bad message).

        ``sender_allowed(facility)``: may this transport connection speak for the facility
        (MLLP: its address is on the allow-list). ``principal``: the signed-in caller (HTTP);
        without one the facility's interface principal is used.
        """
        header = Header()
        try:
            try:
                text = decode(raw)
            except Hl7Fault:
                header = _header_of_undecodable(self, raw)
                raise
            msg = self._read(text)
            header = msg.header
            if sender_allowed is not None and not sender_allowed(msg.facility):
                raise Hl7Fault(
                    f"MSH-4 facility {msg.facility} may not send from {source or 'here'}",
                    ack_code="AR",
                    error_code=INTERNAL_ERROR,
                    location=Location("MSH", 1, 4),
                )
            if principal is not None and not is_platform(principal):
                if principal.facility != msg.facility:
                    raise Hl7Fault(
                        f"MSH-4 is {msg.facility} but the caller acts for {principal.facility}",
                        ack_code="AR",
                        error_code=INTERNAL_ERROR,
                        location=Location("MSH", 1, 4),
                    )
            stored = self._receipt(msg.facility, header.control_id)
            if stored is not None:
                return stored
            org = self._organization(msg.facility)
            if principal is None:
                principal = facility_principal(msg.facility, (org.content or {}).get("name"))
            guard = self.repo.for_caller(principal, source=source, audit_reads=True)
            return self._dispatch(msg, org, guard, source)
        except Hl7Fault as fault:
            return build_ack(header, fault.ack_code, fault)
        except Forbidden as exc:
            return build_ack(
                header, "AR", Hl7Fault(str(exc), ack_code="AR", error_code=INTERNAL_ERROR)
            )
        except FhirError as exc:
            return build_ack(header, "AE", Hl7Fault(str(exc), error_code=INTERNAL_ERROR))
        except Exception:
            log.exception("HL7 v2 message %s from %s failed", header.control_id, source)
            internal = Hl7Fault(
                "Internal error while applying the message; nothing was changed. "
                "The platform operators were notified by the server log.",
                error_code=INTERNAL_ERROR,
            )
            return build_ack(header, "AE", internal)

    # -- MSH, sender, receipts ------------------------------------------------------------
    def _read(self, text: str) -> _Message:
        message = parse(text)
        msh = Segment(message, message.segment("MSH"), 1)
        kind, event = msh.get(9, 1).strip().upper(), msh.get(9, 2).strip().upper()
        header = Header(
            sending_application=msh.get(3),
            sending_facility=msh.get(4),
            receiving_application=msh.get(5),
            receiving_facility=msh.get(6),
            control_id=msh.get(10).strip(),
            trigger=event,
            processing_id=msh.get(11).strip() or "P",
            version=msh.get(12).strip() or "2.5",
        )
        if not header.control_id:
            raise Hl7Fault(
                "MSH-10 (message control ID) is required",
                ack_code="AR",
                error_code=REQUIRED_FIELD_MISSING,
                location=msh.location(10),
            )
        if msh.get(12).strip() not in SUPPORTED_VERSIONS:
            raise Hl7Fault(
                f"MSH-12 version {msh.get(12)!r} is not supported (2.3 to 2.5.1)",
                ack_code="AR",
                error_code=UNSUPPORTED_VERSION,
                location=msh.location(12),
            )
        charset = msh.get(18).strip().upper()
        if charset and charset not in ("UNICODE UTF-8", "UNICODE", "ASCII"):
            raise Hl7Fault(
                f"MSH-18 character set {charset!r} is not accepted; send UNICODE UTF-8",
                ack_code="AR",
                error_code=TABLE_VALUE_NOT_FOUND,
                location=msh.location(18),
            )
        try:
            facility = validate_facility_code(msh.get(4, 1))
        except ValueError as exc:
            raise Hl7Fault(
                f"MSH-4 (sending facility): {exc}",
                ack_code="AR",
                error_code=REQUIRED_FIELD_MISSING if not msh.get(4) else TABLE_VALUE_NOT_FOUND,
                location=msh.location(4),
            ) from exc
        if kind not in SUPPORTED:
            raise Hl7Fault(
                f"Message type {kind or '(empty)'} is not supported "
                f"({', '.join(sorted(SUPPORTED))})",
                ack_code="AR",
                error_code=UNSUPPORTED_MESSAGE_TYPE,
                location=msh.location(9),
            )
        if event not in SUPPORTED[kind]:
            raise Hl7Fault(
                f"{kind}^{event or '(empty)'} is not supported "
                f"(events: {', '.join(sorted(SUPPORTED[kind]))})",
                ack_code="AR",
                error_code=UNSUPPORTED_EVENT,
                location=msh.location(9, 2),
            )
        sent = None
        if msh.get(7).strip():
            sent = parse_ts(msh.get(7), msh.location(7), what="message time")[0]
        return _Message(message, header, facility, kind, event, sent)

    def _receipt(self, facility: str, control_id: str) -> str | None:
        t = hl7_message.c
        with self.reader.connect() as conn:
            row = conn.execute(
                select(t.ack).where(t.facility == facility, t.control_id == control_id)
            ).first()
        return str(row.ack) if row is not None else None

    def _organization(self, facility: str) -> StoredResource:
        """The facility's Organization. Remembered for ``FACILITY_TTL`` seconds: the registry
        changes rarely and every message needs it; a facility removed from the registry is
        refused by every listener process within that time."""
        cached = self._facilities.get(facility)
        if cached is not None and time.monotonic() - cached[0] < FACILITY_TTL:
            return cached[1]
        query = self.repo.parse_query(
            "Organization", [("identifier", f"{FACILITY}|{facility}")], strict=True
        )
        with self.repo.snapshot() as tx:
            ids = tx.search_ids(query, limit=1)
            found = tx.read("Organization", ids[0]) if ids else None
        if found is None or found.content is None:
            raise Hl7Fault(
                f"MSH-4 facility {facility} is not a registered facility",
                ack_code="AR",
                error_code=UNKNOWN_KEY,
                location=Location("MSH", 1, 4),
            )
        self._facilities[facility] = (time.monotonic(), found)
        return found

    # -- messages --------------------------------------------------------------------------
    def _dispatch(
        self, msg: _Message, org: StoredResource, guard: GuardedRepository, source: str | None
    ) -> str:
        pid = read_pid(required_segment(msg.message, "PID"), msg.facility)
        if msg.kind == "ADT" and msg.event == "A40":
            return self._merge(msg, pid, guard)
        pv1 = first(msg.message, "PV1")
        evn = first(msg.message, "EVN")
        when = msg.sent
        if evn is not None and evn.get(2).strip():
            when = parse_ts(evn.get(2), evn.location(2), what="recorded time")[0]
        encounter = None
        if msg.kind == "ADT":
            if pv1 is None and msg.event in ("A01", "A03"):
                raise Hl7Fault(
                    f"ADT^{msg.event} needs a PV1 segment (the visit)",
                    error_code=REQUIRED_FIELD_MISSING,
                    location=Location("PV1"),
                )
            if pv1 is not None:
                encounter = mapping.encounter_plan(pv1, msg.facility, msg.event, when)
        elif pv1 is not None and pv1.get(19).strip():
            encounter = mapping.encounter_plan(pv1, msg.facility, "link", None)
        # parse the clinical segments once before any write, so data faults change nothing
        plans = self._clinical(msg)
        return self._apply(msg, org, guard, pid, encounter, plans, source)

    def _clinical(self, msg: _Message) -> list[mapping.Plan]:
        """The clinical resources the message carries, with the facility's own codes (the
        ConceptMap translations are added inside the write transaction)."""
        translator = ConceptTranslator(self.repo, None)
        if msg.kind == "ORU":
            return mapping.result_plans(msg.message, msg.facility, translator)
        if msg.kind in ("ORM", "OML"):
            return mapping.order_plans(msg.message, msg.facility, translator)
        return []

    def _apply(
        self,
        msg: _Message,
        org: StoredResource,
        guard: GuardedRepository,
        data: PatientData,
        encounter: mapping.Plan | None,
        plans: list[mapping.Plan],
        source: str | None,
    ) -> str:
        adt = msg.kind == "ADT"
        clinical_types = {
            "ORU": ("Observation", "DiagnosticReport"),
            "ORM": ("ServiceRequest",),
            "OML": ("ServiceRequest",),
        }.get(msg.kind, ())
        for rtype in (*clinical_types, *(["Encounter"] if encounter else [])):
            guard.require_scope(rtype, "create")
            guard.require_scope(rtype, "update")
        known: StoredResource | None = None
        if adt:  # results and orders find their patient in their transaction only
            with self.repo.snapshot() as tx:
                known = self.records.find(tx, data.keys(msg.facility))
        review: list[Candidate] = []
        matched: str | None = None
        if adt:
            # finding or registering the person and recording the facility's number is what
            # creates the relationship the policy checks later (as $check-in does)
            guard.authorise_operation(f"hl7v2-{msg.event}", "Patient", ["create", "update"])
            if known is None and self.matcher is not None and data.names:
                candidates = self.matcher.candidates(apply({}, data, msg.facility, _today()))
                certain = [c.id for c in candidates if c.grade == CERTAIN]
                matched = certain[0] if len(certain) == 1 else None
                review = [c for c in candidates if c.grade == PROBABLE][:3]
        authorised = known.id if known else matched
        what = f"hl7v2 {msg.kind}^{msg.event} {msg.header.control_id}"
        writes = Writes()
        ack = build_ack(msg.header, "AA", text="Message applied")
        try:
            with guard.operation(f"hl7v2-{msg.event}", owns=REVIEWS, reason=what) as tx:
                current = self.records.find(tx, data.keys(msg.facility))
                if current is None and not adt:
                    raise Hl7Fault(
                        "No patient with these identifiers is known; send ADT^A04 (register) first",
                        error_code=UNKNOWN_KEY,
                        location=Location("PID", 1, 3),
                    )
                if not adt:
                    authorised = current.id if current is not None else None
                person = current or (surviving_patient(tx, matched) if matched else None)
                changed = (person.id if person else None) != authorised
                if (changed and not (adt and data.mrn is not None)) or (person is None and not adt):
                    # another message registered or merged the person meanwhile: what was
                    # authorised is not what would be written
                    raise Hl7Fault(
                        "The patient's record changed while the message was applied; resend",
                        error_code=INTERNAL_ERROR,
                    )
                standing = guard.standing(tx, person.id) if person is not None else None
                related = guard.access is None or (
                    standing is not None and standing.level == RECORD
                )
                if person is None:  # a registration: the record is the facility's own
                    content = apply({}, data, msg.facility, _today())
                    patient_id = new_id()
                    content["id"] = patient_id
                    self.records.put(tx, content, "Patient", patient_id, writes, None)
                elif adt and related:
                    content = apply(person.content or {}, data, msg.facility, _today())
                    content["id"] = patient_id = person.id
                    self.records.put(tx, content, "Patient", patient_id, writes, person)
                elif adt:  # knowing the numbers is not presence: see _register_unrelated
                    patient_id = person.id
                    self._register_unrelated(guard, tx, msg, data, person, writes)
                else:
                    patient_id = person.id
                    if standing is None and guard.access is not None:
                        raise Forbidden(
                            f"Patient/{patient_id} has no current relationship with facility "
                            f"{msg.facility}; register the visit first (ADT^A04 or $check-in)"
                        )
                ids: dict[tuple[str, str], str] = {}
                encounter_id = None
                if encounter is not None:
                    encounter_id = self.records.upsert_encounter(
                        tx, encounter, msg.event, patient_id, org.id, writes, ids
                    )
                translator = ConceptTranslator(self.repo, tx)
                for plan in plans:
                    plan.content["code"] = translator.with_mappings(plan.content["code"])
                existing = self.records.existing_many(tx, plans)
                for plan in plans:  # ids first: a report refers to results written after it
                    old = existing.get((plan.system, plan.value))
                    ids[(plan.system, plan.value)] = old.id if old is not None else new_id()
                for plan in plans:
                    plan.content["subject"] = {"reference": f"Patient/{patient_id}"}
                    if encounter_id:
                        plan.content["encounter"] = {"reference": f"Encounter/{encounter_id}"}
                    before = existing.get((plan.system, plan.value))
                    self.records.upsert(tx, plan, writes, ids, before)
                row = self._row(msg, ack)
                tx.side_tables(lambda conn: conn.execute(insert(hl7_message).values(**row)))
        except IntegrityError:
            stored = self._receipt(msg.facility, msg.header.control_id)
            if stored is None:
                raise
            return stored  # the same message was applied by another connection meanwhile
        if adt and not current and review:
            queue_reviews(self.repo, patient_id, [(c.id, c.probability, c.grade) for c in review])
        return ack

    def _register_unrelated(
        self,
        guard: GuardedRepository,
        tx: GuardedSession,
        msg: _Message,
        data: PatientData,
        person: StoredResource,
        writes: Writes,
    ) -> None:
        """An ADT about a person the facility has no relationship with (found by CCCD or
        BHYT, neither secret): as ``$check-in``, the facility's record number and a care row
        that lets it write the visit; demographics the message would change go to a review
        Task instead of overwriting what others recorded."""
        content = dict(person.content or {})
        proposed = apply(content, data, msg.facility, _today())
        numbered = dict(content)
        add_record_number(numbered, msg.facility, data.mrn, date.fromisoformat(_today()))
        if _demographics(proposed) != _demographics(numbered):
            task = review_task(
                "review-demographics",
                "Review demographics",
                f"HL7 {msg.kind}^{msg.event} {msg.header.control_id} from facility "
                f"{msg.facility} would change the record of a patient it has no relationship "
                "with",
                f"Patient/{person.id}",
                guard.clock(),
                [
                    {
                        "type": {"text": "proposed"},
                        "valueString": orjson.dumps(
                            _demographics(proposed), option=orjson.OPT_SORT_KEYS
                        ).decode(),
                    }
                ],
            )
            guard.update(task, "Task", task["id"], tx=tx)
        numbered["id"] = person.id
        self.records.put(tx, numbered, "Patient", person.id, writes, person)
        now = guard.clock()
        grant(
            tx,
            person.id,
            f"facility:{msg.facility}",
            "check-in",
            now,
            level=OWN,
            proven=False,
            until=now + WINDOW,
        )

    def _merge(self, msg: _Message, data: PatientData, guard: GuardedRepository) -> str:
        """ADT^A40: the record named in MRG-1 is merged into the one PID names."""
        mrg = required_segment(msg.message, "MRG")
        if not mrg.get(1).strip():
            raise Hl7Fault(
                "MRG-1 (prior patient identifier list) is required",
                error_code=REQUIRED_FIELD_MISSING,
                location=mrg.location(1),
            )
        cccd, mrn, _ = read_identifiers(mrg, 1, msg.facility)
        old_keys = [(CCCD, cccd)] if cccd else []
        if mrn:
            old_keys.append((mrn_system(msg.facility), mrn))
        with self.repo.snapshot() as tx:
            target = self.records.find(tx, data.keys(msg.facility))
            source = self.records.find(tx, old_keys, follow=False) if old_keys else None
        if target is None:
            raise Hl7Fault(
                "No patient holds the identifiers in PID-3 (the surviving record)",
                error_code=UNKNOWN_KEY,
                location=Location("PID", 1, 3),
            )
        if source is None:
            raise Hl7Fault(
                "No patient holds the identifiers in MRG-1 (the record to merge)",
                error_code=UNKNOWN_KEY,
                location=mrg.location(1),
            )
        if source.id != target.id:
            try:
                merge(
                    guard,
                    source.id,
                    target.id,
                    Agent(guard.principal.display),
                    f"HL7 v2 ADT^A40 {msg.header.control_id} from {msg.facility}",
                    roles=None,
                )
            except Conflict:
                if self._merged_into(source.id) != target.id:
                    raise
        ack = build_ack(msg.header, "AA", text=f"Merged into Patient/{target.id}")
        with self.engine.begin() as conn:
            conn.execute(insert(hl7_message).values(**self._row(msg, ack)))
        return ack

    # -- receipts and audit ------------------------------------------------------------------
    def _merged_into(self, pid: str) -> str | None:
        with self.repo.snapshot() as tx:
            survivor = surviving_patient(tx, pid)
        return survivor.id if survivor is not None else None

    def _row(self, msg: _Message, ack: str) -> dict[str, Any]:
        return {
            "facility": msg.facility,
            "control_id": msg.header.control_id,
            "received": datetime.now(UTC),
            "ack": ack,
        }


def _header_of_undecodable(processor: Hl7Processor, raw: bytes) -> Header:
    """What MSH says, read as Latin-1 only to address the reject (MSA-2 must echo the
    control ID); nothing of such a message is applied."""
    try:
        return processor._read(raw.decode("latin-1")).header
    except Hl7Fault:
        return Header()


def _today() -> str:
    return datetime.now(VIETNAM_TZ).date().isoformat()


def _demographics(patient: dict[str, Any]) -> dict[str, Any]:
    """What a facility without a relationship may not change by itself."""
    return {k: patient.get(k) for k in ("name", "birthDate", "gender", "address", "telecom")} | {
        "identifier": sorted(
            (str(i.get("system")), str(i.get("value")), str(i.get("use")))
            for i in patient.get("identifier", [])
            if not str(i.get("system", "")).startswith(mrn_system(""))
        )
    }
