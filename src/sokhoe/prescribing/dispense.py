"""Dispensing against a prescription code: all of it or part, once, whatever the race.

Circular 26/2025/TT-BYT: a prescription is filled within 5 days of issue, never beyond what was
prescribed, and the pharmacy reports what it sold against the code. ``$dispense`` is one
transaction that

1. reads the prescription's lines by the code (``access/prescription_code.py``) inside the
   write transaction, each at the version it is;
2. answers a retry: the same invoice number from the same pharmacy gives back the dispenses it
   recorded the first time, and writes nothing (an invoice reused for other lines is refused);
3. refuses a cancelled, expired or completed prescription, a line that is not one of the
   code's, a substitution the prescriber did not allow, and any quantity beyond what remains
   of a line — each with a message that says what remains;
4. writes one ``MedicationDispense`` per line handed over (``completed``, the pharmacist and
   the pharmacy as performers, the invoice as identifier, lot and expiry, the substitution and
   its reason) and a new version of *every* line, each replacing the version read in step 1
   (``If-Match``), with the dispensed quantity and the recomputed state
   (``dispensing_state.py``);
5. queues the sale for the national prescription system in the same transaction
   (``national/outbox.py``: sent if and only if it was recorded, once per pharmacy and invoice).

Nothing is dispensed twice, and that rests on the versions, not on timing: every line's new
version names the version read (the store updates ``WHERE version_id = <read>``, waiting for a
concurrent writer to commit), so of two dispenses that read the same versions only the first to
commit writes anything; the other fails whole and is told to look the prescription up again.
In practice the second one usually reads the first one's result instead: a SQLite write
transaction holds the write lock from its first statement (``BEGIN IMMEDIATE``), and on
PostgreSQL the operation's first audit row takes the audit chain's lock, both before the lines
are read — the loser is then refused as "already dispensed". ``test_dispense_race.py`` holds
both paths. Only this operation writes a ``MedicationDispense`` (``access/writes.py``, kind
``dispensing``).
See: https://hl7.org/fhir/R4/medicationdispense.html
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.prescription_code import PRESENTER_ROLES, authorise, present
from sokhoe.access.signed import STATE
from sokhoe.errors import Conflict, FhirError, InvalidRequest, Issue, NotFound, PreconditionFailed
from sokhoe.fhir.references import reference_id
from sokhoe.fhir.resources import format_instant
from sokhoe.messages import Message, Text
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.prescribing.code import kind_of, normalise
from sokhoe.prescribing.context import catalogue_index, medicine
from sokhoe.prescribing.dispensing_state import (
    Line,
    State,
    dispensings,
    line_of,
    plain,
    recorded,
    state_of,
)
from sokhoe.prescribing.lookup import NO_SUCH_CODE, caller_pharmacy
from sokhoe.prescribing.national.mapping import DispensingSources
from sokhoe.prescribing.national.outbox import dispensing_message, enqueue
from sokhoe.prescribing.pharmacy import PHARMACY_CODE, Pharmacy
from sokhoe.store.ports import StoreSession

INVOICE_SYSTEM: Final = "https://fhir.sokhoe.vn/sid/hoa-don-ban-thuoc"
"""A pharmacy's sales invoice numbers: ``<this>/<the pharmacy's facility code>``."""
BATCH: Final = "https://fhir.sokhoe.vn/StructureDefinition/dispensed-batch"
"""The lot (``lotNumber``) and expiry (``expirationDate``) of what was handed over."""
SUBSTITUTION_TYPES: Final = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
PERFORMER_FUNCTION: Final = (
    "http://terminology.hl7.org/CodeSystem/medicationdispense-performer-function"
)
OWNS: Final = frozenset({"dispensing", "prescription", STATE})
"""Dispenses, and moving the lines' state on (a signed line's signed elements stay frozen)."""
_MAX_INVOICE: Final = 64


class NotDispensable(FhirError):
    """409: the prescription cannot be dispensed as asked (every reason listed)."""

    def __init__(self, *problems: Text) -> None:
        super().__init__(409, [Issue.of("business-rule", p) for p in problems])


@dataclass(frozen=True)
class Substitution:
    """Another medicine (or another brand) handed over instead, and why."""

    reason: str
    type: str = "E"
    """v3 substanceAdminSubstitution: E equivalent, G generic, TE therapeutic alternative…"""
    medication: dict[str, Any] | None = None
    """What was given instead (a catalogue medicine), or None for the same medicine."""


@dataclass(frozen=True)
class Handed:
    """One line handed over: which prescription line, how much, which batch."""

    index: int
    request_id: str
    quantity: Decimal
    unit: str | None = None
    lot: str | None = None
    expiry: date | None = None
    substitution: Substitution | None = None


@dataclass(frozen=True)
class Dispensed:
    dispenses: list[dict[str, Any]]
    state: State
    replayed: bool
    """True when the invoice was already recorded: nothing was written this time."""


def _invoice(value: str) -> str:
    text = value.strip()
    if not text or len(text) > _MAX_INVOICE:
        raise InvalidRequest(
            Message(
                "The invoice number (1 to %(most)s characters) makes a retry safe",
                most=str(_MAX_INVOICE),
            ),
            "invoice",
        )
    return text


def _checked(handed: list[Handed]) -> None:
    if not handed:
        raise InvalidRequest(Message("Say what was handed over: at least one line"), "line")
    twice = [rid for rid, n in Counter(h.request_id for h in handed).items() if n > 1]
    if twice:
        raise InvalidRequest(f"MedicationRequest/{twice[0]} is named on two lines", "line")
    for h in handed:
        if h.quantity <= 0:
            raise InvalidRequest(
                Message("line[%(n)s]: the quantity must be more than 0", n=str(h.index)), "line"
            )


def _name(line: Line) -> str:
    concept = line.request.get("medicationCodeableConcept") or {}
    return str(concept.get("text") or line.reference)


def _count(value: Decimal, unit: str) -> str:
    return f"{plain(value)} {unit}".strip()


def _problems(
    code: str, lines: dict[str, Line], handed: list[Handed], now: datetime
) -> list[Message]:
    state = state_of(list(lines.values()), now)
    if state == "cancelled":
        return [
            Message(
                "Prescription %(code)s was cancelled: nothing may be dispensed against it",
                code=code,
            )
        ]
    if state == "completed":
        return [
            Message(
                "Prescription %(code)s was already dispensed in full: nothing remains", code=code
            )
        ]
    if state == "expired":
        end = next(iter(lines.values())).request["dispenseRequest"]["validityPeriod"]["end"]
        return [
            Message(
                "Prescription %(code)s expired at %(end)s: a prescription is filled within 5 "
                "days of issue (Circular 26/2025/TT-BYT)",
                code=code,
                end=str(end),
            )
        ]
    out = []
    for h in handed:
        n = str(h.index)
        line = lines.get(h.request_id)
        if line is None:
            out.append(
                Message(
                    "line[%(n)s]: MedicationRequest/%(id)s is not a line of prescription %(code)s",
                    n=n,
                    id=h.request_id,
                    code=code,
                )
            )
            continue
        if h.unit and line.unit and h.unit.casefold() != line.unit.casefold():
            out.append(
                Message(
                    "line[%(n)s]: %(name)s is counted in '%(unit)s'",
                    n=n,
                    name=_name(line),
                    unit=line.unit,
                )
            )
        if h.quantity > line.remaining:
            out.append(
                Message(
                    "line[%(n)s]: %(asked)s of %(name)s is more than remains (%(left)s: "
                    "%(given)s of %(prescribed)s already dispensed)",
                    n=n,
                    asked=_count(h.quantity, line.unit),
                    name=_name(line),
                    left=_count(line.remaining, line.unit),
                    given=_count(line.dispensed, line.unit),
                    prescribed=_count(line.prescribed, line.unit),
                )
            )
        allowed = (line.request.get("substitution") or {}).get("allowedBoolean", True)
        if h.substitution is not None and allowed is False:
            out.append(
                Message(
                    "line[%(n)s]: the prescriber did not allow substituting %(name)s",
                    n=n,
                    name=_name(line),
                )
            )
    return out


def _unlicensed(code: str, pharmacy: Pharmacy) -> Message:
    """The wrong-type refusal: a controlled-medicine prescription at an unlicensed pharmacy."""
    return Message(
        "Prescription %(code)s is of type %(kind)s (controlled medicines): %(name)s is not "
        "licensed to dispense it",
        code=code,
        kind=kind_of(code),
        name=pharmacy.name,
    )


def _dispense(
    line: Line, h: Handed, pharmacy: Pharmacy, invoice: str, now: datetime
) -> dict[str, Any]:
    given = line.request.get("medicationCodeableConcept") or {}
    resource: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "identifier": [{"system": f"{INVOICE_SYSTEM}/{pharmacy.facility_code}", "value": invoice}],
        "status": "completed",
        "medicationCodeableConcept": given,
        "subject": line.request["subject"],
        "performer": [
            {
                "function": {"coding": [{"system": PERFORMER_FUNCTION, "code": "finalchecker"}]},
                "actor": pharmacy.pharmacist,
            },
            {"actor": pharmacy.organization},
        ],
        "authorizingPrescription": [{"reference": line.reference}],
        "quantity": {"value": plain(h.quantity), **({"unit": line.unit} if line.unit else {})},
        "whenHandedOver": format_instant(now),
        "substitution": {"wasSubstituted": h.substitution is not None},
    }
    batch = [
        *([{"url": "lotNumber", "valueString": h.lot}] if h.lot else []),
        *([{"url": "expirationDate", "valueDate": h.expiry.isoformat()}] if h.expiry else []),
    ]
    if batch:
        resource["extension"] = [{"url": BATCH, "extension": batch}]
    if h.substitution is not None:
        if h.substitution.medication is not None:
            resource["medicationCodeableConcept"] = h.substitution.medication
        resource["substitution"] = {
            "wasSubstituted": True,
            "type": {"coding": [{"system": SUBSTITUTION_TYPES, "code": h.substitution.type}]},
            "reason": [{"text": h.substitution.reason}],
        }
    return resource


def substitute(repo: GuardedRepository, concept: dict[str, Any], where: str) -> dict[str, Any]:
    """A substituted medicine must be a catalogue entry too; its concept as a dispense names it."""
    found = medicine(catalogue_index(repo), {"medicationCodeableConcept": concept}, where)
    return {
        "coding": [dict(c) for c in (found.medication.get("code") or {}).get("coding", [])],
        "text": found.entry.name,
    }


def _earlier(
    repo: GuardedRepository, tx: StoreSession, pharmacy: Pharmacy, invoice: str
) -> list[dict[str, Any]]:
    query = repo.parse_query(
        "MedicationDispense",
        [("identifier", f"{INVOICE_SYSTEM}/{pharmacy.facility_code}|{invoice}"), ("_count", "200")],
    )
    return [m.content for m in tx.search(query).matches if m.content]


def _same(earlier: list[dict[str, Any]], handed: list[Handed]) -> bool:
    def key(d: dict[str, Any]) -> tuple[str, Decimal]:
        ref = (d.get("authorizingPrescription") or [{}])[0]
        rid = reference_id(ref, "MedicationRequest") or ""
        return rid, Decimal(str((d.get("quantity") or {}).get("value", 0)))

    return sorted(map(key, earlier)) == sorted((h.request_id, h.quantity) for h in handed)


def _replay(
    earlier: list[dict[str, Any]],
    lines: dict[str, Line],
    handed: list[Handed],
    invoice: str,
    now: datetime,
) -> Dispensed:
    if not _same(earlier, handed):
        raise NotDispensable(
            Message(
                "Invoice %(invoice)s of this pharmacy was already recorded for other lines or "
                "quantities; a new sale needs a new invoice number",
                invoice=invoice,
            )
        )
    return Dispensed(earlier, state_of(list(lines.values()), now), replayed=True)


def dispense(
    repo: GuardedRepository,
    *,
    code: str,
    invoice: str,
    handed: list[Handed],
    now: datetime,
) -> Dispensed:
    """Dispense ``handed`` against the prescription ``code`` (see the module docstring)."""
    canonical = normalise(code)
    number = _invoice(invoice)
    _checked(handed)
    authorise(repo, "dispense", "MedicationDispense", "create")
    pharmacy = caller_pharmacy(repo, canonical, "dispense")
    patients: list[str] = []
    try:
        with repo.operation(
            "dispense",
            resource_type="MedicationDispense",
            interactions=["create"],
            roles=PRESENTER_ROLES,
            owns=OWNS,
        ) as tx:
            presented = present(repo, tx, canonical, lines_only=True)
            if presented is None:
                raise NotFound(NO_SUCH_CODE)
            patients.append(presented.patient_id)
            lines = {r.id: line_of(r.content or {}, r.version_id) for r in presented.lines}
            earlier = _earlier(repo, tx, pharmacy, number)
            if earlier:
                return _replay(earlier, lines, handed, number, now)
            problems = _problems(canonical, lines, handed, now)
            if kind_of(canonical) not in pharmacy.kinds:
                problems.insert(0, _unlicensed(canonical, pharmacy))
            if problems:
                raise NotDispensable(*problems)
            written = [
                repo.create(
                    _dispense(lines[h.request_id], h, pharmacy, number, now),
                    "MedicationDispense",
                    tx=tx,
                ).resource.content
                or {}
                for h in handed
            ]
            after = {
                rid: line.dispensed
                + sum((h.quantity for h in handed if h.request_id == rid), Decimal(0))
                for rid, line in lines.items()
            }
            state = _next_state(list(lines.values()), after)
            count = dispensings(list(lines.values())) + 1
            for rid in sorted(lines):  # one order everywhere: two dispensers never deadlock
                line = lines[rid]
                repo.update(
                    recorded(line, after[rid], state, count),
                    "MedicationRequest",
                    rid,
                    if_match=f'W/"{line.version}"',
                    tx=tx,
                )
            _to_national(tx, canonical, number, written, lines, pharmacy, now)
            return Dispensed(written, state, replayed=False)
    except (NotDispensable, NotFound) as refused:
        repo.record_refusal("operation", patients, f"$dispense: {refused}")
        raise
    except (Conflict, PreconditionFailed) as lost:
        replay = _after_race(repo, canonical, pharmacy, number, handed, now)
        if replay is not None:
            return replay
        reason = Message(
            "Another dispense of this prescription was recorded at the same moment; nothing "
            "was written: look the prescription up again"
        )
        repo.record_refusal("operation", patients, f"$dispense: {reason}")
        raise NotDispensable(reason) from lost


def _to_national(
    tx: StoreSession,
    code: str,
    invoice: str,
    written: list[dict[str, Any]],
    lines: dict[str, Line],
    pharmacy: Pharmacy,
    now: datetime,
) -> None:
    """Queue the sale for the national prescription system in this transaction (Circular
    26/2025: a pharmacy reports what it sold against the code right after the sale); a refusal
    becomes a Task of the pharmacy (``national/outbox.py``)."""
    organization = tx.read("Organization", pharmacy.organization_id)
    sources = DispensingSources(
        code,
        invoice,
        written,
        {rid: line.request for rid, line in lines.items()},
        (organization.content if organization else None) or {},
        PHARMACY_CODE if pharmacy.national_code else FACILITY,
    )
    patient = reference_id(written[0].get("subject"), "Patient")
    focus = str(written[0]["authorizingPrescription"][0]["reference"])
    enqueue(tx, dispensing_message(sources, pharmacy.facility_code, focus, patient), now)


def _next_state(lines: list[Line], after: dict[str, Decimal]) -> State:
    if all(after[x.id] >= x.prescribed for x in lines):
        return "completed"
    return "partially-dispensed"


def _after_race(
    repo: GuardedRepository,
    code: str,
    pharmacy: Pharmacy,
    invoice: str,
    handed: list[Handed],
    now: datetime,
) -> Dispensed | None:
    """Another dispense of the same prescription committed first. If it was this very sale (a
    retry racing its original), the caller still gets the original's answer."""
    with repo.snapshot() as tx:
        earlier = _earlier(repo, tx, pharmacy, invoice)
        presented = present(repo, tx, code, lines_only=True) if earlier else None
    if presented is None or not _same(earlier, handed):
        return None
    lines = [line_of(r.content or {}, r.version_id) for r in presented.lines]
    return Dispensed(earlier, state_of(lines, now), replayed=True)


__all__ = [
    "BATCH",
    "INVOICE_SYSTEM",
    "Dispensed",
    "Handed",
    "NotDispensable",
    "Substitution",
    "dispense",
    "substitute",
]
