"""Claiming one's record (*nhận hồ sơ*): a signed-in phone is linked to the person it belongs to.

A resident whose phone is not linked yet gives their 12-digit ID number (CCCD) and birth date;
the phone is the one they signed in with (the SMS code proved it), never one they type. The
phone is linked to a record only when exactly one living record holds that CCCD, that birth
date and that phone: all three, because a CCCD is not a secret (it is printed on papers
people hand over every day) and a birth date is little better. Someone who knows a
neighbour's CCCD and birth date still lacks the neighbour's phone in the neighbour's record.

Otherwise the portal makes the resident a new record, marked self-declared and unconfirmed
(``portal/patient.py``), and the patient index compares it with everyone (its CCCD counted as
a CCCD): probable and even certain matches go to the review queue as ``Task``s for a person to
decide (``Task/$resolve-review``), never merged on the citizen's word alone. The answer is the
same whether the CCCD is unknown or held by a record with another phone: the page says nothing
about other people's records, not even that one exists. Such an attempt is recorded in that
record's audit trail, so its owner sees it among the accesses to their record.

Attempts are counted per phone and per client address (``access/ratelimit.py``): a few a day
let a resident fix a typo, and make guessing numbers useless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Connection, Engine

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import link_if_unlinked, linked_patient, normalise_phone
from sokhoe.access.ratelimit import hit
from sokhoe.errors import Conflict, Forbidden
from sokhoe.fhir.patient_links import people_holding
from sokhoe.fhir.resources import new_id
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import CCCD, cccd_sex_and_year, validate_cccd
from sokhoe.mpi.links import queue_review
from sokhoe.mpi.matching import CERTAIN, PROBABLE, Matcher
from sokhoe.mpi.normalise import patient_phones
from sokhoe.portal.patient import as_matched, self_declared_patient
from sokhoe.store.ports import StoredResource, StoreSession

PHONE_LIMIT: Final = (6, timedelta(days=1))
"""Claim attempts per phone a day: a lookup and the new record's form, with typos to spare."""
ADDRESS_LIMIT: Final = (30, timedelta(hours=1))
"""Per client address (a family or a ward's help desk shares one)."""
REVIEW_LIMIT: Final = 3
OPERATION: Final = "claim"
_NAME_MAX: Final = 100


@dataclass(frozen=True)
class ClaimForm:
    """What the resident typed."""

    cccd: str
    day: str
    month: str
    year: str
    name: str = ""
    sex: str = ""


@dataclass(frozen=True)
class ClaimResult:
    outcome: Literal["linked", "details", "created"]
    """``linked`` to their record; ``details`` needed to make a new one; ``created``."""
    patient_id: str | None = None
    cccd: str = ""
    born: date | None = None
    sex: str = ""
    """The sex the CCCD's fourth digit says (to preselect on the new record's form)."""


class ClaimProblems(ValueError):
    """The form has mistakes: (field, message) pairs, nothing counted or written."""

    def __init__(self, problems: list[tuple[str, Message]]) -> None:
        super().__init__("; ".join(str(m) for _, m in problems))
        self.problems = problems


def check(form: ClaimForm, today: date, *, details: bool) -> tuple[str, date]:
    """The normalised CCCD and birth date, or :class:`ClaimProblems`."""
    problems: list[tuple[str, Message]] = []
    cccd = ""
    try:
        cccd = validate_cccd(form.cccd)
    except ValueError:
        problems.append(("cccd", Message("Enter the 12 digits of your ID number (CCCD)")))
    born: date | None = None
    try:
        born = date(int(form.year), int(form.month), int(form.day))
    except ValueError:
        problems.append(("birth-day", Message("Enter your date of birth, for example 15 3 1985")))
    else:
        if born > today or born.year < 1900:
            problems.append(("birth-day", Message("The date of birth must be in the past")))
    if cccd and born and not problems and cccd_sex_and_year(cccd)[1] != born.year:
        problems.append(
            ("birth-day", Message("The year of birth does not match the ID number; check both"))
        )
    if details:
        name = " ".join(form.name.split())
        if len(name) < 2 or len(name) > _NAME_MAX or any(ch.isdigit() for ch in name):
            problems.append(("name", Message("Enter your full name as on your ID card")))
        if form.sex not in ("", "male", "female"):
            problems.append(("sex-male", Message("Select your sex")))
    if problems:
        raise ClaimProblems(problems)
    assert born is not None  # noqa: S101 - no problem means a date was read
    return cccd, born


def _holders(repo: GuardedRepository, tx: StoreSession, cccd: str) -> dict[str, StoredResource]:
    """The living records holding the (checked) CCCD."""
    people = people_holding(repo, tx, CCCD, cccd)
    return {
        pid: p
        for pid, p in people.items()
        if (p.content or {}).get("active") is not False
        and "deceasedDateTime" not in (p.content or {})
        and (p.content or {}).get("deceasedBoolean") is not True
    }


