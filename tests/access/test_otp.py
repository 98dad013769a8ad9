"""Citizen one-time codes on every backend, the rate limiter, and the SMS gateways."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from sokhoe.access import ratelimit
from sokhoe.access.db import access_engine
from sokhoe.access.otp import (
    link_citizen,
    normalise_phone,
    request_code,
    verify_code,
)
from sokhoe.access.sms import (
    HttpGateway,
    MemoryGateway,
    OutboxGateway,
    SmsDeliveryError,
    make_gateway,
)
from sokhoe.errors import TooManyRequests, Unauthorized
from sokhoe.store import FhirStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import auth_citizen, auth_otp

VN = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")
NOW = datetime(2025, 3, 10, 9, 0, tzinfo=VN)
PHONE = "0912345678"
ADDR = "203.113.1.1"


@pytest.fixture
def engine(store: FhirStore) -> Engine:
    return access_engine(store)


def _code(text: str) -> str:
    m = re.search(r"là (\d{6}) ", text)
    assert m is not None, text
    return m.group(1)


def _last_code(gateway: MemoryGateway) -> str:
    return _code(gateway.sent[-1][1])


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "+84912345678",
        "84912345678",
        "+84 912 345 678",
        "091.234.5678",
        "+840912345678",
    ],
)
def test_phone_normalisation(raw: str) -> None:
    assert normalise_phone(raw) == "0912345678"


@pytest.mark.parametrize(
    "raw", ["", "12345", "0212345678", "091234567", "09123456789", "+1 912 345 678", "abc"]
)
def test_phone_normalisation_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="Vietnamese mobile"):
        normalise_phone(raw)


def test_otp_flow_through_the_outbox(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = tmp_path / "outbox" / "sms.jsonl"
    gateway = OutboxGateway(outbox)
    with caplog.at_level(logging.INFO, logger="sokhoe.access.sms"):
        challenge = request_code(engine, gateway, "+84 912 345 678", ADDR, now=NOW)
    assert challenge
    lines = [json.loads(x) for x in outbox.read_text(encoding="utf-8").splitlines()]
    # the log says where the message went, never what it says
    logged = [r.getMessage() for r in caplog.records]
    assert any(PHONE in m and str(outbox) in m for m in logged), logged
    assert not any("Mã xác thực" in m or _code(lines[0]["text"]) in m for m in logged)
    assert len(lines) == 1
    assert lines[0]["to"] == PHONE
    assert re.fullmatch(
        r"Mã xác thực sokhoe của bạn là \d{6} \(hết hạn sau 5 phút\)\.", lines[0]["text"]
    )
    assert lines[0]["at"]
    code = _code(lines[0]["text"])
    with engine.begin() as conn:
        stored = conn.execute(select(auth_otp.c.code_hash)).scalar_one()
    assert code not in stored
    p = verify_code(engine, PHONE, code, now=NOW + timedelta(minutes=1))
    assert p.kind == "citizen"
    assert p.subject == p.display == PHONE
    assert p.scopes == frozenset({"patient/*.rs"})
    assert p.patient_ids == ()
    with engine.begin() as conn:
        row = conn.execute(select(auth_citizen)).one()
    assert row.phone == PHONE
    assert ratelimit.utc(row.last_sign_in) == NOW + timedelta(minutes=1)
    # a used code does not work twice
    with pytest.raises(Unauthorized, match="No code is pending"):
        verify_code(engine, PHONE, code, now=NOW + timedelta(minutes=2))
    assert gateway.messages(PHONE)[0]["text"] == lines[0]["text"]


def test_linked_citizen_gets_patient_id(engine: Engine) -> None:
    gateway = MemoryGateway()
    link_citizen(engine, "+84912345678", "pat-1", now=NOW)
    request_code(engine, gateway, PHONE, ADDR, now=NOW)
    p = verify_code(engine, PHONE, _last_code(gateway), now=NOW)
    assert p.patient_ids == ("pat-1",)
    with engine.begin() as conn:
        row = conn.execute(select(auth_citizen)).one()
    assert ratelimit.utc(row.created) == NOW  # sign-in keeps the original creation time


def test_brute_force_kills_the_code(engine: Engine) -> None:
    gateway = MemoryGateway()
    request_code(engine, gateway, PHONE, ADDR, now=NOW)
    code = _last_code(gateway)
    for left in (4, 3, 2, 1):
        with pytest.raises(Unauthorized, match=f"{left} attempt"):
            verify_code(engine, PHONE, _wrong(code), now=NOW)
    with pytest.raises(Unauthorized, match="too many attempts"):
        verify_code(engine, PHONE, _wrong(code), now=NOW)
    with pytest.raises(Unauthorized, match="Too many attempts, request a new code"):
        verify_code(engine, PHONE, code, now=NOW)
    with engine.begin() as conn:
        assert conn.execute(select(auth_otp.c.attempts)).scalar_one() == 5
        assert conn.execute(select(auth_citizen)).first() is None


def test_expired_code_is_refused(engine: Engine) -> None:
    gateway = MemoryGateway()
    request_code(engine, gateway, PHONE, ADDR, now=NOW)
    with pytest.raises(Unauthorized, match="expired"):
        verify_code(engine, PHONE, _last_code(gateway), now=NOW + timedelta(minutes=5))


def test_new_code_invalidates_older_ones(engine: Engine) -> None:
    gateway = MemoryGateway()
    first = request_code(engine, gateway, PHONE, ADDR, now=NOW)
    old = _last_code(gateway)
    second = request_code(engine, gateway, PHONE, ADDR, now=NOW + timedelta(seconds=30))
    new = _last_code(gateway)
    assert first != second
    with pytest.raises(Unauthorized, match="No code is pending"):
        verify_code(engine, PHONE, old, now=NOW + timedelta(minutes=1), challenge=first)
    if old != new:
        with pytest.raises(Unauthorized, match="Wrong code"):
            verify_code(engine, PHONE, old, now=NOW + timedelta(minutes=1))
    assert verify_code(engine, PHONE, new, now=NOW + timedelta(minutes=1)).subject == PHONE


def test_per_phone_rate_limit(engine: Engine) -> None:
    gateway = MemoryGateway()
    for i in range(3):
        request_code(engine, gateway, PHONE, f"10.0.0.{i}", now=NOW + timedelta(minutes=i))
    with pytest.raises(TooManyRequests, match="try again after 09:15") as exc:
        request_code(engine, gateway, PHONE, "10.0.0.9", now=NOW + timedelta(minutes=5))
    assert isinstance(exc.value, ratelimit.RateLimited)
    assert exc.value.retry_after == 600
    assert exc.value.status == 429
    assert len(gateway.sent) == 3
    # another number is not affected; the same number is, until the window ends
    request_code(engine, gateway, "0987654321", "10.0.0.9", now=NOW + timedelta(minutes=5))
    request_code(engine, gateway, PHONE, "10.0.0.9", now=NOW + timedelta(minutes=15))


def test_per_address_rate_limit(engine: Engine) -> None:
    gateway = MemoryGateway()
    for i in range(10):
        request_code(engine, gateway, f"09100000{i:02d}", ADDR, now=NOW + timedelta(minutes=i))
    with pytest.raises(TooManyRequests, match="try again after 10:00"):
        request_code(engine, gateway, "0910000099", ADDR, now=NOW + timedelta(minutes=30))
    request_code(engine, gateway, "0910000099", "203.113.1.2", now=NOW + timedelta(minutes=30))
    request_code(engine, gateway, "0910000098", ADDR, now=NOW + timedelta(hours=1))


def test_bad_phone_is_refused_before_sending(engine: Engine) -> None:
    gateway = MemoryGateway()
    with pytest.raises(ValueError, match="Vietnamese mobile"):
        request_code(engine, gateway, "024 3826 4444", ADDR, now=NOW)
    assert gateway.sent == []
    with pytest.raises(Unauthorized):
        verify_code(engine, "12", "123456", now=NOW)


def test_rate_limit_counts_and_refusals_do_not(engine: Engine) -> None:
    window = timedelta(minutes=1)
    for _ in range(2):
        ratelimit.hit(engine, "k", 2, window, now=NOW)
    for _ in range(3):
        with pytest.raises(ratelimit.RateLimited):
            ratelimit.hit(engine, "k", 2, window, now=NOW + timedelta(seconds=30))
    ratelimit.hit(engine, "k", 2, window, now=NOW + window)
    ratelimit.hit(engine, "k", 2, window, now=NOW + window)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit(engine, "k", 2, window, now=NOW + window)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rate_limit_under_concurrency(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Real databases only: the memory store's access database is one shared connection,
    used by one process, where concurrent writers do not arise."""
    if backend == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'rate.db'}")
    else:
        store = SqlStore(request.getfixturevalue("pg_url"), migrate_schema=False)
    engine = store.writer
    key = f"burst-{uuid.uuid4().hex}"
    allowed: list[int] = []
    refused: list[int] = []

    def worker(i: int) -> None:
        try:
            ratelimit.hit(engine, key, 5, timedelta(minutes=1), now=NOW)
            allowed.append(i)
        except TooManyRequests:
            refused.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert len(allowed) == 5
    assert len(refused) == 15


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - reset by the fixture
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length).decode("utf-8"))
        type(self).received.append(
            {"body": body, "auth": self.headers["Authorization"], "path": self.path}
        )
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sms_server() -> Iterator[str]:
    _Recorder.received = []
    _Recorder.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_gateway_posts_json(sms_server: str) -> None:
    gateway = HttpGateway(sms_server, "tok-123", timeout=5)
    gateway.send(PHONE, "Mã xác thực sokhoe của bạn là 123456 (hết hạn sau 5 phút).")
    assert _Recorder.received == [
        {
            "body": {
                "to": PHONE,
                "text": "Mã xác thực sokhoe của bạn là 123456 (hết hạn sau 5 phút).",
            },
            "auth": "Bearer tok-123",
            "path": "/sms",
        }
    ]


def test_http_gateway_reports_refusal(sms_server: str) -> None:
    _Recorder.status = 500
    with pytest.raises(SmsDeliveryError, match="HTTP 500") as exc:
        HttpGateway(sms_server, "tok", timeout=5).send(PHONE, "x")
    assert exc.value.status == 503


def test_http_gateway_reports_unreachable() -> None:
    with pytest.raises(SmsDeliveryError, match="could not be reached"):
        HttpGateway("http://127.0.0.1:9/sms", "tok", timeout=2).send(PHONE, "x")
    with pytest.raises(ValueError, match="http"):
        HttpGateway("file:///etc/passwd", "tok")


def test_make_gateway(tmp_path: Path) -> None:
    assert isinstance(make_gateway("outbox", tmp_path / "o.jsonl"), OutboxGateway)
    http = make_gateway("http", tmp_path, url="https://sms.example.vn/send", token="t")
    assert isinstance(http, HttpGateway)
    with pytest.raises(ValueError, match="URL and a token"):
        make_gateway("http", tmp_path)
    with pytest.raises(ValueError, match="Unknown SMS gateway"):
        make_gateway("carrier-pigeon", tmp_path)
