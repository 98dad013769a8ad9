"""The transactional outbox to the national prescription system: nothing lost, nothing sent twice.

**Enqueue.** The code that issues a prescription or records a dispense calls :func:`enqueue`
with the door's transaction (``tx``) of that write: the row goes in through
``StoreSession.side_tables``, so it commits or rolls back with the record. Each row has an
idempotency key (``<code>:prescription``, ``<code>:dispensing:<pharmacy>:<invoice>``; a
prescription can be dispensed in parts, each sale its own report, and invoice numbers are each
pharmacy's own); enqueuing the same key again does nothing.
The JSON is built at enqueue time (``mapping.py``): what is sent is what was issued.

**Deliver.** :class:`Deliverer` (``sokhoe prescriptions deliver``, or the server every
``national_rx_poll_seconds``) *claims* due rows for a lease -- ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, a conditional ``UPDATE`` per row on SQLite -- so any number of workers run at once
and each row has one sender at a time. Then, per row:

- accepted: marked ``delivered``; a delivered row is never claimed again;
- unreachable, time-out, 5xx, 429, a refused sign-in, missing settings: back to ``pending``
  with exponential back-off and jitter (never given up: nothing is lost);
- refused (another 4xx): marked ``refused`` and, in the same transaction, a ``Task`` the
  facility sees (status ``requested``, owner the facility's Organization, focus the
  MedicationRequest, the refusal text), written through the door by the facility's outbox
  system as server-owned content (``access/writes.py``: ``national-rx-task``);
- a worker that dies after sending and before marking leaves the row claimed; when its lease
  ends another worker sends it again, and the national system's answer to a code it already
  has (the mock: 400 "The prescription already exists...") is taken as delivered.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sokhoe.access.guard import PLATFORM_SCOPES, GuardedRepository
from sokhoe.access.principal import system_principal
from sokhoe.access.writes import NATIONAL_RX_TASKS
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.prescribing.national.client import (
    NationalClient,
    NationalError,
    NotConfigured,
    Refused,
    SignInRefused,
    Transient,
)
from sokhoe.prescribing.national.mapping import (
    DispensingSources,
    PrescriptionSources,
    dispensing_payload,
    doctor_certificate,
    facility_code,
    prescription_payload,
)
from sokhoe.store.ports import StoreSession
from sokhoe.store.sql.prescribing_schema import prescription_outbox

log = logging.getLogger(__name__)

PRESCRIPTION = "prescription"
DISPENSING = "dispensing"
PENDING, DELIVERED, REFUSED = "pending", "delivered", "refused"
TASK_SYSTEM = NATIONAL_RX_TASKS
"""``Task.code`` system of the outbox's work items (a refusal by the national system)."""
DUPLICATE_MARKERS = ("already exists",)
"""Words of the national system's refusal of a code it already has (the mock's 400 message:
"The prescription already exists, please choose another code..."; the real wording is
unconfirmed): such an answer to a re-send means the first send arrived."""

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Message:
    """One row to send: what, for which facility and record, and the JSON."""

    kind: str
    code: str
    facility: str
    focus: str
    payload: dict[str, Any]
    patient_id: str | None = None
    practitioner: str | None = None
    invoice: str | None = None

    @property
    def key(self) -> str:
        code = self.code.upper()
        if self.invoice is None:
            return f"{code}:{self.kind}"
        return f"{code}:{self.kind}:{self.facility}:{self.invoice}"


def prescription_message(src: PrescriptionSources, patient_id: str) -> Message:
    """The outbox row of one issued prescription."""
    payload = prescription_payload(src)
    facility = facility_code(src.organization)
    certificate = doctor_certificate(src.practitioner)
    if facility is None or certificate is None:
        raise ValueError("a prescription is sent for a coded facility and a certified doctor")
    code = str(src.requests[0]["groupIdentifier"]["value"])
    focus = f"MedicationRequest/{src.requests[0]['id']}"
    return Message(PRESCRIPTION, code, facility, focus, payload, patient_id, certificate)


def dispensing_message(
    src: DispensingSources, facility: str, focus: str, patient_id: str | None
) -> Message:
    """The outbox row of one sale; ``facility`` sees a refusal (the dispensing pharmacy's
    code), ``focus`` is the MedicationRequest the Task points at."""
    payload = dispensing_payload(src)
    return Message(DISPENSING, src.code, facility, focus, payload, patient_id, invoice=src.invoice)


