"""FHIR Subscriptions end to end: connected systems register over the REST API, other
facilities write, the dispatcher delivers to a real HTTP receiver on loopback.

The receiver is a real ``http.server`` in a thread; back-off is driven by an injected clock,
not sleeps. The same bodies run on the memory, SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from sokhoe.access.audit import AuditLog
from sokhoe.access.clients import authenticate_client, create_client
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.store import FhirStore
from sokhoe.store.sql.subscription_schema import subscription, subscription_delivery
from tests.conftest import BASE
from tests.interop.subscription_world import (
    FACILITY_A,
    FACILITY_B,
    Platform,
    Receiver,
    delivered_ids,
    lab,
    open_platform,
    patient,
    serve_receiver,
    subscribe,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as rec:
        yield rec


@pytest.fixture
def platform(store: FhirStore, settings: Settings) -> Iterator[Platform]:
    with open_platform(store, settings) as p:
        yield p


# -- tests ----------------------------------------------------------------------------------
def test_lab_result_from_another_facility_reaches_the_subscriber(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    shared = patient(p, "An", [FACILITY_A, FACILITY_B])
    r = subscribe(
        p, "A", f"Observation?patient=Patient/{shared}", receiver.url, header=["X-Key: s3cret"]
    )
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["status"] == "active"
    assert "header" not in sub["channel"]  # the receiver's credential is never readable
    owner = [t for t in sub["meta"]["tag"] if t["code"].startswith("c-")]
    assert len(owner) == 1

    obs = lab(p, "B", shared, 5.4)
    report = p.dispatcher().run_once()

    assert report.delivered == 1 and receiver.received[0]["path"] == "/hook"
    sent = receiver.received[0]
    assert sent["headers"]["X-Key"] == "s3cret"
    assert sent["headers"]["Content-Type"] == "application/fhir+json"
    bundle = sent["body"]
    assert bundle["type"] == "history"
    assert bundle["entry"][0]["resource"]["id"] == obs
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/fhir/Observation/{obs}"
    # the delivery is audited as an export of the patient's data to A's system
    events, _ = AuditLog(p.engine).for_patient([shared])
    exports = [e for e in events if e["type"]["code"] == "110106"]
    assert len(exports) == 1 and exports[0]["outcome"] == "0"
    # nothing new: the next round sends nothing
    assert p.dispatcher().run_once().delivered == 0
    assert len(receiver.received) == 1


def test_resources_the_subscriber_may_not_see_are_never_delivered(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    shared = patient(p, "Bình", [FACILITY_A, FACILITY_B])
    only_b = patient(p, "Cúc", [FACILITY_B])
    r = subscribe(p, "A", "Observation?category=laboratory", receiver.url)
    assert r.status_code == 201, r.text
    hidden = lab(p, "B", only_b, 7.1)
    seen = lab(p, "B", shared, 6.2)

    p.dispatcher().run_once()

    assert delivered_ids(receiver) == [seen]
    assert hidden not in json.dumps(receiver.received)
    with p.engine.connect() as conn:
        queued = conn.execute(select(subscription_delivery.c.resource_id)).scalars().all()
    assert queued == [seen]


def test_a_failing_receiver_gets_the_notification_once_after_back_off(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "Dũng", [FACILITY_A, FACILITY_B])
    assert subscribe(p, "A", f"Observation?subject=Patient/{pid}", receiver.url).status_code == 201
    obs = lab(p, "B", pid, 4.4)
    receiver.statuses = [500, 500]
    dispatcher = p.dispatcher()

    assert dispatcher.run_once().failed == 1  # attempt 1: HTTP 500
    assert dispatcher.run_once().failed == 0  # not due yet: no attempt
    assert len(receiver.received) == 1
    p.clock.advance(2.0)  # first delay is 1-2 s
    assert dispatcher.run_once().failed == 1  # attempt 2: HTTP 500
    p.clock.advance(1.0)  # second delay is 2-4 s: not yet
    dispatcher.run_once()
    assert len(receiver.received) == 2
    p.clock.advance(3.0)
    assert dispatcher.run_once().delivered == 1  # attempt 3 succeeds

    assert [r["status"] for r in receiver.received] == [500, 500, 200]
    assert delivered_ids(receiver) == [obs]
    with p.engine.connect() as conn:
        row = conn.execute(select(subscription_delivery)).one()
    assert (row.status, row.attempts) == ("delivered", 3)
    p.clock.advance(3600)
    dispatcher.run_once()
    assert len(receiver.received) == 3


def test_exhausted_retries_set_error_and_a_later_success_resets(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "Em", [FACILITY_A, FACILITY_B])
    sid = subscribe(p, "A", f"Observation?patient={pid}", receiver.url).json()["id"]
    first = lab(p, "B", pid, 3.0)
    receiver.statuses = [503, 503]
    dispatcher = p.dispatcher(max_attempts=2)
    dispatcher.run_once()
    p.clock.advance(2.0)
    dispatcher.run_once()

    sub = p.api.get(f"/fhir/Subscription/{sid}", headers=p.as_("A")).json()
    assert sub["status"] == "error" and "HTTP 503" in sub["error"]
    second = lab(p, "B", pid, 3.1)
    dispatcher.run_once()  # the subscription in error still tries the next notification

    assert delivered_ids(receiver) == [second]
    assert first not in delivered_ids(receiver)
    sub = p.api.get(f"/fhir/Subscription/{sid}", headers=p.as_("A")).json()
    assert sub["status"] == "active" and "error" not in sub


@pytest.mark.parametrize(
    ("criteria", "endpoint", "expected"),
    [
        ("Observation?paitent=Patient/1", None, "paitent"),
        ("Observation?_count=5", None, "_count"),
        ("Nonsense?x=1", None, "Nonsense"),
        ("Observation?patient=Patient/1", "https://his.example.vn/hook", "allow-list"),
        ("Observation?patient=Patient/1", "ftp://127.0.0.1/hook", "http(s)"),
        ("Observation?patient=Patient/1", "https://169.254.169.254/latest", "may not reach"),
    ],
)
def test_a_bad_subscription_is_refused_and_changes_nothing(
    platform: Platform, receiver: Receiver, criteria: str, endpoint: str | None, expected: str
) -> None:
    p = platform
    r = subscribe(p, "A", criteria, endpoint or receiver.url)

    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert expected in r.text
    listed = p.api.get("/fhir/Subscription", headers=p.as_("platform")).json()
    assert listed.get("total", 0) == 0
    with p.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscription)).scalar_one() == 0


def test_only_the_owner_changes_or_removes_a_subscription(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "Giang", [FACILITY_A, FACILITY_B])
    sub = subscribe(p, "A", f"Observation?patient={pid}", receiver.url).json()
    sid = sub["id"]
    sub["criteria"] = "Observation?category=laboratory"
    owner = [t["code"] for t in sub["meta"]["tag"] if t["code"].startswith("c-")]
    assert p.api.put(f"/fhir/Subscription/{sid}", json=sub, headers=p.as_("B")).status_code == 403
    # the platform may edit it; the owner (whose access filters notifications) stays A
    edited = p.api.put(f"/fhir/Subscription/{sid}", json=sub, headers=p.as_("platform"))
    assert edited.status_code == 200, edited.text
    assert [t["code"] for t in edited.json()["meta"]["tag"] if t["code"].startswith("c-")] == owner
    assert p.api.delete(f"/fhir/Subscription/{sid}", headers=p.as_("B")).status_code == 403
    assert p.api.delete(f"/fhir/Subscription/{sid}", headers=p.as_("A")).status_code == 204

    lab(p, "B", pid, 2.0)
    p.dispatcher().run_once()
    assert receiver.received == []


def test_a_new_dispatcher_continues_from_the_watermark(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "Hà", [FACILITY_A, FACILITY_B])
    assert subscribe(p, "A", f"Observation?patient={pid}", receiver.url).status_code == 201
    first = lab(p, "B", pid, 1.0)
    old = p.dispatcher(holder="process-1")
    assert old.run_once().delivered == 1
    # while process-1 holds the lease, another process does not send
    assert not p.dispatcher(holder="process-2").run_once().leased
    old.release()  # process-1 stops

    restarted = p.dispatcher(holder="process-2")
    report = restarted.run_once()
    assert report.leased and report.delivered == 0 and report.queued == 0
    second = lab(p, "B", pid, 1.1)
    assert restarted.run_once().delivered == 1

    assert delivered_ids(receiver) == [first, second]


def test_the_server_runs_the_dispatcher_when_configured(
    store: FhirStore, settings: Settings, receiver: Receiver
) -> None:
    """On every store, the memory one included: its access tables are a SQLite file of its
    own, which the dispatcher's thread and the requests share like any database."""
    on = settings.model_copy(update={"subscriptions": True, "subscription_poll_seconds": 0.05})
    with open_platform(store, on) as platform:
        app = platform.app
        pid = patient(platform, "Khoa", [FACILITY_A, FACILITY_B])
        assert subscribe(platform, "A", f"Observation?patient={pid}", receiver.url).is_success
        obs = lab(platform, "B", pid, 9.9)
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while not receiver.received and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    assert delivered_ids(receiver) == [obs]
    assert app.state.subscriptions._thread is None  # stopped with the app


