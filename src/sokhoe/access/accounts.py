"""Staff accounts: Argon2 passwords, a TOTP second factor and lock-out after failures.

Staff are the people working at facilities, communes, the health department and the insurer
(issue "Accounts and sign-in"). A successful sign-in yields a :class:`Principal` whose SMART
``user/`` scopes come from the role (:data:`ROLE_SCOPES`). Scopes only say which resource
types and interactions a role may ever use; the policy module additionally restricts every
access by relationship (the patient's current relationship with the facility, the commune of
residence, consent or break-the-glass), so ``user/*.cruds`` never means "every record".

Wrong user and wrong password give the same message and cost one Argon2 hash either way, so
neither the answer nor its timing tells which usernames exist.
See: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html and
https://www.rfc-editor.org/rfc/rfc6238 (TOTP)
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sokhoe.access.passwords import STRONG, dummy_hash
from sokhoe.access.principal import STAFF_ROLES, Principal
from sokhoe.access.ratelimit import local_hhmm, utc
from sokhoe.access.writes import REGISTRY_TYPES
from sokhoe.errors import Unauthorized
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import validate_facility_code
from sokhoe.store.sql.access_schema import auth_user, staff_facility

TOTP_ISSUER = "sokhoe"
MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
TOTP_REQUIRED_ROLES = frozenset({"system-admin", "facility-admin", "registry-admin"})
"""Administrators can create accounts and change who sees what, so one password is not enough."""

FACILITY_ROLES = frozenset({"facility-admin", "doctor", "nurse", "receptionist", "pharmacist"})
"""Roles that act for one facility; the policy's relationship rules need to know which."""

_REGISTRY_READ = frozenset(f"user/{t}.rs" for t in sorted(REGISTRY_TYPES))
"""Every facility role reads the shared registries (its own facility, rooms, catalogues)."""

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "system-admin": frozenset({"user/*.cruds"}),
    "facility-admin": frozenset({"user/*.cruds"}),
    "doctor": frozenset({"user/*.cruds"}),
    "nurse": frozenset({"user/*.cruds"}),
    # the desk: check-in, the queue (its signatures and incoming referrals), taking payments,
    # recording a child's parents and confirming them once the papers are checked
    "receptionist": frozenset(
        {
            "user/Patient.cruds",
            "user/RelatedPerson.crus",
            "user/Encounter.crus",
            "user/Appointment.cruds",
            "user/Coverage.crus",
            "user/ServiceRequest.rs",
            "user/Provenance.rs",
            "user/Invoice.rus",
            "user/PaymentReconciliation.crs",
        }
    )
    | _REGISTRY_READ,
    # a facility's dispensary, or a pharmacy: the prescriptions and the allergies that matter
    # for them (a pharmacy reads one prescription by its code: access/prescription_code.py)
    "pharmacist": frozenset(
        {
            "user/MedicationRequest.rs",
            "user/MedicationDispense.cruds",
            "user/AllergyIntolerance.rs",
            "user/Patient.rs",
        }
    )
    | _REGISTRY_READ,
    "commune-health-worker": frozenset({"user/*.crus"}),
    # analysts see warehouse aggregates only, never an identifiable record
    "analyst": frozenset(),
    "insurance-appraiser": frozenset(
        {"user/Claim.rs", "user/ExplanationOfBenefit.rs", "user/Coverage.rs"}
    ),
    # keeps the shared registries (facilities, places, practitioners, catalogues): no records
    "registry-admin": frozenset(f"user/{t}.cruds" for t in sorted(REGISTRY_TYPES)),
}
"""The widest record access each role may have; the policy narrows it per patient."""

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,99}")
_GENERIC = "Wrong username or password"