def enqueue(tx: StoreSession, message: Message, now: datetime) -> None:
    """Add ``message`` to the outbox in the door's transaction ``tx`` of the write it reports
    (an already queued key is left as it is). ``tx`` is an operation session of the door
    (``repo.operation("prescribe", ...)``): only operations write the side tables."""
    values = {
        "key": message.key,
        "kind": message.kind,
        "code": message.code,
        "facility": message.facility,
        "practitioner": message.practitioner,
        "patient_id": message.patient_id,
        "focus": message.focus,
        "payload": message.payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt": now,
        "created": now,
    }

    def work(conn: Connection) -> None:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(prescription_outbox)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[prescription_outbox.c.key])
        )

    tx.side_tables(work)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempt n waits ``base * 2**(n-1)`` seconds (capped), times a random 50-100 % so rows
    that failed together (the national system was down) do not all come back together."""

    base_seconds: float = 30.0
    max_seconds: float = 3600.0

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        full = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return timedelta(seconds=full * (0.5 + 0.5 * rng.random()))


@dataclass
class Report:
    """What one round did."""

    claimed: int = 0
    delivered: int = 0
    duplicates: int = 0
    retried: int = 0
    refused: int = 0
    tasks: list[str] = field(default_factory=list)


class LostClaim(RuntimeError):
    """The row was taken over by another worker (this one held it past its lease)."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Deliverer:
    """Claims due outbox rows and sends them (see the module docstring)."""

    def __init__(
        self,
        repo: GuardedRepository,
        engine: Engine,
        client: NationalClient,
        *,
        backoff: Backoff | None = None,
        lease: timedelta = timedelta(minutes=2),
        clock: Clock | None = None,
        rng: random.Random | None = None,
        worker: str | None = None,
        batch: int = 50,
    ) -> None:
        self.repo = repo
        self.engine = engine
        self.client = client
        self.backoff = backoff or Backoff()
        self.lease = lease
        self.clock = clock or repo.clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self.worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.batch = batch

    # -- one round -----------------------------------------------------------------------
    def run_once(self) -> Report:
        report = Report()
        rows = self.claim()
        report.claimed = len(rows)
        for row in rows:
            self._deliver(row, report)
        return report

    def claim(self) -> list[Any]:
        """Take up to ``batch`` due rows for this worker's lease."""
        now = self.clock()
        due = and_(
            prescription_outbox.c.status == PENDING,
            prescription_outbox.c.next_attempt <= now,
            or_(
                prescription_outbox.c.claimed_until.is_(None),
                prescription_outbox.c.claimed_until < now,
            ),
        )
        claim = {"claimed_by": self.worker, "claimed_until": now + self.lease}
        pick = (
            select(prescription_outbox.c.id)
            .where(due)
            .order_by(prescription_outbox.c.next_attempt, prescription_outbox.c.id)
            .limit(self.batch)
        )
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                ids = list(conn.execute(pick.with_for_update(skip_locked=True)).scalars())
                if ids:
                    conn.execute(
                        update(prescription_outbox)
                        .where(prescription_outbox.c.id.in_(ids))
                        .values(**claim)
                    )
            else:  # SQLite: one writer at a time; a row another worker took fails its check
                ids = []
                for rid in conn.execute(pick).scalars():
                    taken = conn.execute(
                        update(prescription_outbox)
                        .where(prescription_outbox.c.id == rid, due)
                        .values(**claim)
                    )
                    if taken.rowcount == 1:
                        ids.append(rid)
            if not ids:
                return []
            return list(
                conn.execute(
                    select(prescription_outbox)
                    .where(prescription_outbox.c.id.in_(ids))
                    .order_by(prescription_outbox.c.id)
                )
            )

    def _deliver(self, row: Any, report: Report) -> None:
        try:
            self._send(row)
        except Refused as refused:
            if isinstance(refused, SignInRefused):
                self._retry(row, f"sign-in refused: {refused}", report)
            elif _duplicate(refused):
                self._finish(row, f"already there: {refused.message}")
                report.delivered += 1
                report.duplicates += 1
            else:
                try:
                    report.tasks.append(self._refuse(row, refused))
                    report.refused += 1
                except LostClaim:
                    log.warning("outbox row %s was taken over by another worker", row.id)
                except NotConfigured as missing:  # no Organization to own the Task yet
                    self._retry(row, f"refused ({refused}); no work item: {missing}", report)
        except (Transient, NotConfigured) as failure:
            self._retry(row, str(failure), report)
        except NationalError as failure:  # pragma: no cover - every kind is handled above
            self._retry(row, str(failure), report)
        else:
            self._finish(row, None)
            report.delivered += 1

    def _send(self, row: Any) -> Any:
        if row.kind == PRESCRIPTION:
            return self.client.send_prescription(
                dict(row.payload), row.facility, str(row.practitioner)
            )
        return self.client.report_dispensing(dict(row.payload))

    # -- marking -------------------------------------------------------------------------
    def _mine(self, row: Any) -> Any:
        return and_(
            prescription_outbox.c.id == row.id,
            prescription_outbox.c.status == PENDING,
            prescription_outbox.c.claimed_by == self.worker,
        )

    def _finish(self, row: Any, note: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(prescription_outbox)
                .where(self._mine(row))
                .values(
                    status=DELIVERED,
                    finished=self.clock(),
                    attempts=row.attempts + 1,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=note,
                )
            )

    def _retry(self, row: Any, error: str, report: Report) -> None:
        attempts = int(row.attempts) + 1
        wait = self.backoff.delay(attempts, self.rng)
        log.warning(
            "national prescription system: %s %s, retry in %s: %s", row.kind, row.code, wait, error
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(prescription_outbox)
                .where(self._mine(row))
                .values(
                    attempts=attempts,
                    next_attempt=self.clock() + wait,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error[:2000],
                )
            )
        report.retried += 1

    def _refuse(self, row: Any, refused: Refused) -> str:
        """Mark the row refused and write the facility's Task, in one transaction."""
        now = self.clock()
        task = refusal_task(row, refused, now)
        facility_system = system_principal(
            "sokhoe-national-rx", "National prescription outbox", PLATFORM_SCOPES, row.facility
        )
        door = self.repo.for_caller(facility_system)
        patients = [row.patient_id] if row.patient_id else []
        mine = self._mine(row)

        def mark(conn: Connection) -> None:
            done = conn.execute(
                update(prescription_outbox)
                .where(mine)
                .values(
                    status=REFUSED,
                    finished=now,
                    attempts=row.attempts + 1,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=str(refused)[:2000],
                    task_id=task["id"],
                )
            )
            if done.rowcount != 1:
                raise LostClaim(f"outbox row {row.id} was taken over")

        with door.operation(
            "national-rx-refusal",
            resource_type="Task",
            owns=frozenset({"national-rx-task"}),
            concerns=patients,
        ) as tx:
            task["owner"] = {"reference": f"Organization/{_organization_id(tx, door, row)}"}
            door.update(task, "Task", task["id"], tx=tx)
            tx.side_tables(mark)
        return str(task["id"])


