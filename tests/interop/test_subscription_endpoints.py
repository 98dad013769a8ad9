"""Attacks on rest-hook Subscriptions as a way into private networks, and that they fail.

Who may subscribe (connected systems only), where notifications may go (the owner's
allow-list; public addresses, or private ones the list names) and where they actually go (the
one address checked at each delivery, the name kept for TLS and ``Host``). Real components
throughout: the app over HTTP, the store, the dispatcher, ``HttpSender`` and a receiver
listening on loopback; only DNS is answered by the test (:class:`FakeDns`), since names such
as ``his.test`` resolve nowhere and rebinding needs a DNS that changes its answer.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select, update

from sokhoe.access.accounts import ROLE_SCOPES, create_user
from sokhoe.access.otp import citizen_principal
from sokhoe.access.principal import Principal
from sokhoe.access.tokens import TokenService
from sokhoe.config import Settings
from sokhoe.interop.subscriptions import allowlist
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql.access_schema import auth_client
from sokhoe.store.sql.subscription_schema import subscription, subscription_delivery
from tests.conftest import BASE, FAST_HASHER
from tests.interop.subscription_world import (
    FACILITY_A,
    FACILITY_B,
    LOOPBACK,
    Platform,
    Receiver,
    delivered_ids,
    lab,
    open_platform,
    patient,
    serve_receiver,
    subscribe,
)

PUBLIC = "93.184.215.14"
"""A public address the tests let names resolve to; nothing ever connects to it."""
WHERE = ["Subscription.channel.endpoint"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as rec:
        yield rec


@pytest.fixture
def strict() -> Settings:
    """The production setting, written out: loopback is not allowed by default."""
    return Settings(base_url=BASE, database_url="sqlite://", subscription_allow_loopback=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FhirStore]:
    """SQLite only: where a notification may go does not depend on the store (the
    dispatcher's own tests, ``test_subscriptions.py``, run on every store)."""
    from sokhoe.store.sql import SqlStore

    made = SqlStore(f"sqlite:///{tmp_path / 'endpoints.db'}")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def platform(store: FhirStore, strict: Settings) -> Iterator[Platform]:
    with open_platform(store, strict) as p:
        yield p


@pytest.fixture(scope="module")
def shared() -> Iterator[Platform]:
    """One memory-store platform for the many cases that only refuse (nothing is stored) or
    each use their own names and patients."""
    settings = Settings(base_url=BASE, database_url="sqlite://", subscription_allow_loopback=False)
    with open_platform(MemoryStore(), settings) as p:
        p.add_system("HIS", FACILITY_A, ["https://his.bvcr.vn"])
        yield p


def _count(p: Platform) -> int:
    with p.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(subscription)).scalar_one())


def _searched(p: Platform) -> int:
    found = p.api.get("/fhir/Subscription", headers=p.as_("platform")).json()
    return int(found.get("total", 0))


