"""Citizens sign in with their mobile number and a one-time code sent by SMS.

Citizens have no password to forget: the phone they registered is the credential. A code has
6 digits, lives 5 minutes and allows 5 tries, so a guesser's odds per code are 5 in a million;
the rate limits (3 codes per number per 15 minutes, 10 per client address per hour) bound how
many codes a guesser, or someone flooding a victim's phone with SMS, can obtain.

Codes are stored only as salted SHA-256 hashes: a 6-digit code cannot resist an offline guess
whatever the hash, but a database dump then shows no live code at a glance, and the attempt
counter, not the hash, is what protects an online guess. Rows, not process memory, hold codes
and counters so every server process agrees.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, select, update

from sokhoe.access.principal import Principal
from sokhoe.access.ratelimit import hit, insert_ignore, utc
from sokhoe.access.sms import SmsGateway
from sokhoe.errors import Unauthorized
from sokhoe.store.sql.access_schema import auth_citizen, auth_otp

CODE_LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5
PHONE_LIMIT = (3, timedelta(minutes=15))
ADDRESS_LIMIT = (10, timedelta(hours=1))
CITIZEN_SCOPES = frozenset({"patient/*.rs"})
"""Read and search; the policy limits them to the citizen's own Patient and their wards'."""

MESSAGE = "Mã xác thực sokhoe của bạn là {code} (hết hạn sau 5 phút)."
"""The SMS text: "Your sokhoe verification code is … (expires in 5 minutes)"."""

_MOBILE = re.compile(r"0[35789]\d{8}")


def normalise_phone(phone: str) -> str:
    """A Vietnamese mobile number as 10 digits starting with 0 (``0912345678``).

    Accepts ``+84 912 345 678``, ``84912345678``, ``0912.345.678`` and the like; mobile
    numbers begin 03, 05, 07, 08 or 09 since the 2018 renumbering. ValueError otherwise.
    """
    text = phone.strip() if isinstance(phone, str) else ""
    digits = re.sub(r"[\s.\-()]", "", text)
    if digits.startswith("+"):
        if not digits.startswith("+84"):
            raise ValueError(f"{phone!r} is not a Vietnamese mobile number (+84…)")
        digits = digits[1:]
    if digits.startswith("84") and len(digits) in (11, 12):
        digits = digits[2:]
        if not digits.startswith("0"):
            digits = "0" + digits
    if not _MOBILE.fullmatch(digits):
        raise ValueError(
            f"{phone!r} is not a Vietnamese mobile number: expected 10 digits starting "
            "03, 05, 07, 08 or 09 (or +84 followed by 9 digits)"
        )
    return digits


def _hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def new_code() -> tuple[str, str]:
    """A fresh six-digit code and what is stored of it (``salt$sha256``, never the code)."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    salt = secrets.token_hex(16)
    return code, f"{salt}${_hash(code, salt)}"


def code_matches(stored: str, guess: str) -> bool:
    """Whether ``guess`` is the code ``stored`` was made from (constant time)."""
    salt, _, digest = stored.partition("$")
    return hmac.compare_digest(_hash(guess.strip(), salt), digest)


def request_code(
    engine: Engine,
    gateway: SmsGateway,
    phone: str,
    address: str,
    now: datetime | None = None,
) -> str:
    """Send a new code to ``phone``; returns the challenge id.

    ``address`` is the client's IP address (as the web layer trusts it). A new code
    invalidates older unused ones, so only the latest SMS works. ValueError for a number
    that is not a Vietnamese mobile, :class:`TooManyRequests` past a rate limit.
    """
    number = normalise_phone(phone)
    at = utc(now)
    hit(engine, f"otp:addr:{address}", ADDRESS_LIMIT[0], ADDRESS_LIMIT[1], now=at)
    hit(engine, f"otp:phone:{number}", PHONE_LIMIT[0], PHONE_LIMIT[1], now=at)
    code, stored = new_code()
    challenge = secrets.token_urlsafe(16)
    with engine.begin() as conn:
        conn.execute(
            update(auth_otp)
            .where(auth_otp.c.phone == number, auth_otp.c.used.is_(False))
            .values(used=True)
        )
        conn.execute(
            auth_otp.insert().values(
                id=challenge,
                phone=number,
                code_hash=stored,
                expires=at + CODE_LIFETIME,
                attempts=0,
                used=False,
                created=at,
            )
        )
    gateway.send(number, MESSAGE.format(code=code))
    return challenge


