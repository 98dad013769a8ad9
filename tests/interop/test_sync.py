"""``sokhoe sync``: a commune station's node and its provincial server, both real processes.

Each test starts two ``sokhoe serve`` processes on loopback (their own SQLite files and var
folders): the station, where the station's HIS checks people in and records observations,
and upstream, where the station is a connected system of facility 79001 and a hospital
(79002) writes too. The sync runs through the Python API against the real HTTP servers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from sokhoe.access.clients import create_client
from sokhoe.access.guard import platform_repository
from sokhoe.bootstrap import publish_registry
from sokhoe.fhir.resources import parse_instant, same_content
from sokhoe.interop.sync import SyncInterrupted, SyncReport, SyncTarget, synchronise
from sokhoe.interop.sync.cli import sync_app
from sokhoe.interop.sync.review import TASK_CODE
from sokhoe.interop.sync.state import SAFETY_MARGIN, Synced, SyncState
from sokhoe.store.sql import SqlStore, open_store
from tests import forked
from tests.prepared import prepared

STATION = "79001"
HOSPITAL = "79002"
PEOPLE = 6
OBSERVATIONS = 3


def _qr(i: int) -> str:
    """The CCCD QR of person ``i`` (male, born 1990 in Hồ Chí Minh City)."""
    return f"0790900{i:05d}|Nguyễn Văn Người{i}|15031990|Nam|Xã Tân Phú, TP Hồ Chí Minh|01022021"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare_node(folder: Path) -> None:
    """A new node's database, migrated and with the registry and the drug catalogue a first
    ``sokhoe serve`` publishes, written once per test process: each server starts on a copy
    (and makes its own keys), so only the sync's own writes differ between them."""
    store = open_store(f"sqlite:///{folder / 'node.db'}")
    try:
        publish_registry(platform_repository(store, "http://127.0.0.1/fhir"))
    finally:
        store.close()


class Server:
    """``sokhoe serve`` as a process of its own on one SQLite file; restartable on the same
    port. Forked from a process that imported sokhoe once (``tests/forked.py``)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.url = f"sqlite:///{folder / 'node.db'}"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: BaseProcess | None = None
        prepared("sync-node", folder, _prepare_node)  # as a first start leaves a new node

    def client(self, name: str, facility: str | None) -> tuple[str, str]:
        store = SqlStore(self.url)
        try:
            new = create_client(store.writer, name, ["system/*.cruds"], facility)
        finally:
            store.close()
        return new.client_id, new.client_secret

    def start(self) -> None:
        self.launch()
        self.wait()

    def launch(self) -> None:
        self.process = forked.start(
            ["serve", "--db", self.url, "--port", str(self.port)],
            {"SOKHOE_VAR_DIR": str(self.folder / "var")},
            self.folder / "server.log",
        )

    def running(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def wait(self) -> None:
        if self.process is None:
            raise RuntimeError("not launched")
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/fhir/metadata", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self.running() or time.monotonic() > deadline:
                log = (self.folder / "server.log").read_text(errors="replace")
                raise RuntimeError(f"sokhoe serve did not start:\n{log[-3000:]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """``kill -9``: no clean shutdown, as a power cut or a crash."""
        if self.process is not None and self.running():
            self.process.kill()
            self.process.join(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.running():
            self.process.terminate()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=10)


class Api:
    """A signed-in FHIR client of one server."""

    def __init__(self, server: Server, client_id: str, secret: str) -> None:
        self.server = server
        self.http = httpx.Client(base_url=f"{server.base}/fhir", timeout=30)
        r = httpx.post(
            f"{server.base}/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def check_in(self, qr: str) -> str:
        body = {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": qr}]}
        r = self.http.post("/Patient/$check-in", json=body)
        assert r.status_code in (200, 201), r.text
        return str(r.json()["id"])

    def observe(self, pid: str, value: float, code: str = "8867-4") -> str:
        r = self.http.post("/Observation", json=_observation(pid, value, code))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def close(self) -> None:
        self.http.close()


def _observation(pid: str, value: float, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "unit": "/min"},
    }


class World:
    """The station, upstream, and who may write where."""

    def __init__(self, tmp: Path) -> None:
        self.station = Server(tmp / "station")
        self.upstream = Server(tmp / "upstream")
        his = self.station.client("HIS trạm y tế", STATION)
        sync_id, sync_secret = self.upstream.client("Trạm y tế xã Tân Phú", STATION)
        hospital = self.upstream.client("HIS Bệnh viện quận", HOSPITAL)
        online = self.upstream.client("HIS trạm y tế (trực tuyến)", STATION)
        self.target = SyncTarget(self.upstream.base, sync_id, sync_secret, STATION, timeout=10)
        self.station.launch()  # both boot at once
        self.upstream.launch()
        self.station.wait()
        self.upstream.wait()
        self.his = Api(self.station, *his)
        self.hospital = Api(self.upstream, *hospital)
        self.online = Api(self.upstream, *online)
        """The station's own system working on the province's server when the link is up:
        a facility changes only what it wrote, so the two sides of a clash are one
        facility's two copies."""

    def sync(self, **kwargs: Any) -> SyncReport:
        store = SqlStore(self.station.url)
        try:
            return synchronise(store, f"{self.station.base}/fhir", self.target, **kwargs)
        finally:
            store.close()

    def close(self) -> None:
        self.his.close()
        self.hospital.close()
        self.online.close()
        self.station.stop()
        self.upstream.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def _records(
    url: str, types: tuple[str, ...] = ("Patient", "Observation")
) -> dict[tuple[str, str], dict[str, Any]]:
    """Current content of the catchment's clinical records in one node's database."""
    store = SqlStore(url)
    try:
        return {
            (r.resource_type, r.id): r.content
            for t in types
            for r in store.iter_all(t)
            if not r.deleted and r.content is not None
        }
    finally:
        store.close()


