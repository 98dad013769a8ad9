"""The MLLP listener on a real TCP port over SQLite: framing, ACKs, allow-list, limits."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sokhoe.access.guard import platform_repository
from sokhoe.config import Settings
from sokhoe.interop.hl7v2.mllp import AllowList, ListenerLimits, MllpServer, as_bytes, frame, send
from sokhoe.interop.hl7v2.processor import Hl7Processor
from sokhoe.mpi.identifiers import CCCD, FACILITY
from sokhoe.store.sql import SqlStore
from tests.interop.test_hl7v2_mapping import (
    BASE,
    SAMPLES,
    edited,
    err,
    msa,
    patients_by,
    prepare,
    sample,
    versions,
)


class Listener:
    """An MllpServer on a free port, its event loop in a thread."""

    def __init__(self, store: SqlStore, allow: AllowList, limits: ListenerLimits) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = MllpServer(Hl7Processor(store, BASE), allow, limits)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop)
        self.port = future.result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'hl7.db'}")
    prepare(store)
    try:
        yield store
    finally:
        store.close()


def _listener(
    store: SqlStore, allow: AllowList, limits: ListenerLimits | None = None
) -> Iterator[Listener]:
    listener = Listener(store, allow, limits or ListenerLimits(4096, 5.0, 1.0))
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def listener(sqlite_store: SqlStore) -> Iterator[Listener]:
    yield from _listener(sqlite_store, AllowList({}, loopback=True))


def test_messages_over_mllp_are_applied_and_acknowledged(
    sqlite_store: SqlStore, listener: Listener
) -> None:
    names = ["adt_a04", "adt_a01", "orm_o01", "oru_r01", "adt_a08", "adt_a03"]
    acks = send([sample(n) for n in names], "127.0.0.1", listener.port)
    assert [msa(a)[1] for a in acks] == ["AA"] * len(names)
    assert [msa(a)[2] for a in acks] == [
        "A04-0001",
        "A01-0001",
        "ORM-0001",
        "ORU-0001",
        "A08-0001",
        "A03-0001",
    ]
    repo = platform_repository(sqlite_store, BASE)
    person = patients_by(repo, CCCD, "079185001234")[0]
    q = repo.parse_query("Observation", [("subject", f"Patient/{person['id']}")], strict=True)
    assert len(repo.search(q).matches) == 4
    # resent on a new connection: the same ACK, nothing written
    before = versions(sqlite_store)
    assert send([sample("oru_r01")], "127.0.0.1", listener.port) == [acks[3]]
    assert versions(sqlite_store) == before


def test_pipelined_messages_are_applied_and_acknowledged_in_order(
    sqlite_store: SqlStore, listener: Listener
) -> None:
    """A sender may write several frames before reading an ACK (MLLP allows it): they are
    applied in order (the result after its registration finds the patient), each ACK names
    its own message, and a refused one in the middle changes nothing and stops nothing."""
    stranger = edited("oru_r01", "ORU-0001", "ORU-0002").replace(b"BN-100234", b"BN-999999")
    batch = [sample("adt_a04"), stranger, sample("oru_r01"), sample("adt_a08")]
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        sock.sendall(b"".join(frame(m) for m in batch))
        data = b""
        while data.count(b"\x1c\x0d") < len(batch):
            chunk = sock.recv(65536)
            assert chunk, "the listener closed before answering every message"
            data += chunk
    acks = [a.removeprefix(b"\x0b").decode() for a in data.split(b"\x1c\x0d")[: len(batch)]]
    assert [msa(a)[2] for a in acks] == ["A04-0001", "ORU-0002", "ORU-0001", "A08-0001"]
    assert [msa(a)[1] for a in acks] == ["AA", "AE", "AA", "AA"]
    assert "PID" in err(acks[1])
    repo = platform_repository(sqlite_store, BASE)
    person = patients_by(repo, CCCD, "079185001234")[0]
    q = repo.parse_query("Observation", [("subject", f"Patient/{person['id']}")], strict=True)
    assert len(repo.search(q).matches) == 4  # the ORU's results, once
    after = versions(sqlite_store)
    again = stranger.replace(b"ORU-0002", b"ORU-0003")
    assert msa(send([again], "127.0.0.1", listener.port)[0])[1] == "AE"
    assert versions(sqlite_store) == after  # a refused message writes nothing


def test_a_facility_not_allowed_from_this_address_is_refused(sqlite_store: SqlStore) -> None:
    """Loopback trust off; 79001 may send from 127.0.0.2 only."""
    allow = AllowList.from_settings({"79001": ["127.0.0.2/32"]}, loopback=False)
    for running in _listener(sqlite_store, allow):
        before = versions(sqlite_store)
        # 127.0.0.1 is on no list: the connection is closed without an answer
        with pytest.raises(ConnectionError):
            send([sample("adt_a04")], "127.0.0.1", running.port, source="127.0.0.1")
        assert versions(sqlite_store) == before
        # from 127.0.0.2 the facility's messages are applied
        ack = send([sample("adt_a04")], "127.0.0.1", running.port, source="127.0.0.2")[0]
        assert msa(ack)[1] == "AA"
    other = AllowList.from_settings({"79001": ["10.0.0.0/8"], "01001": ["127.0.0.3"]}, False)
    for running in _listener(sqlite_store, other):
        before = versions(sqlite_store)
        # 127.0.0.3 may connect (for 01001) but not speak for 79001
        ack = send([sample("adt_a08")], "127.0.0.1", running.port, source="127.0.0.3")[0]
        assert msa(ack)[1] == "AR"
        assert "may not send from 127.0.0.3" in ack
        assert versions(sqlite_store) == before


OTHER_CCCD = "079185009999"


def _from_01001(name: str) -> bytes:
    """A sample as facility 01001 would send it (MSH-4, record numbers, ward), about a person
    the other samples do not name."""
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    return as_bytes(text.replace("79001", "01001").replace("079185001234", OTHER_CCCD))


def _add_facility(store: SqlStore, code: str) -> None:
    organization: dict[str, Any] = {
        "resourceType": "Organization",
        "id": f"org-{code}",
        "name": f"Bệnh viện {code}",
        "identifier": [{"use": "official", "system": FACILITY, "value": code}],
    }
    platform_repository(store, BASE).update(organization, "Organization", organization["id"])


def test_by_default_loopback_speaks_only_for_the_facilities_that_list_it(
    sqlite_store: SqlStore,
) -> None:
    """Strict default (``hl7_allow_loopback`` off): listed for 79001, a loopback sender is
    refused for 01001, a facility the platform knows that does not list it (AR naming MSH-4,
    nothing written), and accepted for 79001."""
    assert Settings.model_fields["hl7_allow_loopback"].default is False
    settings = Settings(hl7_allowed_sources={"79001": ["127.0.0.1/32"]})
    allow = AllowList.from_settings(settings.hl7_allowed_sources, settings.hl7_allow_loopback)
    _add_facility(sqlite_store, "01001")
    for running in _listener(sqlite_store, allow):
        before = versions(sqlite_store)
        refused = send([_from_01001("adt_a04")], "127.0.0.1", running.port)[0]
        assert msa(refused)[1:3] == ["AR", "A04-0001"]
        assert err(refused).split("|")[2] == "MSH^1^4"
        assert "MSH-4 facility 01001 may not send from 127.0.0.1" in refused
        assert versions(sqlite_store) == before
        accepted = send([sample("adt_a04")], "127.0.0.1", running.port)[0]
        assert msa(accepted)[1:3] == ["AA", "A04-0001"]
        assert versions(sqlite_store) > before
    repo = platform_repository(sqlite_store, BASE)
    assert patients_by(repo, CCCD, OTHER_CCCD) == []
    assert len(patients_by(repo, CCCD, "079185001234")) == 1


def test_by_default_a_loopback_sender_no_facility_lists_is_disconnected(
    sqlite_store: SqlStore,
) -> None:
    settings = Settings(hl7_allowed_sources={})
    allow = AllowList.from_settings(settings.hl7_allowed_sources, settings.hl7_allow_loopback)
    for running in _listener(sqlite_store, allow):
        before = versions(sqlite_store)
        with pytest.raises(ConnectionError):
            send([sample("adt_a04")], "127.0.0.1", running.port)
        assert versions(sqlite_store) == before


def _raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def test_bad_framing_and_oversized_messages_get_a_reject(
    sqlite_store: SqlStore, listener: Listener
) -> None:
    before = versions(sqlite_store)
    answer = _raw_exchange(listener.port, sample("adt_a04") + b"\x1c\x0d")  # no 0x0B
    assert b"MSA|AR|" in answer and b"0x0B" in answer
    huge = sample("adt_a04") + b"\rNTE|1||" + b"x" * 5000
    answer = _raw_exchange(listener.port, frame(huge))
    assert b"MSA|AR|" in answer and b"longer than 4096 bytes" in answer
    # a frame never finished times out (read timeout 1 s) with a reject
    answer = _raw_exchange(listener.port, b"\x0b" + sample("adt_a04"))
    assert b"MSA|AR|" in answer and b"not completed in time" in answer
    assert versions(sqlite_store) == before


def test_the_cli_sends_files(sqlite_store: SqlStore, listener: Listener) -> None:
    from typer.testing import CliRunner

    from sokhoe.interop.hl7v2.cli import hl7_app

    samples = Path(__file__).parent / "hl7_samples"
    args = ["send", str(samples / "adt_a04.hl7"), str(samples / "oru_r01.hl7")]
    result = CliRunner().invoke(hl7_app, [*args, "--port", str(listener.port)])
    assert result.exit_code == 0, result.output
    assert result.output.count("MSA|AA|") == 2
    broken = CliRunner().invoke(
        hl7_app, ["send", str(samples / "adt_a40.hl7"), "--port", str(listener.port)]
    )
    assert broken.exit_code == 1  # the record to merge (MRG-1) does not exist
    assert "MSA|AE|A40-0001" in broken.output


def test_sokhoe_hl7_listen_serves_a_database(tmp_path: Path) -> None:
    """The command of the contract (DESIGN.md), as a separate process, with the strict default:
    loopback is listed for 79001 only, so it is refused for 01001 (a known facility)."""
    url = f"sqlite:///{tmp_path / 'listen.db'}"
    store = SqlStore(url)
    prepare(store)
    _add_facility(store, "01001")
    store.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKHOE_HL7_")}
    env |= {
        "SOKHOE_VAR_DIR": str(tmp_path),
        "SOKHOE_HL7_ALLOWED_SOURCES": '{"79001": ["127.0.0.1/32"]}',
    }
    command = [sys.executable, "-c", "from sokhoe.cli import main; main()"]
    proc = subprocess.Popen(
        [*command, "hl7", "listen", "--port", str(port), "--db", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                acks = send([sample("adt_a04"), sample("oru_r01")], "127.0.0.1", port)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert [msa(a)[1] for a in acks] == ["AA", "AA"]
        refused = send([_from_01001("adt_a04")], "127.0.0.1", port)[0]
        assert msa(refused)[1] == "AR" and err(refused).split("|")[2] == "MSH^1^4"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    reopened = SqlStore(url)
    try:
        repo = platform_repository(reopened, BASE)
        assert len(patients_by(repo, CCCD, "079185001234")) == 1
        assert patients_by(repo, CCCD, OTHER_CCCD) == []
    finally:
        reopened.close()