def check_password_policy(password: str) -> None:
    """ValueError unless ``password`` has at least 10 characters and is not only digits.

    Length matters more than character classes (NIST SP 800-63B); an all-digit password is
    refused because it is usually a phone number or a date of birth.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password.isdigit():
        raise ValueError("The password must not be only digits")


def create_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    display_name: str,
    facility: str | None = None,
    commune: str | None = None,
    practitioner_id: str | None = None,
    now: datetime | None = None,
    *,
    hasher: PasswordHasher = STRONG,
) -> None:
    """Add a staff account; ValueError says which argument is wrong.

    ``hasher`` is the settings' (``passwords.password_hasher``); the library's full cost
    without it.

    Facility roles need the facility code (*mã CSKCB*) and a commune health worker the
    commune code, since without them the policy could grant nothing useful.
    """
    if not _USERNAME.fullmatch(username):
        raise ValueError(
            "A username has 2 to 100 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit"
        )
    if role not in STAFF_ROLES:
        raise ValueError(f"Unknown role {role!r}; one of: {', '.join(sorted(STAFF_ROLES))}")
    if not display_name.strip():
        raise ValueError("A staff account needs a display name")
    check_password_policy(password)
    code = validate_facility_code(facility) if facility else None
    if role in FACILITY_ROLES and code is None:
        raise ValueError(f"A {role} account needs the facility code it works for")
    commune_code = commune.strip() if commune and commune.strip() else None
    if role == "commune-health-worker" and commune_code is None:
        raise ValueError("A commune-health-worker account needs its commune code")
    try:
        with engine.begin() as conn:
            exists = conn.execute(
                select(auth_user.c.username).where(auth_user.c.username == username)
            ).first()
            if exists is not None:
                raise ValueError(f"The username {username!r} is taken")
            conn.execute(
                insert(auth_user).values(
                    username=username,
                    password_hash=hasher.hash(password),
                    role=role,
                    display_name=display_name.strip(),
                    facility=code,
                    commune=commune_code,
                    practitioner_id=practitioner_id,
                    totp_secret=None,
                    failed_attempts=0,
                    locked_until=None,
                    active=True,
                    created=utc(now),
                )
            )
    except IntegrityError as exc:  # a concurrent create of the same name
        raise ValueError(f"The username {username!r} is taken") from exc


def add_facility(engine: Engine, username: str, facility: str) -> None:
    """Let a facility-role account also work at ``facility`` (same role; idempotent).

    A doctor who holds sessions at a commune station and the district hospital has one
    account and picks, at sign-in, the facility they act for; the door then treats them as
    that facility's staff only, as if they had an account there alone.
    """
    code = validate_facility_code(facility)
    with engine.begin() as conn:
        row = conn.execute(
            select(auth_user.c.role, auth_user.c.facility).where(auth_user.c.username == username)
        ).first()
        if row is None:
            raise ValueError(f"No staff account {username!r}")
        if row.role not in FACILITY_ROLES:
            raise ValueError(f"A {row.role} account does not work for a facility")
        known = conn.execute(
            select(staff_facility.c.facility).where(
                staff_facility.c.username == username, staff_facility.c.facility == code
            )
        ).first()
        if code != row.facility and known is None:
            conn.execute(insert(staff_facility).values(username=username, facility=code))


def facilities_of(engine: Engine, username: str) -> list[str]:
    """The facilities the account works at: its first, then the others in code order."""
    with engine.connect() as conn:
        first = conn.execute(
            select(auth_user.c.facility).where(auth_user.c.username == username)
        ).scalar()
        others = conn.execute(
            select(staff_facility.c.facility)
            .where(staff_facility.c.username == username)
            .order_by(staff_facility.c.facility)
        ).scalars()
        return ([first] if first else []) + [f for f in others if f != first]


def set_password(
    engine: Engine, username: str, password: str, *, hasher: PasswordHasher = STRONG
) -> None:
    """Replace a password (and clear a lock-out); ValueError on policy or unknown user."""
    check_password_policy(password)
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_user)
            .where(auth_user.c.username == username)
            .values(password_hash=hasher.hash(password), failed_attempts=0, locked_until=None)
        )
    if done.rowcount == 0:
        raise ValueError(f"No staff account {username!r}")


def set_active(engine: Engine, username: str, active: bool) -> None:
    """Disable or re-enable an account. A disabled account cannot sign in, and its tokens are
    refused from then on, since every verification reads this row. Re-enabling it makes its
    unexpired tokens (15 minutes at most) good again: change the password first if one may
    have leaked."""
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_user).where(auth_user.c.username == username).values(active=active)
        )
    if done.rowcount == 0:
        raise ValueError(f"No staff account {username!r}")


def enable_totp(engine: Engine, username: str) -> str:
    """Give the account a new TOTP secret; returns the ``otpauth://`` provisioning URI.

    The URI (shown as a QR code, or typed) carries the base32 secret and the issuer
    ``sokhoe`` for authenticator apps; ``pyotp.parse_uri(uri).secret`` recovers the secret.
    From now on the account needs a code at every sign-in.
    """
    secret = pyotp.random_base32()
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_user).where(auth_user.c.username == username).values(totp_secret=secret)
        )
    if done.rowcount == 0:
        raise ValueError(f"No staff account {username!r}")
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def disable_totp(engine: Engine, username: str) -> None:
    """Remove the second factor (a lost phone); administrators must then enrol again."""
    with engine.begin() as conn:
        conn.execute(
            update(auth_user).where(auth_user.c.username == username).values(totp_secret=None)
        )


def _record_failure(engine: Engine, username: str, at: datetime) -> datetime | None:
    """Count a failed attempt; lock the account on the fifth. Returns the lock's end, if any.

    The increment and the check run under the row lock (PostgreSQL) or the writer lock
    (SQLite), so parallel guesses cannot slip past the limit.
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(auth_user.c.failed_attempts)
            .where(auth_user.c.username == username)
            .with_for_update()
        ).one()
        failures = int(row.failed_attempts or 0) + 1
        if failures >= MAX_FAILURES:
            until = at + LOCK_DURATION
            # counting restarts, so after the lock ends the user has five tries again
            conn.execute(
                update(auth_user)
                .where(auth_user.c.username == username)
                .values(failed_attempts=0, locked_until=until)
            )
            return until
        conn.execute(
            update(auth_user)
            .where(auth_user.c.username == username)
            .values(failed_attempts=failures)
        )
    return None