def _assert_same(station: Server, upstream: Server) -> None:
    mine, theirs = _records(station.url), _records(upstream.url)
    assert set(mine) == set(theirs)
    for key, content in mine.items():
        assert same_content(content, theirs[key]), key


def _versions(url: str) -> int:
    store = SqlStore(url)
    try:
        with store.begin() as tx:
            return tx.history(None, None, None, 1, 0)[1]
    finally:
        store.close()


def test_upstream_killed_mid_sync_ends_identical_on_both_sides(world: World) -> None:
    people = [world.his.check_in(_qr(i)) for i in range(PEOPLE)]
    for n, pid in enumerate(people):
        for k in range(OBSERVATIONS):
            world.his.observe(pid, 60 + n + k)
    to_push = PEOPLE * (1 + OBSERVATIONS)

    puts: list[str] = []

    def crash_after_ten(method: str, path: str) -> None:
        if method == "PUT":
            puts.append(path)
            if len(puts) == 11:  # ten PUTs landed; upstream dies before the eleventh
                world.upstream.kill()

    with pytest.raises(SyncInterrupted) as cut:
        world.sync(on_request=crash_after_ten)
    assert cut.value.phase == "push"
    assert 0 < cut.value.done < cut.value.total
    assert "run sync again" in str(cut.value)
    assert puts[0].startswith("Patient/")  # Patients go first (they open upstream's door)
    assert len(_records(world.upstream.url)) == 10  # the ten, nothing more

    world.upstream.start()  # same database, same port
    resumed = world.sync()
    assert resumed.failed == []
    assert resumed.conflicts == 0
    assert cut.value.total == to_push  # records about people; the registry is upstream's
    assert resumed.pushed == to_push - 10  # the rest, each once
    _assert_same(world.station, world.upstream)

    # the province adds to a station patient's record: it comes down on the next sync
    assert world.hospital.check_in(_qr(0)) == people[0]  # found by CCCD, not duplicated
    lab = world.hospital.observe(people[0], 5.4, code="2345-7")
    world.hospital.close()

    def crash_on_pull(method: str, path: str) -> None:
        if "$everything" in path:
            world.upstream.kill()

    with pytest.raises(SyncInterrupted) as cut_in_pull:  # killed again, now while pulling
        world.sync(on_request=crash_on_pull)
    assert cut_in_pull.value.phase == "pull"
    world.upstream.start()
    pulled = world.sync()
    assert (pulled.pushed, pulled.pulled, pulled.conflicts) == (0, 2, 0)
    _assert_same(world.station, world.upstream)
    assert ("Observation", lab) in _records(world.station.url)
    assert len(_records(world.upstream.url, ("Patient",))) == PEOPLE

    # nothing new: nothing transferred, no new version anywhere
    before = (_versions(world.station.url), _versions(world.upstream.url))
    quiet = world.sync()
    assert quiet.transferred == 0 and quiet.conflicts == 0 and quiet.failed == []
    assert (_versions(world.station.url), _versions(world.upstream.url)) == before