def _organization_id(tx: StoreSession, door: GuardedRepository, facility_row: Any) -> str:
    query = door.parse_query(
        "Organization", [("identifier", f"{FACILITY}|{facility_row.facility}")], strict=True
    )
    found = tx.search(query).matches
    if not found:
        raise NotConfigured(f"facility {facility_row.facility} is not in the registry")
    return found[0].id


def refusal_task(row: Any, refused: Refused, now: datetime) -> dict[str, Any]:
    """The work item a refusal leaves for the facility (owner filled in by the caller)."""
    what = "prescription" if row.kind == PRESCRIPTION else "dispensing report"
    words = "Đơn thuốc" if row.kind == PRESCRIPTION else "Báo cáo bán thuốc"
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": new_id(),
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {
            "coding": [
                {
                    "system": TASK_SYSTEM,
                    "code": f"{row.kind}-refused",
                    "display": f"The national prescription system refused the {what}",
                }
            ]
        },
        "description": (
            f"{words} {row.code} bị hệ thống đơn thuốc quốc gia từ chối: {refused.message}"
        ),
        "focus": {"reference": row.focus},
        "authoredOn": format_instant(now),
        "businessStatus": {"text": f"HTTP {refused.status}"},
        "input": [
            {"type": {"text": "refusal"}, "valueString": refused.message},
            {"type": {"text": "prescription-code"}, "valueString": row.code},
        ],
    }
    if row.patient_id:
        task["for"] = {"reference": f"Patient/{row.patient_id}"}
    return task


def _duplicate(refused: Refused) -> bool:
    text = refused.message.lower()
    return refused.status == 400 and any(marker in text for marker in DUPLICATE_MARKERS)


def pending(engine: Engine) -> list[Any]:
    """Rows not yet delivered or refused, oldest first (for the CLI and tests)."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(prescription_outbox)
                .where(prescription_outbox.c.status == PENDING)
                .order_by(prescription_outbox.c.id)
            )
        )


def rows(engine: Engine, codes: Sequence[str] | None = None) -> list[Any]:
    """Every row (of these codes, matched without regard to case), oldest first."""
    statement = select(prescription_outbox).order_by(prescription_outbox.c.id)
    if codes is not None:
        wanted = [c.upper() for c in codes]
        statement = statement.where(func.upper(prescription_outbox.c.code).in_(wanted))
    with engine.connect() as conn:
        return list(conn.execute(statement))


class PeriodicDelivery:
    """Runs :meth:`Deliverer.run_once` every ``seconds`` in a thread of the server process
    (safe with several processes: the claims keep each row to one sender)."""

    def __init__(self, deliverer: Deliverer, seconds: float) -> None:
        self.deliverer = deliverer
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="national-rx", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliverer.run_once()
            except Exception:
                log.exception("national prescription delivery round failed")
            self._stop.wait(self.seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.deliverer.client.close()


__all__ = [
    "DISPENSING",
    "PRESCRIPTION",
    "TASK_SYSTEM",
    "Backoff",
    "Deliverer",
    "Message",
    "PeriodicDelivery",
    "Report",
    "dispensing_message",
    "enqueue",
    "pending",
    "prescription_message",
    "refusal_task",
    "rows",
]
