"""The national prescription system's HTTP API (Decision 808/QĐ-BYT), as a small client.

Facility side: a facility signs in (``/api/auth/dang-nhap-co-so-kham-chua-benh``) and a doctor
signs in for their facility (``/api/auth/dang-nhap-bac-si``); each gets a bearer token valid 7
days; the doctor's token sends the prescription (``/api/v1/gui-don-thuoc``). Pharmacy side:
the ``app-name`` / ``app-key`` headers given to the software vendor look a prescription up
(``GET /api/v1/thong-tin-don-thuoc/{code}``) and report what was sold
(``POST /api/v1/cap-nhat-don-thuoc``). Routes, sign-in fields and the 7-day token life are
those of the public mock of the Decision (``nkocsea/gia_lap_api_lien_thong_don_quoc_gia``).

Tokens are cached in the database (sealed with the key-encryption key) until shortly before
they expire, so every server process and worker shares one sign-in (DESIGN.md: nothing in
one process's memory). A 401 drops the cached token and signs in again once.

Failures come out as two kinds: :class:`Transient` (no connection, time-out, 5xx, 429: try
again later) and :class:`Refused` (another 4xx: the system read the request and said no).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx2
import jwt
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sokhoe.access.kek import KeyEncryptionKey, SealError
from sokhoe.config import NationalLogin, Settings
from sokhoe.store.sql.prescribing_schema import national_rx_token

TOKEN_LIFE = timedelta(days=7)
"""808: a sign-in's token is valid 7 days (the mock signs 10080 minutes)."""
RENEW_BEFORE = timedelta(minutes=10)
FACILITY_SIGN_IN = "/api/auth/dang-nhap-co-so-kham-chua-benh"
DOCTOR_SIGN_IN = "/api/auth/dang-nhap-bac-si"
SEND = "/api/v1/gui-don-thuoc"
LOOKUP = "/api/v1/thong-tin-don-thuoc/{code}"
REPORT = "/api/v1/cap-nhat-don-thuoc"

Clock = Callable[[], datetime]


class NationalError(Exception):
    """A call to the national system that did not succeed."""


class Transient(NationalError):
    """Worth trying again later: unreachable, timed out, overloaded (5xx, 429)."""


class Refused(NationalError):
    """The national system read the request and refused it (a 4xx with its message)."""

    def __init__(self, status: int, message: str, body: Any) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class SignInRefused(Refused):
    """The sign-in itself was refused (wrong code or password): a setting to fix, not a
    refusal of the prescription; the outbox keeps the rows and tries again later."""


class NotConfigured(NationalError):
    """No URL or no sign-in for this facility or doctor in the settings."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class TokenCache:
    """Bearer tokens by subject (``facility:<code>``, ``doctor:<facility>:<doctor>``), in the
    database, sealed, until ``RENEW_BEFORE`` their expiry."""

    def __init__(self, engine: Engine, kek: KeyEncryptionKey) -> None:
        self.engine = engine
        self.kek = kek

    def get(self, subject: str, now: datetime) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(national_rx_token.c.token, national_rx_token.c.expires).where(
                    national_rx_token.c.subject == subject
                )
            ).first()
        if row is None or _utc(row.expires) - RENEW_BEFORE <= now:
            return None
        try:
            return self.kek.open(str(row.token), f"national-rx:{subject}")
        except SealError:
            return None  # sealed under another key (a restored database): sign in again

    def put(self, subject: str, token: str, expires: datetime) -> None:
        values = {
            "subject": subject,
            "token": self.kek.seal(token, f"national-rx:{subject}"),
            "expires": expires,
        }
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(national_rx_token).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[national_rx_token.c.subject],
            set_={"token": statement.excluded.token, "expires": statement.excluded.expires},
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def drop(self, subject: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(national_rx_token).where(national_rx_token.c.subject == subject))


def _message(response: httpx2.Response) -> tuple[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        return response.text[:500], response.text[:2000]
    if isinstance(body, dict):
        for key in ("message", "error", "msg", "detail"):
            if body.get(key):
                return str(body[key]), body
    return str(body)[:500], body


def _expiry(token: str, now: datetime) -> datetime:
    """The token's ``exp`` when it is a JWT (the mock's are), else 7 days (808)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return now + TOKEN_LIFE
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else now + TOKEN_LIFE