def _locked(until: datetime) -> Unauthorized:
    return Unauthorized(
        Message("Too many failed sign-ins: account locked until %(time)s", time=local_hhmm(until))
    )


def _totp_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step whose code ``code`` is, one step either side of ``at`` (tolerates a phone
    clock 30 seconds off), or None."""
    totp = pyotp.TOTP(secret)
    now_step = int(at.timestamp()) // totp.interval
    for step in (now_step, now_step - 1, now_step + 1):
        if hmac.compare_digest(totp.at(step * totp.interval), code):
            return step
    return None


_REPLAYED = Message("This authenticator code was already used; wait for the next one")


def _check_totp(engine: Engine, username: str, secret: str, code: str | None, at: datetime) -> int:
    """The time step of a right ``code``; a wrong one counts as a failed attempt (and may
    lock the account), so a 6-digit code cannot be guessed by trying them all."""
    code = (code or "").strip().replace(" ", "")
    if not code:
        raise Unauthorized(Message("Enter the 6-digit code from your authenticator app"))
    step = _totp_step(secret, code, at)
    if step is None:
        until = _record_failure(engine, username, at)
        if until is not None:
            raise _locked(until)
        raise Unauthorized(Message("Wrong authenticator code"))
    return step


def _spend(engine: Engine, username: str, step: int | None) -> bool:
    """Clear the failures and, with a TOTP ``step``, spend it; True when it was spent before.

    A code is good once: someone who watched it typed cannot use it again within its
    90-second window (RFC 6238 §5.2). The step is compared and written in one statement, so
    two requests racing with the same code cannot both pass.
    """
    with engine.begin() as conn:
        stmt = update(auth_user).where(auth_user.c.username == username)
        if step is not None:
            stmt = stmt.where(
                or_(auth_user.c.totp_last_step.is_(None), auth_user.c.totp_last_step < step)
            ).values(totp_last_step=step)
        return conn.execute(stmt.values(failed_attempts=0, locked_until=None)).rowcount == 0


def confirm_totp(engine: Engine, username: str, code: str, now: datetime | None = None) -> int:
    """Check a TOTP code of an active staff account and spend its time step; returns the step.

    The electronic confirmation of a signature (``clinic/signing.py``) asks the clinician for
    the same authenticator code as the sign-in, under the same rules: a wrong code counts
    toward the lock-out, and a step already used (to sign in or to confirm) is refused.
    :class:`Unauthorized` says why otherwise.
    See: https://www.rfc-editor.org/rfc/rfc6238#section-5.2
    """
    at = utc(now)
    with engine.begin() as conn:
        row = conn.execute(select(auth_user).where(auth_user.c.username == username)).first()
    if row is None or not row.active:
        raise Unauthorized(f"No active staff account {username!r}")
    if row.locked_until is not None and utc(row.locked_until) > at:
        raise _locked(utc(row.locked_until))
    if row.totp_secret is None:
        raise Unauthorized(
            f"{username} has no authenticator app enrolled (sokhoe user totp {username})"
        )
    step = _check_totp(engine, username, str(row.totp_secret), code, at)
    if _spend(engine, username, step):
        raise Unauthorized(_REPLAYED)
    return step


def practitioner_of(engine: Engine, username: str) -> str | None:
    """The id of the Practitioner resource a staff account is, when it was linked."""
    with engine.begin() as conn:
        found = conn.execute(
            select(auth_user.c.practitioner_id).where(auth_user.c.username == username)
        ).first()
    return None if found is None or found.practitioner_id is None else str(found.practitioner_id)


def link_practitioner(engine: Engine, username: str, practitioner_id: str | None) -> None:
    """Say which Practitioner a staff account is (None: none). What they sign and prescribe
    then names that Practitioner, whose practising-certificate number (CCHN) the national
    prescription system knows them by; ValueError when the account does not exist."""
    with engine.begin() as conn:
        done = conn.execute(
            update(auth_user)
            .where(auth_user.c.username == username)
            .values(practitioner_id=practitioner_id)
        )
    if done.rowcount == 0:
        raise ValueError(f"No staff account {username!r}")


def account(engine: Engine, username: str) -> Principal | None:
    """The principal an active account's sign-in yields, or None: for the platform's own jobs
    that act as a named staff member (the demo's desk), never for a request (those sign in)."""
    with engine.begin() as conn:
        row = conn.execute(select(auth_user).where(auth_user.c.username == username)).first()
    return None if row is None or not row.active else principal_for(row)


def principal_for(row: Row[Any]) -> Principal:
    """The principal of an ``auth_user`` row."""
    role = str(row.role)
    return Principal(
        kind="staff",
        subject=str(row.username),
        display=str(row.display_name),
        role=role,
        facility=row.facility,
        # a facility's clinician serves a ward only as its station, which the registry says
        # at sign-in (``clinic/stations.py``), never the account
        commune=row.commune if role == "commune-health-worker" else None,
        scopes=ROLE_SCOPES.get(role, frozenset()),
    )


def sign_in(
    engine: Engine,
    username: str,
    password: str,
    totp_code: str | None,
    now: datetime | None = None,
    *,
    hasher: PasswordHasher = STRONG,
) -> Principal:
    """The principal of a staff member whose password (and TOTP code) are right.

    :class:`Unauthorized` otherwise: a generic message for a wrong user or password, the lock
    end while locked, and a request to enrol for an administrator without a second factor.
    A wrong TOTP code counts as a failure like a wrong password.
    """
    at = utc(now)
    with engine.begin() as conn:
        row = conn.execute(select(auth_user).where(auth_user.c.username == username)).first()
    if row is None or not row.active:
        try:
            hasher.verify(dummy_hash(hasher), password)
        except VerificationError:
            pass
        raise Unauthorized(_GENERIC)
    if row.locked_until is not None and utc(row.locked_until) > at:
        raise _locked(utc(row.locked_until))
    try:
        hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        until = _record_failure(engine, username, at)
        if until is not None:
            raise _locked(until) from exc
        raise Unauthorized(_GENERIC) from exc
    secret = row.totp_secret
    if secret is None and row.role in TOTP_REQUIRED_ROLES:
        raise Unauthorized(
            f"A {row.role} must use a second factor: enrol an authenticator app first "
            f"(sokhoe user totp {username})"
        )
    step = _check_totp(engine, username, secret, totp_code, at) if secret is not None else None
    if _spend(engine, username, step):
        raise Unauthorized(_REPLAYED)
    if hasher.check_needs_rehash(row.password_hash):
        with engine.begin() as conn:
            conn.execute(
                update(auth_user)
                .where(auth_user.c.username == username)
                .values(password_hash=hasher.hash(password))
            )
    return principal_for(row)