def _refused(r: Any, status: int, *expected: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    outcome: dict[str, Any] = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = outcome["issue"][0]
    for text in expected:
        assert text in issue["diagnostics"], issue
    return issue


def _delivery(p: Platform, sid: str) -> Any:
    with p.engine.connect() as conn:
        return conn.execute(
            select(subscription_delivery).where(subscription_delivery.c.subscription_id == sid)
        ).one()


# -- who may subscribe ----------------------------------------------------------------------
def test_staff_and_citizens_cannot_create_change_or_delete_subscriptions(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "An", [FACILITY_A])
    tokens: TokenService = p.app.state.tokens
    create_user(
        tokens.engine,
        "bs.lan",
        "mật-khẩu-dài-2026",
        "doctor",
        "BS. Lan",
        FACILITY_A,
        hasher=FAST_HASHER,
    )
    doctor = Principal(
        kind="staff",
        subject="bs.lan",
        display="BS. Lan",
        role="doctor",
        facility=FACILITY_A,
        scopes=ROLE_SCOPES["doctor"],
    )
    p.tokens["doctor"] = tokens.issue(doctor)[0]
    p.tokens["citizen"] = tokens.issue(citizen_principal("0901234567", pid))[0]
    criteria = f"Observation?patient={pid}"

    for who in ("doctor", "citizen"):
        issue = _refused(subscribe(p, who, criteria, receiver.url), 403, "connected systems")
        assert issue["code"] == "forbidden"
    assert _count(p) == 0 and _searched(p) == 0

    sub = subscribe(p, "A", criteria, receiver.url).json()
    changed = {**sub, "channel": {**sub["channel"], "endpoint": "http://10.0.0.1/"}}
    for who in ("doctor", "citizen"):
        put = p.api.put(f"/fhir/Subscription/{sub['id']}", json=changed, headers=p.as_(who))
        _refused(put, 403, "connected systems")
        gone = p.api.delete(f"/fhir/Subscription/{sub['id']}", headers=p.as_(who))
        _refused(gone, 403, "connected systems")
    with p.engine.connect() as conn:
        rows = conn.execute(select(subscription.c.endpoint, subscription.c.status)).all()
    assert [tuple(r) for r in rows] == [(receiver.url, "active")]


# -- the allow-list ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "endpoint",
    [
        "https://his.other.vn/hook",
        "https://his.bvcr.vn:8443/hook",  # another port is another origin
        "http://his.bvcr.vn/hook",  # and another scheme
        "https://api.his.bvcr.vn/hook",  # no sub-domains
        "https://his.bvcr.vn.attacker.vn/hook",
        "http://localhost/hook",
        "http://2130706433/hook",  # 127.0.0.1 as a number: a name to the URL, never resolved
    ],
)
def test_an_endpoint_not_on_the_list_is_refused_and_nothing_is_stored(
    shared: Platform, endpoint: str
) -> None:
    p = shared
    p.dns.calls.clear()

    issue = _refused(subscribe(p, "HIS", "Observation?category=laboratory", endpoint), 400)

    assert issue["expression"] == WHERE and "allow-list" in issue["diagnostics"]
    assert _count(p) == 0 and _searched(p) == 0
    assert p.dns.calls == []  # a name not on the list is never even resolved


def test_any_path_under_a_listed_origin_is_accepted_when_its_addresses_are_public(
    shared: Platform,
) -> None:
    p = shared
    p.dns.answers["his.bvcr.vn"] = [[PUBLIC, "2001:4860:4860::8888", "64:ff9b::808:808"]]
    r = subscribe(p, "HIS", "Observation?category=laboratory", "https://HIS.bvcr.vn:443/fhir/x")
    assert r.status_code == 201, r.text
    assert p.api.delete(f"/fhir/Subscription/{r.json()['id']}", headers=p.as_("HIS")).is_success


def test_loopback_is_refused_by_default_and_reached_only_when_listed(
    platform: Platform, receiver: Receiver, strict: Settings
) -> None:
    """The platform's own system (no facility) follows the same rule as a facility's."""
    p = platform
    assert strict.subscription_allow_loopback is False
    assert Settings.model_fields["subscription_allow_loopback"].default is False  # strict default
    pid = patient(p, "Bình", [FACILITY_A])
    criteria = f"Observation?patient={pid}"

    issue = _refused(subscribe(p, "platform", criteria, receiver.url), 400, "127.0.0.1 (loopback)")
    assert issue["expression"] == WHERE
    assert _count(p) == 0 and _searched(p) == 0

    allowlist.add(p.engine, p.clients["platform"], [LOOPBACK])
    assert subscribe(p, "platform", criteria, receiver.url).status_code == 201
    obs = lab(p, "A", pid, 5.5)
    assert p.dispatcher().run_once().delivered == 1
    assert delivered_ids(receiver) == [obs]