def test_writes_by_any_path_are_seen_and_edits_outside_registration_are_not_served(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "Lan", [FACILITY_A, FACILITY_B])
    sub = subscribe(p, "A", f"Observation?patient={pid}", receiver.url).json()
    result = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": result, "request": {"method": "POST", "url": "Observation"}}],
    }
    r = p.api.post("/fhir", json=bundle, headers=p.as_("B"))
    assert r.status_code == 200, r.text
    dispatcher = p.dispatcher()
    assert dispatcher.run_once().delivered == 1  # a transaction bundle, not a REST create

    # someone repoints the Subscription through a bundle (not the registration route)
    sub["channel"]["endpoint"] = "http://127.0.0.1:9/elsewhere"
    edit = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": sub, "request": {"method": "PUT", "url": f"Subscription/{sub['id']}"}}
        ],
    }
    refused = p.api.post("/fhir", json=edit, headers=p.as_("platform"))
    assert refused.status_code == 403  # only the registration writes a Subscription
    assert "registration" in refused.json()["issue"][0]["diagnostics"]
    lab(p, "B", pid, 8.0)
    report = dispatcher.run_once()
    assert report.delivered == 1  # still to the endpoint that was checked and registered
    assert len(receiver.received) == 2


def test_cli_runs_one_round(tmp_path: Any, receiver: Receiver) -> None:
    from typer.testing import CliRunner

    from sokhoe.interop.subscriptions.cli import subscriptions_app
    from sokhoe.store.sql import SqlStore

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(url)
    settings = Settings(base_url=BASE, database_url=url)
    try:
        with open_platform(store, settings) as p:
            pid = patient(p, "Minh", [FACILITY_A, FACILITY_B])
            assert subscribe(p, "A", f"Observation?patient={pid}", receiver.url).is_success
            obs = lab(p, "B", pid, 5.0)
    finally:
        store.close()
    runner = CliRunner()
    result = runner.invoke(subscriptions_app, ["run", "--once", "--db", url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["delivered"] == 1
    assert delivered_ids(receiver) == [obs]
    listed = runner.invoke(subscriptions_app, ["list", "--db", url])
    assert listed.exit_code == 0 and '"status": "active"' in listed.stdout


def test_a_system_cannot_subscribe_to_what_its_scopes_do_not_read(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    tokens: TokenService = p.app.state.tokens
    new = create_client(
        tokens.engine, "Lịch hẹn", ["system/Patient.rs", "system/Subscription.cruds"], FACILITY_A
    )
    principal = authenticate_client(tokens.engine, new.client_id, new.client_secret)
    p.tokens["appointments"] = tokens.issue(principal)[0]

    r = subscribe(p, "appointments", "Observation?category=laboratory", receiver.url)

    assert r.status_code == 403, r.text
    with p.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscription)).scalar_one() == 0


def test_without_payload_the_notification_is_empty(platform: Platform, receiver: Receiver) -> None:
    p = platform
    pid = patient(p, "Nga", [FACILITY_A, FACILITY_B])
    body = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Báo có kết quả mới",
        "criteria": f"Observation?patient={pid}",
        "channel": {"type": "rest-hook", "endpoint": receiver.url},
    }
    assert p.api.post("/fhir/Subscription", json=body, headers=p.as_("A")).status_code == 201
    lab(p, "B", pid, 6.0)

    assert p.dispatcher().run_once().delivered == 1
    assert receiver.received[0]["body"] is None  # the receiver reads the change itself
    assert "Content-Type" not in receiver.received[0]["headers"]