def _current_phones(patient: dict[str, Any]) -> list[str]:
    """The record's phone numbers still in use: one whose use ended (``period.end``) may by
    now belong to someone else (carriers give numbers out again)."""
    current = [t for t in patient.get("telecom") or [] if "end" not in (t.get("period") or {})]
    return patient_phones({"telecom": current})


def _matches(person: StoredResource, born: date, phone: str) -> bool:
    content = person.content or {}
    return content.get("birthDate") == born.isoformat() and phone in _current_phones(content)


def _link(tx: StoreSession, phone: str, patient_id: str) -> None:
    """Link the phone in this transaction, only if still unlinked (a second tab or a race
    finds it linked and changes nothing)."""

    def work(conn: Connection) -> bool:
        return link_if_unlinked(conn, phone, patient_id)

    if not tx.side_tables(work):
        raise Conflict(Message("Your phone is already linked to a health record"))


def claim(
    repo: GuardedRepository,
    engine: Engine,
    form: ClaimForm,
    *,
    address: str,
    today: date,
    index: GuardedRepository,
    matcher: Matcher,
    ward: str | None = None,
) -> ClaimResult:
    """Link the signed-in citizen's phone to their record, or (with a name and sex) make
    them a new self-declared one; see the module docstring.

    ``repo`` is the citizen's door (the writes are its ``$claim`` operation); ``index`` the
    platform's, with which the patient index queues what it is unsure of; ``ward`` the code
    of the ward whose poster the resident scanned (their new record's address)."""
    who = repo.principal
    if who.kind != "citizen":
        raise Forbidden(Message("Only a citizen claims their own record"))
    try:
        phone = normalise_phone(who.subject)
    except ValueError as exc:  # signed in with VNeID: the provider already named the record
        raise Forbidden(Message("Sign in with your mobile number to find your record")) from exc
    if linked_patient(engine, phone) is not None:
        raise Conflict(Message("Your phone is already linked to a health record"))
    details = bool(form.name or form.sex)
    cccd, born = check(form, today, details=details)
    hit(engine, f"claim:phone:{phone}", *PHONE_LIMIT)
    hit(engine, f"claim:addr:{address}", *ADDRESS_LIMIT)
    with repo.snapshot() as tx:
        holders = _holders(repo, tx, cccd)
    found = [pid for pid, p in holders.items() if _matches(p, born, phone)]
    if len(found) == 1:
        return _claim_found(repo, phone, found[0], cccd, born)
    sex = cccd_sex_and_year(cccd)[0]
    if not details:
        for pid in holders:  # told in that record's audit trail, never to this caller
            repo.record_refusal(
                "operation", [pid], "$claim: CCCD given with another birth date or phone"
            )
        return ClaimResult("details", cccd=cccd, born=born, sex=sex)
    return _create(repo, phone, form, cccd, born, index, matcher, ward)


def _claim_found(
    repo: GuardedRepository, phone: str, pid: str, cccd: str, born: date
) -> ClaimResult:
    with repo.operation(OPERATION, concerns=[pid], reason="$claim") as tx:
        holders = _holders(repo, tx, cccd)  # decide again on what is committed now
        if pid not in holders or not _matches(holders[pid], born, phone):
            raise Conflict(Message("Your record changed meanwhile; try again"))
        _link(tx, phone, pid)
        tx.audit(
            "operation",
            "success",
            [pid],
            entities=[f"Patient/{pid}"],
            reason="$claim: CCCD, birth date and the signed-in phone match the record",
        )
    return ClaimResult("linked", pid)


def _create(
    repo: GuardedRepository,
    phone: str,
    form: ClaimForm,
    cccd: str,
    born: date,
    index: GuardedRepository,
    matcher: Matcher,
    ward: str | None,
) -> ClaimResult:
    pid = new_id()
    patient = self_declared_patient(
        pid,
        cccd=cccd,
        name=" ".join(form.name.split()),
        sex=form.sex or cccd_sex_and_year(cccd)[0],  # the card's fourth digit says it
        born=born,
        phone=phone,
        ward=ward,
    )
    with repo.operation(OPERATION, reason="$claim") as tx:
        if tx.read("Patient", pid) is not None:  # pragma: no cover - a fresh UUID
            raise Conflict(Message("Try again"))
        stored = repo.update(patient, "Patient", pid, tx=tx).resource
        _link(tx, phone, pid)
        tx.audit(
            "operation",
            "success",
            [pid],
            entities=[f"Patient/{pid}"],
            reason="$claim: a new self-declared record (unconfirmed) for the signed-in phone",
        )
    compared = as_matched(stored.content or patient)
    unsure = [c for c in matcher.candidates(compared) if c.grade in (CERTAIN, PROBABLE)]
    for c in unsure[:REVIEW_LIMIT]:  # a person decides: never merged on the citizen's word
        queue_review(index, pid, c.id, c.probability, c.grade)
    return ClaimResult("created", pid, cccd=cccd, born=born, sex=str(patient["gender"]))


__all__ = [
    "ADDRESS_LIMIT",
    "PHONE_LIMIT",
    "ClaimForm",
    "ClaimProblems",
    "ClaimResult",
    "check",
    "claim",
]