def verify_code(
    engine: Engine,
    phone: str,
    code: str,
    now: datetime | None = None,
    challenge: str | None = None,
) -> Principal:
    """The citizen's principal if ``code`` is the live code of ``phone``.

    Checks the latest unused code (or the one ``challenge`` names). Each wrong guess counts;
    after :data:`MAX_ATTEMPTS` the code is dead even for the right digits. The attempt is
    counted under the row lock (PostgreSQL) or writer lock (SQLite), so parallel guesses
    cannot exceed the limit. :class:`Unauthorized` on any failure.
    """
    try:
        number = normalise_phone(phone)
    except ValueError as exc:
        raise Unauthorized(str(exc)) from exc
    at = utc(now)
    guess = code.strip() if isinstance(code, str) else ""
    left = MAX_ATTEMPTS
    with engine.begin() as conn:
        query = select(auth_otp).where(auth_otp.c.phone == number, auth_otp.c.used.is_(False))
        if challenge is not None:
            query = query.where(auth_otp.c.id == challenge)
        row = conn.execute(
            query.order_by(auth_otp.c.created.desc()).limit(1).with_for_update()
        ).first()
        if row is None:
            raise Unauthorized("No code is pending for this number; request a new code")
        if row.attempts >= MAX_ATTEMPTS:
            raise Unauthorized("Too many attempts, request a new code")
        if utc(row.expires) <= at:
            raise Unauthorized("The code has expired; request a new code")
        ok = code_matches(str(row.code_hash), guess)
        if not ok:
            conn.execute(
                update(auth_otp)
                .where(auth_otp.c.id == row.id)
                .values(attempts=auth_otp.c.attempts + 1)
            )
            left = MAX_ATTEMPTS - row.attempts - 1
    # outside the transaction so the counted attempt commits before we raise
    if not ok:
        if left <= 0:
            raise Unauthorized("Wrong code; too many attempts, request a new code")
        raise Unauthorized(f"Wrong code; {left} attempt{'s' if left > 1 else ''} left")
    with engine.begin() as conn:
        conn.execute(update(auth_otp).where(auth_otp.c.id == row.id).values(used=True))
        insert_ignore(conn, auth_citizen, phone=number, created=at, patient_id=None)
        conn.execute(
            update(auth_citizen).where(auth_citizen.c.phone == number).values(last_sign_in=at)
        )
        citizen = conn.execute(
            select(auth_citizen.c.patient_id).where(auth_citizen.c.phone == number)
        ).one()
    return citizen_principal(number, citizen.patient_id)


def citizen_principal(phone: str, patient_id: str | None) -> Principal:
    """The principal of a signed-in citizen; no ``patient_ids`` until linked to a Patient."""
    return Principal(
        kind="citizen",
        subject=phone,
        display=phone,
        scopes=CITIZEN_SCOPES,
        patient_ids=(patient_id,) if patient_id else (),
    )


def link_citizen(
    engine: Engine, phone: str, patient_id: str | None, now: datetime | None = None
) -> None:
    """Attach a citizen account to their Patient (creating the account if needed).

    ``None`` unlinks. Guardianship of children is the policy's business, not this table's.
    """
    number = normalise_phone(phone)
    with engine.begin() as conn:
        insert_ignore(conn, auth_citizen, phone=number, created=utc(now), patient_id=None)
        conn.execute(
            update(auth_citizen).where(auth_citizen.c.phone == number).values(patient_id=patient_id)
        )


def phones_of(engine: Engine, patient_ids: Sequence[str]) -> dict[str, list[str]]:
    """The phones linked to each of these records (a person's own phone, for the portal's
    reminders): records without one are left out."""
    found: dict[str, list[str]] = {}
    if not patient_ids:
        return found
    with engine.begin() as conn:
        rows = conn.execute(
            select(auth_citizen.c.patient_id, auth_citizen.c.phone)
            .where(auth_citizen.c.patient_id.in_(sorted(set(patient_ids))))
            .order_by(auth_citizen.c.phone)
        ).all()
    for row in rows:
        found.setdefault(str(row.patient_id), []).append(str(row.phone))
    return found


def linked_phones(engine: Engine, patient_ids: Sequence[str]) -> list[str]:
    """The phones whose citizen account is linked to one of these Patients (the owner's own
    phone, proven by a one-time code): where a notice about the record goes."""
    if not patient_ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            select(auth_citizen.c.phone)
            .where(auth_citizen.c.patient_id.in_(list(patient_ids)))
            .order_by(auth_citizen.c.phone)
        ).all()
    return [str(r.phone) for r in rows]


def link_if_unlinked(conn: Connection, phone: str, patient_id: str) -> bool:
    """Link ``phone`` to ``patient_id`` in the caller's transaction (a claim's, beside the
    record it writes) unless the phone is linked already; whether it was linked now.

    The phone's account exists (it signed in). Checked and set in one statement, so two
    claims at once cannot both link."""
    done = conn.execute(
        update(auth_citizen)
        .where(auth_citizen.c.phone == normalise_phone(phone), auth_citizen.c.patient_id.is_(None))
        .values(patient_id=patient_id)
    )
    return bool(done.rowcount)


def linked_patient(engine: Engine, phone: str) -> str | None:
    """The Patient id a citizen account is linked to, if any."""
    number = normalise_phone(phone)
    with engine.begin() as conn:
        row = conn.execute(
            select(auth_citizen.c.patient_id).where(auth_citizen.c.phone == number)
        ).first()
    return None if row is None else row.patient_id
