"""Proof that the patient is at the desk: a one-time code sent to the phone on their record.

A check-in by a number alone registers the visit but does not open the history written at
other facilities (``operations/check_in.py``). The desk asks ``$presence-code``: the platform
texts a six-digit code to the mobile number on the patient's record — a number the desk never
sees (the answer masks it) and the person presenting the card may not know unless they are
the patient. The patient reads the code out; ``$confirm-presence`` checks it and opens the
record to the facility for :data:`~sokhoe.access.care.WINDOW`, as a proven relationship. Codes
are kept hashed, expire after five minutes, die after five wrong guesses, are rate-limited per
patient and facility, and are not sign-in codes: one can never be used for the other.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from sokhoe.access.care import WINDOW, grant
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import code_matches, new_code, normalise_phone
from sokhoe.access.ratelimit import hit
from sokhoe.access.sms import SmsGateway
from sokhoe.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from sokhoe.fhir.resources import format_instant
from sokhoe.messages import Message
from sokhoe.store.sql.access_schema import auth_presence

CODE_LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5
LIMIT = (3, timedelta(minutes=15))
"""Codes one facility may send one patient per quarter of an hour."""
MESSAGE = (
    "Mã xác nhận sokhoe: {code}. Chỉ đọc mã này cho nhân viên cơ sở {facility} nơi bạn đang "
    "khám; mã mở hồ sơ sức khỏe của bạn cho cơ sở đó (hết hạn sau 5 phút)."
)


def _mask(phone: str) -> str:
    return f"{phone[:2]}xx xxx {phone[-3:]}"


def _facility(repo: GuardedRepository) -> str:
    facility = repo.principal.facility
    if facility is None or repo.principal.kind == "citizen":
        raise Forbidden(
            Message("Presence is confirmed for a facility; sign in as its staff or system")
        )
    return facility


def _require_checked_in(repo: GuardedRepository, patient_id: str) -> None:
    """Only a facility that registered the visit (a check-in) asks for the code."""
    with repo.snapshot() as tx:
        if tx.read("Patient", patient_id) is None:
            raise NotFound(Message("%(ref)s is not known", ref=f"Patient/{patient_id}"))
        found = repo.standing(tx, patient_id)
    if found is None:
        raise Forbidden(
            Message("Check Patient/%(id)s in at your facility first ($check-in)", id=patient_id)
        )


def _mobile(patient: dict[str, Any]) -> str | None:
    for telecom in patient.get("telecom", []):
        if telecom.get("system") != "phone" or "end" in (telecom.get("period") or {}):
            continue
        try:
            return normalise_phone(str(telecom.get("value", "")))
        except ValueError:
            continue
    return None


def send_presence_code(repo: GuardedRepository, sms: SmsGateway, patient_id: str) -> dict[str, Any]:
    """Text a code to the phone on the record; answers where it went (masked) and until when."""
    facility = _facility(repo)
    _require_checked_in(repo, patient_id)
    with repo.snapshot() as tx:
        patient = tx.read("Patient", patient_id)
    phone = _mobile((patient.content if patient else None) or {})
    if phone is None:
        raise Conflict(
            Message(
                "The record holds no mobile number to send a code to; ask the patient for a "
                "share code from their health book, or break the glass in an emergency"
            )
        )
    engine = access_engine_of(repo)
    now = repo.clock()
    hit(engine, f"presence:{patient_id}:{facility}", LIMIT[0], LIMIT[1], now=now)
    code, stored = new_code()
    challenge = secrets.token_urlsafe(16)
    with engine.begin() as conn:
        conn.execute(
            update(auth_presence)
            .where(
                auth_presence.c.patient_id == patient_id,
                auth_presence.c.facility == facility,
                auth_presence.c.used.is_(False),
            )
            .values(used=True)
        )
        conn.execute(
            auth_presence.insert().values(
                id=challenge,
                patient_id=patient_id,
                facility=facility,
                code_hash=stored,
                expires=now + CODE_LIFETIME,
                attempts=0,
                used=False,
                created=now,
            )
        )
    sms.send(phone, MESSAGE.format(code=code, facility=facility))
    repo.record_access("operation", [patient_id], ["Patient/$presence-code"])
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "sentTo", "valueString": _mask(phone)},
            {"name": "expires", "valueInstant": format_instant(now + CODE_LIFETIME)},
        ],
    }


def access_engine_of(repo: GuardedRepository) -> Engine:
    """The database of the access tables (where presence codes are kept)."""
    return repo.auditor.engine


def _check(conn: Connection, patient_id: str, facility: str, code: str, now: Any) -> str | None:
    """The challenge id of the live code if ``code`` matches it; counts a wrong guess."""
    row = conn.execute(
        select(auth_presence)
        .where(
            auth_presence.c.patient_id == patient_id,
            auth_presence.c.facility == facility,
            auth_presence.c.used.is_(False),
        )
        .order_by(auth_presence.c.created.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if row is None:
        raise Unauthorized(Message("No code is pending for this patient; send a new code"))
    expires = row.expires if row.expires.tzinfo else row.expires.replace(tzinfo=now.tzinfo)
    if row.attempts >= MAX_ATTEMPTS or expires <= now:
        raise Unauthorized(
            Message("The code has expired or was guessed too often; send a new code")
        )
    if code_matches(str(row.code_hash), code):
        conn.execute(update(auth_presence).where(auth_presence.c.id == row.id).values(used=True))
        return str(row.id)
    conn.execute(
        update(auth_presence)
        .where(auth_presence.c.id == row.id)
        .values(attempts=auth_presence.c.attempts + 1)
    )
    return None


def confirm_presence(repo: GuardedRepository, patient_id: str, code: str) -> dict[str, Any]:
    """Open the record to the caller's facility if ``code`` is the one the patient got."""
    facility = _facility(repo)
    if not code.strip().isdigit():
        raise InvalidRequest(Message("The code is the six digits the patient received"), "code")
    _require_checked_in(repo, patient_id)
    engine = access_engine_of(repo)
    now = repo.clock()
    with engine.begin() as conn:
        matched = _check(conn, patient_id, facility, code, now)
    if matched is None:
        repo.record_refusal("operation", [patient_id], "wrong presence code")
        raise Unauthorized(
            Message("Wrong code; ask the patient to read it again, or send a new one")
        )
    with repo.operation("confirm-presence", patients=[]) as tx:
        grant(tx, patient_id, f"facility:{facility}", "presence", now, until=now + WINDOW)
        tx.audit("operation", "success", [patient_id], entities=["Patient/$confirm-presence"])
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{patient_id}"}},
            {"name": "until", "valueInstant": format_instant(now + WINDOW)},
        ],
    }