class NationalClient:
    """One deployment's connection to the national prescription system."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenCache,
        *,
        facilities: Mapping[str, NationalLogin],
        doctors: Mapping[str, NationalLogin],
        pharmacy_url: str | None = None,
        app_name: str | None = None,
        app_key: str | None = None,
        timeout: float = 15.0,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.pharmacy_url = (pharmacy_url or base_url).rstrip("/")
        self.tokens = tokens
        self.facilities = dict(facilities)
        self.doctors = dict(doctors)
        self.app_name = app_name
        self.app_key = app_key
        self.clock = clock
        self._http = httpx2.Client(timeout=httpx2.Timeout(timeout), trust_env=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, engine: Engine, kek: KeyEncryptionKey, clock: Clock | None = None
    ) -> NationalClient:
        if not settings.national_rx_url:
            raise NotConfigured("SOKHOE_NATIONAL_RX_URL is not set")
        key = settings.national_rx_app_key
        return cls(
            settings.national_rx_url,
            TokenCache(engine, kek),
            facilities=settings.national_rx_facilities,
            doctors=settings.national_rx_doctors,
            pharmacy_url=settings.national_rx_pharmacy_url,
            app_name=settings.national_rx_app_name,
            app_key=key.get_secret_value() if key is not None else None,
            timeout=settings.national_rx_timeout,
            **({"clock": clock} if clock is not None else {}),
        )

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------------
    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx2.TransportError as exc:  # refused, reset, DNS, time-outs
            raise Transient(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"{response.status_code}: {_message(response)[0]}")
        if response.status_code >= 400:
            message, body = _message(response)
            raise Refused(response.status_code, message, body)
        try:
            return response.json()
        except ValueError:
            return response.text

    # -- sign-in -------------------------------------------------------------------------
    def _facility_login(self, facility: str) -> NationalLogin:
        login = self.facilities.get(facility)
        if login is None:
            raise NotConfigured(f"no national sign-in for facility {facility}")
        return login

    def _signed_in(self, subject: str, form: dict[str, str], path: str) -> str:
        now = self.clock()
        cached = self.tokens.get(subject, now)
        if cached is not None:
            return cached
        try:
            body = self._call("POST", self.base_url + path, data=form)
        except Refused as refused:
            raise SignInRefused(refused.status, refused.message, refused.body) from refused
        token = body.get("accessToken") if isinstance(body, dict) else None
        if not token:
            raise Refused(200, "the sign-in answered without an accessToken", body)
        self.tokens.put(subject, str(token), _expiry(str(token), now))
        return str(token)

    def facility_token(self, facility: str) -> str:
        """The facility's bearer token (signing in when none is cached or it is expiring)."""
        login = self._facility_login(facility)
        form = {
            "ma_lien_thong_co_so_kham_chua_benh": login.code,
            "password": login.password.get_secret_value(),
        }
        return self._signed_in(f"facility:{facility}", form, FACILITY_SIGN_IN)

    def doctor_token(self, facility: str, certificate: str) -> str:
        """The bearer token of the doctor (by practising-certificate number) at ``facility``."""
        login = self._facility_login(facility)
        doctor = self.doctors.get(certificate)
        if doctor is None:
            raise NotConfigured(f"no national sign-in for the doctor with CCHN {certificate}")
        form = {
            "ma_lien_thong_co_so_kham_chua_benh": login.code,
            "ma_lien_thong_bac_si": doctor.code,
            "password": doctor.password.get_secret_value(),
        }
        return self._signed_in(f"doctor:{facility}:{certificate}", form, DOCTOR_SIGN_IN)

    # -- the facility side ---------------------------------------------------------------
    def send_prescription(self, payload: dict[str, Any], facility: str, certificate: str) -> Any:
        """``POST /api/v1/gui-don-thuoc`` as the prescriber; a 401 signs in again once."""
        subject = f"doctor:{facility}:{certificate}"
        for attempt in (1, 2):
            token = self.doctor_token(facility, certificate)
            try:
                return self._call(
                    "POST",
                    self.base_url + SEND,
                    json=payload,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except Refused as refused:
                if refused.status != 401 or attempt == 2:
                    raise
                self.tokens.drop(subject)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the pharmacy side ---------------------------------------------------------------
    def _app_headers(self) -> dict[str, str]:
        if not self.app_name or not self.app_key:
            raise NotConfigured("SOKHOE_NATIONAL_RX_APP_NAME / _APP_KEY are not set")
        return {"app-name": self.app_name, "app-key": self.app_key}

    def lookup(self, code: str) -> Any:
        """``GET /api/v1/thong-tin-don-thuoc/{code}``: the prescription as the system has it."""
        url = self.pharmacy_url + LOOKUP.format(code=quote(code, safe=""))
        return self._call("GET", url, headers=self._app_headers())

    def report_dispensing(self, payload: dict[str, Any]) -> Any:
        """``POST /api/v1/cap-nhat-don-thuoc``: what a pharmacy sold against a code."""
        return self._call(
            "POST", self.pharmacy_url + REPORT, json=payload, headers=self._app_headers()
        )


__all__ = [
    "NationalClient",
    "NationalError",
    "NotConfigured",
    "Refused",
    "SignInRefused",
    "TokenCache",
    "Transient",
]
