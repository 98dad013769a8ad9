"""The world the Subscription tests share: a real HTTP(S) receiver on loopback, a DNS the test
answers for, the platform (app, connected systems, injected clock) and the steps they repeat.

DNS is the one edge the tests cannot run (names like ``his.test`` resolve nowhere), so the
server's resolver is a :class:`FakeDns` here; everything else is the real thing: the app over
HTTP, the store, the dispatcher and ``HttpSender`` connecting to a socket the test listens on.
"""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.guard import platform_repository
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.interop.subscriptions import allowlist
from sokhoe.interop.subscriptions.delivery import Backoff, HttpSender
from sokhoe.interop.subscriptions.dispatcher import Dispatcher
from sokhoe.interop.subscriptions.endpoints import EndpointPolicy
from sokhoe.mpi.identifiers import mrn_system
from sokhoe.store import FhirStore
from sokhoe.web.app import create_app
from tests.conftest import BASE

FACILITY_A = "79001"
FACILITY_B = "01002"
LOOPBACK = "127.0.0.1/32"
"""The allow-list entry the test systems need to be notified on the test's receiver."""


# -- a real HTTP receiver ---------------------------------------------------------------------
@dataclass
class Receiver:
    """Records every POST and every connection accepted; answers the queued statuses first,
    then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    server_names: list[str | None] = field(default_factory=list)
    """TLS server names (SNI) the receiver was asked for."""
    port: int = 0
    url: str = ""

    def bundles(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.received if r["status"] == 200]


@contextmanager
def serve_receiver(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (https with ``tls``), stopped on exit."""
    rec = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with lock:
                status = rec.statuses.pop(0) if rec.statuses else 200
                rec.received.append(
                    {
                        "status": status,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(raw) if raw else None,
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def verify_request(self, request: Any, client_address: Any) -> bool:
            with lock:
                rec.connections += 1
            return True

    server = Server(("127.0.0.1", 0), Handler)
    if tls is not None:

        def seen(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            rec.server_names.append(name)

        tls.sni_callback = seen
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    rec.port = server.server_address[1]
    rec.url = f"{'https' if tls else 'http'}://127.0.0.1:{rec.port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


# -- DNS, answered by the test --------------------------------------------------------------
@dataclass
class FakeDns:
    """The server's resolver: ``answers[name]`` is the list of answers given in turn (the last
    one repeats); unknown names do not resolve. ``calls`` records every question."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        turns = self.answers.get(host)
        if not turns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return turns.pop(0) if len(turns) > 1 else turns[0]


# -- the platform: app, callers, clock --------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Platform:
    app: FastAPI
    api: TestClient
    store: FhirStore
    engine: Engine
    clock: Clock
    tokens: dict[str, str]
    clients: dict[str, str] = field(default_factory=dict)
    """Test name of a connected system → its client_id."""
    dns: FakeDns = field(default_factory=FakeDns)

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    @property
    def endpoints(self) -> EndpointPolicy:
        """The endpoint rule of the server's settings, resolving through :attr:`dns`."""
        settings: Settings = self.app.state.settings
        return dataclasses.replace(EndpointPolicy.from_settings(settings), resolve=self.dns)

    def add_system(
        self, who: str, facility: str | None, endpoints: list[str], name: str | None = None
    ) -> str:
        """A connected system (``system/*.cruds``) with its allow-list; its token as ``who``."""
        tokens: TokenService = self.app.state.tokens
        new = create_client(tokens.engine, name or f"HIS {who}", ["system/*.cruds"], facility)
        allowlist.add(tokens.engine, new.client_id, endpoints)
        principal = authenticate_client(tokens.engine, new.client_id, new.client_secret)
        self.tokens[who] = tokens.issue(principal)[0]
        self.clients[who] = new.client_id
        return new.client_id

    def dispatcher(
        self,
        *,
        max_attempts: int = 5,
        holder: str | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> Dispatcher:
        repo = platform_repository(self.store, f"{BASE}/fhir", auditor=self.app.state.auditor)
        return Dispatcher(
            repo,
            self.engine,
            self.app.state.auditor,
            HttpSender(self.endpoints, timeout=5, verify=verify),
            backoff=Backoff(2.0, 3600.0, max_attempts),
            overlap=timedelta(seconds=30),
            clock=self.clock,
            rng=random.Random(7),
            holder=holder,
        )


@contextmanager
def open_platform(store: FhirStore, settings: Settings) -> Iterator[Platform]:
    """The app over ``store``, a platform system (no facility, nothing allow-listed) and the
    systems of facilities A and B, both allowed to notify loopback (the test's receiver)."""
    app = create_app(settings, store)
    with TestClient(app, base_url=BASE) as api:
        p = Platform(app, api, store, app.state.tokens.engine, Clock(), {})
        app.state.subscription_endpoints = p.endpoints  # registration resolves through p.dns
        p.add_system("platform", None, [], name="test platform")
        p.add_system("A", FACILITY_A, [LOOPBACK], name="HIS bệnh viện A")
        p.add_system("B", FACILITY_B, [LOOPBACK], name="LIS phòng xét nghiệm B")
        yield p


# -- steps ----------------------------------------------------------------------------------
def patient(p: Platform, name: str, facilities: list[str]) -> str:
    body = {
        "resourceType": "Patient",
        "name": [{"family": "Nguyễn", "given": [name]}],
        "identifier": [{"system": mrn_system(f), "value": f"BN-{name}-{f}"} for f in facilities],
    }
    r = p.api.post("/fhir/Patient", json=body, headers=p.as_("platform"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def lab(p: Platform, who: str, patient_id: str, value: float) -> str:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    }
    r = p.api.post("/fhir/Observation", json=body, headers=p.as_(who))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def subscribe(p: Platform, who: str, criteria: str, endpoint: str, **channel: Any) -> Any:
    body = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Kết quả xét nghiệm cho bệnh nhân của bệnh viện",
        "criteria": criteria,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            **channel,
        },
    }
    return p.api.post("/fhir/Subscription", json=body, headers=p.as_(who))


def delivered_ids(rec: Receiver) -> list[str]:
    return [b["entry"][0]["resource"]["id"] for b in rec.bundles()]