def test_concurrent_edits_become_a_review_task_and_both_versions_stay(world: World) -> None:
    pid = world.his.check_in(_qr(1))
    oid = world.his.observe(pid, 70)
    assert world.sync().pushed == 2
    # another facility that checks the person in may not change the station's record
    world.hospital.check_in(_qr(1))
    refused = world.hospital.http.get(f"/Observation/{oid}")
    assert refused.status_code == 403

    here = world.his.http.get(f"/Observation/{oid}").json()
    there = world.online.http.get(f"/Observation/{oid}").json()
    here["valueQuantity"]["value"] = 71
    there["valueQuantity"]["value"] = 99
    assert world.his.http.put(f"/Observation/{oid}", json=here).status_code == 200
    assert world.online.http.put(f"/Observation/{oid}", json=there).status_code == 200

    report = world.sync()
    assert report.conflicts == 1
    assert [(t, i) for t, i, _ in report.open_conflicts] == [("Observation", oid)]
    task_id = report.open_conflicts[0][2]
    assert world.his.http.get(f"/Observation/{oid}").json()["valueQuantity"]["value"] == 71
    assert world.online.http.get(f"/Observation/{oid}").json()["valueQuantity"]["value"] == 99
    task = world.his.http.get(f"/Task/{task_id}").json()
    assert task["code"]["coding"][0]["system"] == TASK_CODE
    assert task["focus"]["reference"] == f"Observation/{oid}"
    inputs = {i["type"]["text"]: i for i in task["input"]}
    assert inputs["local-version"]["valueReference"]["reference"].endswith("/_history/2")
    assert inputs["upstream-version"]["valueUrl"].endswith(f"Observation/{oid}/_history/2")

    again = world.sync()  # still waiting for a person: held, not re-queued or overwritten
    assert again.conflicts == 0 and again.held >= 1
    assert world.online.http.get(f"/Observation/{oid}").json()["valueQuantity"]["value"] == 99

    # the reviewer keeps the station's value (completes the Task): it goes upstream
    _decide(world, task_id, "completed")
    decided = world.sync()
    assert (decided.pushed, decided.conflicts, decided.open_conflicts) == (1, 0, [])
    assert world.online.http.get(f"/Observation/{oid}").json()["valueQuantity"]["value"] == 71
    history = world.online.http.get(f"/Observation/{oid}/_history").json()
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in history["entry"]) == [
        70,
        71,
        99,
    ]  # the province's 99 is kept in history
    _assert_same(world.station, world.upstream)

    # a second clash, and this time the province's value wins (Task rejected)
    here = world.his.http.get(f"/Observation/{oid}").json()
    there = world.online.http.get(f"/Observation/{oid}").json()
    here["valueQuantity"]["value"] = 80
    there["valueQuantity"]["value"] = 88
    assert world.his.http.put(f"/Observation/{oid}", json=here).status_code == 200
    assert world.online.http.put(f"/Observation/{oid}", json=there).status_code == 200
    clash = world.sync()
    assert clash.conflicts == 1
    _decide(world, clash.open_conflicts[0][2], "rejected")
    settled = world.sync()
    assert (settled.pulled, settled.open_conflicts) == (1, [])
    assert world.his.http.get(f"/Observation/{oid}").json()["valueQuantity"]["value"] == 88
    _assert_same(world.station, world.upstream)