def test_a_subscription_past_its_end_sends_nothing(platform: Platform, receiver: Receiver) -> None:
    p = platform
    pid = patient(p, "Oanh", [FACILITY_A, FACILITY_B])
    end = (p.clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = subscribe(p, "A", f"Observation?patient={pid}", receiver.url)
    sub = r.json()
    sub["end"] = end
    assert p.api.put(f"/fhir/Subscription/{sub['id']}", json=sub, headers=p.as_("A")).is_success
    lab(p, "B", pid, 1.5)
    p.clock.advance(2 * 3600)

    assert p.dispatcher().run_once().queued == 0
    assert receiver.received == []


def test_the_lease_passes_to_another_process_when_its_holder_stops_renewing(
    store: FhirStore,
) -> None:
    from sokhoe.access.db import access_engine
    from sokhoe.interop.subscriptions.lease import release_lease, take_lease

    engine = access_engine(store)
    t0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    minute = timedelta(seconds=60)
    assert take_lease(engine, "dispatcher", "p1", t0, minute)
    assert not take_lease(engine, "dispatcher", "p2", t0 + timedelta(seconds=30), minute)
    assert take_lease(engine, "dispatcher", "p1", t0 + timedelta(seconds=30), minute)  # renewal
    assert not take_lease(engine, "dispatcher", "p2", t0 + timedelta(seconds=80), minute)
    assert take_lease(engine, "dispatcher", "p2", t0 + timedelta(seconds=91), minute)  # expired
    assert not take_lease(engine, "dispatcher", "p1", t0 + timedelta(seconds=92), minute)
    release_lease(engine, "dispatcher", "p1")  # not its lease: nothing happens
    assert not take_lease(engine, "dispatcher", "p1", t0 + timedelta(seconds=93), minute)
    release_lease(engine, "dispatcher", "p2")
    assert take_lease(engine, "dispatcher", "p1", t0 + timedelta(seconds=94), minute)


def test_notifications_never_reach_the_cloud_metadata_address() -> None:
    """Server-side request forgery: the sender refuses the metadata address before any
    request, even when the owner's list names its origin (only a network entry containing it
    would allow it); the attempt says why."""
    from sokhoe.interop.subscriptions import AllowList, EndpointPolicy, HttpSender, Notification

    sender = HttpSender(EndpointPolicy(), timeout=1.0)
    listed = AllowList.of(["https://169.254.169.254"])
    try:
        attempt = sender(
            Notification(
                "https://169.254.169.254/latest/meta-data", b"{}", (), "application/json", listed
            )
        )
    finally:
        sender.close()
    assert not attempt.ok and attempt.error is not None
    assert "link-local" in attempt.error and "may not reach" in attempt.error
