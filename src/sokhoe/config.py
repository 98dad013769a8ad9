"""Settings, read once from the environment (prefix ``SOKHOE_``) and passed in explicitly.

Nothing in the package reads the environment on its own: ``create_app(settings)`` and the
services receive a :class:`Settings`, so tests build their own without touching globals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from argon2 import DEFAULT_MEMORY_COST, DEFAULT_PARALLELISM, DEFAULT_TIME_COST
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from sokhoe.store.sql import SqlStore


class NationalLogin(BaseModel):
    """A sign-in at the national prescription system: the interconnection code it issued
    (*mã liên thông*, of a facility or a doctor) and its password."""

    code: str
    password: SecretStr


class Settings(BaseSettings):
    """Runtime configuration of one server process."""

    model_config = SettingsConfigDict(env_prefix="SOKHOE_", env_file=None, extra="ignore")

    database_url: str = "sqlite:///var/sokhoe.db"
    pg_partitions: int = 0
    """PostgreSQL only, read when a database is created: split ``resource``, its history and
    the search-index tables into this many hash partitions by ``patient_id`` (``16`` for a
    province; 0: plain tables). A database keeps the layout it was created with; SQLite ignores
    it (``store/sql/partitions.py``)."""
    base_url: str = "http://127.0.0.1:8000"
    """Public URL of the server; FHIR ``fullUrl`` and paging links are built on it."""
    default_page_size: int = 50
    max_page_size: int = 1000
    max_request_bytes: int = 50 * 1024 * 1024
    var_dir: Path = Path("var")
    security: bool = True
    """Require a bearer token on /fhir and apply the access policy (off only for local
    experiments; the tests run with it on)."""
    check_in_opens_record: bool = False
    """Let a check-in by a number alone (CCCD QR text, BHYT card) open the history written at
    other facilities. Strict by default: the history opens with the patient's presence or
    consent (the one-time code sent to their phone, a share code) or break-the-glass."""
    token_minutes: int = 15
    page_session_minutes: int = 30
    """Idle time-out of a sign-in to the pages (``/clinic``): each page used in the second
    half of the session renews it, so a clinician at work stays signed in and an unattended
    screen signs itself out."""
    portal_session_days: int = 90
    """How long a citizen stays signed in to the portal on their own phone (``/portal``): a
    long session, listed among their devices and ended from any of them (``portal/devices.py``)."""
    password_time_cost: int = DEFAULT_TIME_COST
    password_memory_kib: int = DEFAULT_MEMORY_COST
    password_parallelism: int = DEFAULT_PARALLELISM
    """Argon2id cost of staff passwords: the library's defaults (RFC 9106, 3 passes over
    64 MiB in 4 lanes). Lower them only for a test suite (``access/passwords.py``)."""
    key_encryption_key: SecretStr | None = None
    """Seals the token-signing keys stored in the database: 32 random bytes in base64
    (``openssl rand -base64 32``), kept out of the database and its backups. Unset: made once
    in ``var/key-encryption.key`` (development). A database moved to a server with another key
    keeps working, but its old tokens are refused (everyone signs in again)."""
    cors_origins: list[str] = []
    """Web origins allowed to call the API from a browser (none by default; exact origins
    such as ``https://portal.example.vn``, never ``*`` with credentials)."""
    sms_gateway: str = "outbox"
    """``outbox`` (development: messages go to ``var/sms-outbox.jsonl``, never the log) or
    ``http`` (a carrier's HTTP API at ``sms_url`` with ``sms_token``)."""
    sms_url: str | None = None
    sms_token: str | None = None
    sms_timeout: float = 10.0
    oidc_issuer: str | None = None
    """Citizen sign-in through an OpenID Connect provider (such as VNeID): its issuer URL,
    https (plain http only on loopback). Unset: the /auth/oidc routes do not exist."""
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = None
    """Registered with the provider; default ``{base_url}/auth/oidc/callback``."""
    oidc_scopes: str = "openid profile"
    oidc_cccd_claim: str = "cccd"
    """The claim carrying the 12-digit personal ID (VNeID's real claim name is unconfirmed)."""
    oidc_client_auth: str = "client_secret_basic"
    """How we authenticate at the token endpoint: ``client_secret_basic`` or ``_post``."""
    oidc_timeout: float = 10.0
    hl7_allowed_sources: dict[str, list[str]] = {}
    """HL7 v2 over MLLP: facility code (MSH-4) → IP addresses or CIDR blocks its interface
    engine sends from (``SOKHOE_HL7_ALLOWED_SOURCES='{"79001": ["10.20.0.0/24"]}'``)."""
    hl7_allow_loopback: bool = False
    """Trust any MSH-4 from this machine. Off by default: any local process (another user's,
    a compromised service) could otherwise speak for every facility. Turn it on only for
    development, or list loopback for the one facility whose engine runs on this machine
    (``{"79001": ["127.0.0.1/32"]}``)."""
    hl7_max_message_bytes: int = 1024 * 1024
    hl7_idle_timeout: float = 300.0
    hl7_read_timeout: float = 30.0

    signing_p12_dir: Path | None = None
    """Where ``Encounter/$sign`` with method ``pkcs12`` finds each clinician's certificate and
    key: ``<dir>/<username>.p12`` (``sokhoe signature dev-cert`` makes development ones).
    Unset: only the TOTP confirmation is offered."""
    signing_p12_password: SecretStr | None = None
    """The password of those PKCS#12 files (``SOKHOE_SIGNING_P12_PASSWORD``)."""

    facility_dir: Path | None = None
    """Each facility's own files: ``<dir>/<code>/prices.csv`` (its price list) and
    ``<dir>/<code>/logo.png`` or ``logo.svg`` (printed on its forms); see
    ``clinic/facility_files.py``. Unset: every facility uses the built-in demo price list."""

    warehouse_key: str | None = None
    """Key of the warehouse's pseudonyms (HMAC); default: ``var/warehouse.key``, made once.
    Keep it secret: with it, pseudonyms can be linked back to records."""
    warehouse_population: Path | None = None
    """Denominator table for coverage (CSV ``province_code,commune_code,population``)."""

    subscriptions: bool = False
    """Run the FHIR Subscription dispatcher inside the server process (or run it apart with
    ``sokhoe subscriptions run``; a database lease keeps one sender per deployment)."""
    subscription_poll_seconds: float = 2.0
    subscription_overlap_seconds: float = 30.0
    """How far before the watermark each round re-reads the history, so a write committed
    after a later one (clock taken before a slow commit) is not missed; re-reads send nothing
    twice (the delivery queue has one row per subscription and resource version)."""
    subscription_max_attempts: int = 5
    subscription_backoff_seconds: float = 2.0
    """First retry delay; doubled each attempt, with jitter (50-100 % of the delay)."""
    subscription_max_backoff_seconds: float = 3600.0
    subscription_timeout: float = 10.0
    subscription_http_hosts: list[str] = []
    """Hosts a rest-hook may reach over plain http (development). Otherwise plain http goes
    only to a non-public address the connected system's allow-list names (a hospital network);
    every other endpoint must be https. The allow-list and address rules still apply."""
    subscription_allow_loopback: bool = False
    """Development override: any connected system may notify this machine (127.0.0.0/8, ::1,
    ``localhost``), over plain http, without listing it. Off (strict): loopback is reached
    only by a system whose allow-list names it (``127.0.0.1/32``)."""

    national_rx_url: str | None = None
    """Base URL of the national prescription system (Decision 808/QĐ-BYT; the facility side
    was ``https://api.donthuocquocgia.vn``). Unset: prescriptions and dispensing reports wait
    in the outbox and nothing is sent."""
    national_rx_pharmacy_url: str | None = None
    """Base URL of the pharmacy side (look-up, sold quantities), when it differs (808 named
    ``https://donthuocquocgia.vn`` there); default: ``national_rx_url``."""
    national_rx_app_name: str | None = None
    national_rx_app_key: SecretStr | None = None
    """The ``app-name`` / ``app-key`` headers issued to the software vendor (pharmacy side)."""
    national_rx_facilities: dict[str, NationalLogin] = {}
    """Facility insurance code -> its national sign-in
    (``SOKHOE_NATIONAL_RX_FACILITIES='{"79001": {"code": "...", "password": "..."}}'``)."""
    national_rx_doctors: dict[str, NationalLogin] = {}
    """Practising-certificate number (CCHN) -> the doctor's national sign-in."""
    national_rx_timeout: float = 15.0
    national_rx_backoff_seconds: float = 30.0
    """First retry delay after a transient failure; doubled each attempt, with jitter."""
    national_rx_max_backoff_seconds: float = 3600.0
    national_rx_lease_seconds: float = 120.0
    """How long a worker holds the rows it claimed: a worker that dies mid-send leaves them to
    another after this (the re-send is then recognised as a duplicate)."""
    national_rx_deliver: bool = False
    """Run the outbox's delivery inside the server process every ``national_rx_poll_seconds``
    (or run ``sokhoe prescriptions deliver`` apart; several may run at once)."""
    national_rx_poll_seconds: float = 30.0
    glass_alerts: bool = True
    """Text the citizen when their record is opened by breaking the glass, from the server
    process every ``glass_alert_seconds`` (``portal/glass_alerts.py``; ``sokhoe audit
    glass-alerts`` runs the same apart). Several processes may run it: each SMS goes once."""
    glass_alert_seconds: float = 60.0
    workers: int = 1
    """Worker processes serving this address (``sokhoe serve --workers`` sets it; reported in
    ``/metrics``)."""
    metrics_from: list[str] = ["127.0.0.1/32", "::1/128"]
    """Networks allowed to read ``/metrics`` (the monitoring host's, in production)."""

    @property
    def warehouse_dir(self) -> Path:
        return self.var_dir / "warehouse"

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"

    def open_store(self, url: str | None = None) -> SqlStore:
        """The store at ``url`` (default: ``database_url``), migrated, with this deployment's
        ``pg_partitions``: whichever command first meets an empty PostgreSQL database (the
        server, the HL7 listener, an import) creates the layout the operator asked for."""
        from sokhoe.store.sql import open_store

        return open_store(url or self.database_url, partitions=self.pg_partitions)

    def environment(self) -> dict[str, str]:
        """The ``SOKHOE_*`` variables that make :class:`Settings` read back as these settings.

        ``sokhoe serve --workers N`` builds its settings in the parent (command-line options,
        the demo's signing certificates) and each worker process reads its own from the
        environment: only fields that differ from the defaults are written, secrets in clear
        (the variables go to the server's own children, never to a log).
        """
        found: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value == field.default:
                continue
            plain = _plain(value)
            text = plain if isinstance(plain, str) else json.dumps(plain)
            found[f"SOKHOE_{name.upper()}"] = text
        return found


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data with secrets revealed (pydantic's JSON dump masks them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