def _decide(world: World, task_id: str, status: str) -> None:
    task = world.his.http.get(f"/Task/{task_id}").json()
    task["status"] = status
    assert world.his.http.put(f"/Task/{task_id}", json=task).status_code == 200


def test_a_push_whose_answer_was_lost_is_recognised_not_a_conflict(world: World) -> None:
    pid = world.his.check_in(_qr(3))
    oid = world.his.observe(pid, 70)
    world.sync()
    edited = world.his.http.get(f"/Observation/{oid}").json()
    edited["valueQuantity"]["value"] = 75
    assert world.his.http.put(f"/Observation/{oid}", json=edited).status_code == 200
    assert world.sync().pushed == 1
    # as if the connection dropped after upstream stored version 2 but before its answer
    # reached the station: the station still believes upstream is at version 1
    store = SqlStore(world.station.url)
    try:
        SyncState(store.writer, f"{world.upstream.base}/fhir").record("Observation", oid, 1, 1)
    finally:
        store.close()
    before = _versions(world.upstream.url)
    redo = world.sync()  # If-Match W/"1" gets 412, but upstream holds our very content
    assert (redo.pushed, redo.conflicts, redo.failed) == (0, 0, [])
    assert _versions(world.upstream.url) == before
    _assert_same(world.station, world.upstream)
    again = world.sync()  # and the state is right again: a plain no-op
    assert (again.transferred, again.conflicts) == (0, 0)


def test_cli_reports_a_lost_upstream_clearly(world: World) -> None:
    world.his.check_in(_qr(2))
    world.upstream.kill()
    result = CliRunner().invoke(
        sync_app,
        [
            "--upstream",
            world.upstream.base,
            "--client-id",
            world.target.client_id,
            "--facility",
            STATION,
            "--db",
            world.station.url,
        ],
        env={"SOKHOE_SYNC_CLIENT_SECRET": world.target.client_secret},
    )
    assert result.exit_code == 3, result.output
    assert "unreachable" in result.output and "nothing was changed" in result.output

    world.upstream.start()
    refused = CliRunner().invoke(
        sync_app,
        [
            "--upstream",
            world.upstream.base,
            "--client-id",
            world.target.client_id,
            "--facility",
            STATION,
            "--db",
            world.station.url,
            "--client-secret",
            "wrong",
        ],
    )
    assert refused.exit_code == 2, refused.output
    assert "client credentials" in refused.output
    assert _records(world.upstream.url) == {}  # a refused sync changes nothing

    done = CliRunner().invoke(
        sync_app,
        [
            "--upstream",
            world.upstream.base,
            "--client-id",
            world.target.client_id,
            "--facility",
            STATION,
            "--db",
            world.station.url,
        ],
        env={"SOKHOE_SYNC_CLIENT_SECRET": world.target.client_secret},
    )
    assert done.exit_code == 0, done.output
    assert "pushed 1," in done.output
    _assert_same(world.station, world.upstream)


def test_sync_state_rows_and_watermarks(tmp_path: Path) -> None:
    """The bookkeeping alone (no servers): records, conflicts, watermarks that never go back."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        state = SyncState(store.writer, "http://province.example/fhir")
        other = SyncState(store.writer, "http://elsewhere.example/fhir")
        assert state.get("Observation", "o1") is None
        state.record("Observation", "o1", 2, 5)
        state.mark_conflict("Observation", "o2", "t1", 3, 4)
        assert state.get("Observation", "o1") == Synced(2, 5, None)
        assert state.conflicts() == [("Observation", "o2", "t1")]
        assert other.get("Observation", "o1") is None and other.conflicts() == []
        state.record("Observation", "o2", 4, 6)  # settled: no longer held
        assert state.conflicts() == []

        assert state.since("push") is None
        late = parse_instant("2026-11-23T10:00:00+07:00")
        state.advance("push", late)
        state.advance("push", late - timedelta(minutes=3))  # inside the margin: ignored
        assert state.since("push") == late - SAFETY_MARGIN
        assert other.since("push") is None
    finally:
        store.close()