def test_the_loopback_override_reaches_this_machine_only(receiver: Receiver) -> None:
    """``subscription_allow_loopback`` (development) lets an unlisted system notify loopback;
    private networks and the metadata address stay refused."""
    settings = Settings(base_url=BASE, database_url="sqlite://", subscription_allow_loopback=True)
    with open_platform(MemoryStore(), settings) as p:
        p.add_system("dev", FACILITY_A, [])
        pid = patient(p, "Cường", [FACILITY_A])
        criteria = f"Observation?patient={pid}"
        for endpoint in ("https://10.0.0.8/hook", "https://169.254.169.254/latest"):
            _refused(subscribe(p, "dev", criteria, endpoint), 400, "may not reach")
        assert subscribe(p, "dev", criteria, receiver.url).status_code == 201
        obs = lab(p, "A", pid, 4.0)
        assert p.dispatcher().run_once().delivered == 1
    assert delivered_ids(receiver) == [obs]


# -- forbidden addresses ----------------------------------------------------------------------
RANGES = [
    ("127.0.0.1", "loopback"),
    ("127.9.9.9", "loopback"),
    ("::1", "loopback"),
    ("10.20.0.5", "private network, RFC 1918"),
    ("172.16.5.4", "private network, RFC 1918"),
    ("192.168.1.10", "private network, RFC 1918"),
    ("100.64.0.1", "CGNAT"),
    ("fd12:3456::1", "unique local"),
    ("169.254.169.254", "link-local, cloud metadata"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not one bound to
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local, cloud metadata"),
    ("::ffff:10.0.0.1", "private network, RFC 1918"),
    ("64:ff9b::a9fe:a9fe", "link-local, cloud metadata"),  # NAT64 of 169.254.169.254
]


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize(("address", "kind"), RANGES)
def test_each_forbidden_range_is_refused_at_registration(
    shared: Platform, address: str, kind: str
) -> None:
    p = shared
    endpoint = f"https://{_host(address)}/hook"

    issue = _refused(subscribe(p, "HIS", "Observation?category=laboratory", endpoint), 400, kind)

    assert issue["expression"] == WHERE and "may" in issue["diagnostics"]
    assert _count(p) == 0 and _searched(p) == 0


@pytest.mark.parametrize(("address", "kind"), RANGES)
def test_each_forbidden_range_is_refused_at_delivery(
    shared: Platform, address: str, kind: str
) -> None:
    """The name answered a public address when the Subscription was registered; at delivery
    it answers a forbidden one: nothing is sent, the attempt says why."""
    p = shared
    host = f"h{RANGES.index((address, kind))}.his.test"
    allowlist.add(p.engine, p.clients["HIS"], [f"https://{host}"])
    p.dns.answers[host] = [[PUBLIC], [address]]
    pid = patient(p, f"Dũng{host}", [FACILITY_A])
    r = subscribe(p, "HIS", f"Observation?patient={pid}", f"https://{host}/hook")
    assert r.status_code == 201, r.text
    lab(p, "HIS", pid, 1.0)
    p.dns.calls.clear()

    report = p.dispatcher(holder="shared").run_once()  # one lease holder for the module

    assert report.delivered == 0 and report.failed == 1
    assert p.dns.calls == [host]
    row = _delivery(p, r.json()["id"])
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("not sent:") and kind in row.last_error
    assert f"resolves to {address}" in row.last_error


def test_every_address_of_a_name_is_checked(shared: Platform) -> None:
    """One forbidden address among public ones refuses the name: the sender may connect to
    any address it was given."""
    p = shared
    allowlist.add(p.engine, p.clients["HIS"], ["https://mixed.his.test"])
    p.dns.answers["mixed.his.test"] = [[PUBLIC, "10.0.0.7"]]
    r = subscribe(p, "HIS", "Observation?category=laboratory", "https://mixed.his.test/hook")
    issue = _refused(r, 400, "resolves to 10.0.0.7", "RFC 1918")
    assert issue["expression"] == WHERE


def test_ipv4_written_in_ipv6_is_judged_as_ipv4_and_connected_as_written() -> None:
    """A NAT64 answer (IPv6-only networks) reaches its embedded IPv4 address through the
    gateway: judged as that address, connected to as written; a mapped one is judged too."""
    from sokhoe.interop.subscriptions import AllowList, EndpointPolicy, EndpointRefused

    answers = {"v6.his.test": ["64:ff9b::808:808"], "mapped.his.test": ["::ffff:10.1.2.3"]}
    policy = EndpointPolicy(resolve=lambda host, _port: answers[host])
    listed = AllowList.of(["https://v6.his.test", "https://mapped.his.test"])

    target = policy.target("https://v6.his.test/hook", listed)
    assert str(target.at(target.addresses[0])) == "https://[64:ff9b::808:808]/hook"
    with pytest.raises(EndpointRefused, match=r"::ffff:10\.1\.2\.3, that is 10\.1\.2\.3"):
        policy.target("https://mapped.his.test/hook", listed)
    inside = AllowList.of([*listed.origins, "10.1.0.0/16"])
    assert policy.target("https://mapped.his.test/hook", inside).named


def test_plain_http_is_refused_to_a_public_address(shared: Platform) -> None:
    p = shared
    allowlist.add(p.engine, p.clients["HIS"], ["http://his.example.vn"])
    p.dns.answers["his.example.vn"] = [[PUBLIC]]
    criteria = "Observation?category=laboratory"

    _refused(subscribe(p, "HIS", criteria, "http://his.example.vn/hook"), 400, "must use https")

    relaxed = dataclasses.replace(p.endpoints, http_hosts=frozenset({"his.example.vn"}))
    p.app.state.subscription_endpoints = relaxed  # SOKHOE_SUBSCRIPTION_HTTP_HOSTS
    try:
        r = subscribe(p, "HIS", criteria, "http://his.example.vn/hook")
        assert r.status_code == 201, r.text
        p.api.delete(f"/fhir/Subscription/{r.json()['id']}", headers=p.as_("HIS"))
    finally:
        p.app.state.subscription_endpoints = p.endpoints


# -- DNS rebinding and pinning ----------------------------------------------------------------
def test_dns_rebinding_never_reaches_loopback(
    store: FhirStore, strict: Settings, receiver: Receiver
) -> None:
    """The name answers a public address when checked at registration and 127.0.0.1 after:
    the delivery checks the answer it connects with, so it connects to nothing."""
    settings = strict.model_copy(update={"subscription_http_hosts": ["his.test"]})
    with open_platform(store, settings) as p:
        p.add_system("HIS", FACILITY_A, [f"http://his.test:{receiver.port}"])  # no 127.0.0.1
        p.dns.answers["his.test"] = [[PUBLIC], ["127.0.0.1"]]
        pid = patient(p, "Em", [FACILITY_A])
        r = subscribe(p, "HIS", f"Observation?patient={pid}", f"http://his.test:{receiver.port}/h")
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        lab(p, "HIS", pid, 2.0)

        report = p.dispatcher(max_attempts=1).run_once()

        assert report.delivered == 0 and report.abandoned == 1
        assert p.dns.calls == ["his.test", "his.test"]  # registration, then one per delivery
        assert receiver.connections == 0 and receiver.received == []
        row = _delivery(p, sid)
        assert row.status == "abandoned"
        assert "resolves to 127.0.0.1 (loopback)" in row.last_error
        sub = p.api.get(f"/fhir/Subscription/{sid}", headers=p.as_("HIS")).json()
        assert sub["status"] == "error" and "127.0.0.1 (loopback)" in sub["error"]


def test_the_connection_goes_to_the_one_address_resolved_with_the_name_as_host(
    platform: Platform, receiver: Receiver
) -> None:
    """``his.test`` resolves nowhere but in the test's DNS: the notification arriving at all
    shows the connection went to the address the check saw, with ``Host: his.test``."""
    p = platform
    endpoint = f"http://his.test:{receiver.port}/hook"
    p.add_system("HIS", FACILITY_A, [f"http://his.test:{receiver.port}", LOOPBACK])
    p.dns.answers["his.test"] = [["127.0.0.1"]]
    pid = patient(p, "Giang", [FACILITY_A])
    assert subscribe(p, "HIS", f"Observation?patient={pid}", endpoint).status_code == 201
    first, second = lab(p, "HIS", pid, 3.0), lab(p, "HIS", pid, 3.1)
    p.dns.calls.clear()

    report = p.dispatcher().run_once()

    assert report.delivered == 2
    assert p.dns.calls == ["his.test", "his.test"]  # exactly one lookup per delivery
    assert delivered_ids(receiver) == [first, second]
    assert [r["headers"]["Host"] for r in receiver.received] == [f"his.test:{receiver.port}"] * 2


def test_a_listed_private_network_is_reached_over_plain_http(
    platform: Platform, receiver: Receiver
) -> None:
    """A hospital system on a private network: its origin and its network listed (here the
    network is loopback, where the test's receiver is)."""
    p = platform
    p.add_system("HIS", FACILITY_B, [f"http://his.bvcr.lan:{receiver.port}", "127.0.0.0/8"])
    p.dns.answers["his.bvcr.lan"] = [["127.0.0.1"]]
    pid = patient(p, "Hà", [FACILITY_B])
    endpoint = f"http://his.bvcr.lan:{receiver.port}/fhir"
    assert subscribe(p, "HIS", f"Observation?patient={pid}", endpoint).status_code == 201
    obs = lab(p, "HIS", pid, 7.0)
    assert p.dispatcher().run_once().delivered == 1
    assert delivered_ids(receiver) == [obs]


def _certificates(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throw-away CA and a certificate for ``name`` only (no IP address in it): the server's
    TLS context, and a client context trusting that CA."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sokhoe test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


def test_tls_goes_to_the_pinned_address_but_is_verified_for_the_name(tmp_path: Path) -> None:
    """SNI carries ``his.test`` and the certificate is checked against it, not against the
    address connected to: a certificate for ``his.test`` (and no IP) is accepted, one for
    another name is refused and nothing is sent."""
    right_server, trust = _certificates(tmp_path, "his.test")
    wrong_server, _ = _certificates(tmp_path, "other.test")
    settings = Settings(base_url=BASE, database_url="sqlite://")
    with (
        serve_receiver(right_server) as right,
        serve_receiver(wrong_server) as wrong,
        open_platform(MemoryStore(), settings) as p,
    ):
        origins = [f"https://his.test:{right.port}", f"https://his.test:{wrong.port}"]
        p.add_system("HIS", FACILITY_A, [*origins, LOOPBACK])
        p.dns.answers["his.test"] = [["127.0.0.1"]]
        pid = patient(p, "Khoa", [FACILITY_A])
        subs = [
            subscribe(p, "HIS", f"Observation?patient={pid}", f"{origin}/hook").json()["id"]
            for origin in origins
        ]
        obs = lab(p, "HIS", pid, 8.0)

        report = p.dispatcher(verify=trust).run_once()

        assert (report.delivered, report.failed) == (1, 1)
        assert delivered_ids(right) == [obs]
        assert right.server_names == ["his.test"]
        assert right.received[0]["headers"]["Host"] == f"his.test:{right.port}"
        assert wrong.received == []
        refused = _delivery(p, subs[1])
        assert refused.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in refused.last_error


# -- the list at delivery ---------------------------------------------------------------------
def test_a_delivery_the_list_no_longer_covers_is_not_sent(
    platform: Platform, receiver: Receiver
) -> None:
    p = platform
    pid = patient(p, "Lan", [FACILITY_A, FACILITY_B])
    sid = subscribe(p, "A", f"Observation?patient={pid}", receiver.url).json()["id"]
    first = lab(p, "B", pid, 1.0)
    dispatcher = p.dispatcher()
    assert dispatcher.run_once().delivered == 1

    allowlist.remove(p.engine, p.clients["A"], ["127.0.0.1"])  # the operator withdraws it
    second = lab(p, "B", pid, 1.1)
    assert dispatcher.run_once().failed == 1
    assert delivered_ids(receiver) == [first] and receiver.connections == 1
    row = next(r for r in _deliveries(p, sid) if r.resource_id == second)
    assert row.status == "pending" and "127.0.0.1 (loopback)" in row.last_error

    allowlist.add(p.engine, p.clients["A"], [LOOPBACK])  # and gives it back
    p.clock.advance(3600)
    assert dispatcher.run_once().delivered == 1
    assert delivered_ids(receiver) == [first, second]


def _deliveries(p: Platform, sid: str) -> list[Any]:
    with p.engine.connect() as conn:
        return list(
            conn.execute(
                select(subscription_delivery).where(subscription_delivery.c.subscription_id == sid)
            ).all()
        )


def test_a_subscription_owned_by_a_person_is_not_sent(
    platform: Platform, receiver: Receiver
) -> None:
    """A row registered before only connected systems could subscribe: not served."""
    p = platform
    pid = patient(p, "Minh", [FACILITY_A])
    sid = subscribe(p, "A", f"Observation?patient={pid}", receiver.url).json()["id"]
    with p.engine.begin() as conn:
        conn.execute(
            update(subscription)
            .where(subscription.c.id == sid)
            .values(owner="bs.lan", owner_kind="staff", owner_role="doctor", scopes="user/*.cruds")
        )
    lab(p, "A", pid, 6.1)

    assert p.dispatcher().run_once().failed == 1
    assert receiver.connections == 0
    assert "owned by a staff account" in _delivery(p, sid).last_error


# -- the operator's commands ------------------------------------------------------------------
def test_cli_manages_a_systems_endpoints(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sokhoe.cli import app as cli
    from sokhoe.store.sql import SqlStore

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    run = CliRunner().invoke
    create = ["client", "create", "--scope", "system/Patient.rs", "--db", db, "--name"]
    made = run(
        cli,
        [
            *create,
            "HIS Chợ Rẫy",
            "--endpoint",
            "https://HIS.bvcr.vn:443",
            "--endpoint",
            "10.20.0.0/24",
        ],
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    cid = created["client_id"]
    assert created["endpoints"] == ["10.20.0.0/24", "https://his.bvcr.vn"]

    def endpoints(*args: str) -> Any:
        return run(cli, ["client", "endpoints", cid, *args, "--db", db])

    added = endpoints("--add", "10.20.1.7", "--add", "https://his.bvcr.vn:8443")
    assert added.exit_code == 0, added.output
    assert added.stdout.split() == [
        "10.20.0.0/24",
        "10.20.1.7/32",
        "https://his.bvcr.vn",
        "https://his.bvcr.vn:8443",
    ]
    removed = endpoints("--remove", "10.20.0.0/24", "--remove", "https://his.bvcr.vn:443")
    assert removed.stdout.split() == ["10.20.1.7/32", "https://his.bvcr.vn:8443"]
    for bad in (
        ["--add", "0.0.0.0/0"],
        ["--add", "https://his.bvcr.vn/fhir"],
        ["--add", "10.20.0.1/24"],
        ["--add", "10.9.9.9", "--add", "ftp://x"],  # nothing added when one is bad
        ["--remove", "10.99.0.0/16"],
    ):
        refused = endpoints(*bad)
        assert refused.exit_code == 2, (bad, refused.output)
    assert endpoints().stdout.split() == ["10.20.1.7/32", "https://his.bvcr.vn:8443"]
    assert run(cli, ["client", "endpoints", "c-nobody", "--db", db]).exit_code == 2

    bad_create = run(cli, [*create, "x", "--endpoint", "169.254.0.0/16", "--endpoint", "224.0.0.1"])
    assert bad_create.exit_code == 2
    store = SqlStore(db)
    try:
        with store.writer.connect() as conn:
            assert conn.execute(select(func.count()).select_from(auth_client)).scalar_one() == 1
    finally:
        store.close()
