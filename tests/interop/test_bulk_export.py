"""FHIR Bulk Data ``$export`` end to end over HTTP: kick-off, polling, NDJSON files, ``_type``,
``_since``, Group level, access (facility callers, other callers), cancellation, restarts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.policy import Policy
from sokhoe.access.principal import Principal
from sokhoe.config import Settings
from sokhoe.errors import Forbidden
from sokhoe.interop.bulk.export import (
    ExportContext,
    ExportOptions,
    ExportRequest,
    run_export,
    select_resources,
)
from sokhoe.interop.bulk.jobs import STALE_AFTER, BulkJobs
from sokhoe.interop.bulk.service import BulkExportService
from sokhoe.operations.export import authorise_export
from sokhoe.store import MemoryStore
from sokhoe.store.ports import FhirStore, StoredResource
from sokhoe.store.sql.access_schema import audit_event
from sokhoe.web.app import create_app
from tests.api_helpers import check_in, client_auth, observation
from tests.bulk_sample import Loaded
from tests.conftest import BASE, platform_token

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
QR_AN = "079090001234|Nguyễn Văn An|15031990|Nam|12 Lê Lợi, TP Hồ Chí Minh|01022021"

Key = tuple[str, str]


# -- helpers shared with test_bulk_import.py -----------------------------------------------
def make_api(store: FhirStore, var_dir: Path) -> TestClient:
    settings = Settings(base_url=BASE, database_url="sqlite://", var_dir=var_dir)
    return TestClient(create_app(settings, store), base_url=BASE)


def platform_auth(api: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {platform_token(api.app)}"}  # type: ignore[arg-type]


def held(store: FhirStore, keep: Any = None) -> Counter[Key]:
    """(type, id) of every current resource of the store (optionally filtered)."""
    return Counter((r.resource_type, r.id) for r in store.iter_all() if keep is None or keep(r))


# -- export helpers ------------------------------------------------------------------------
def kick_off(api: TestClient, url: str, auth: dict[str, str]) -> str:
    r = api.get(url, headers={**ASYNC, **auth})
    assert r.status_code == 202, r.text
    return r.headers["content-location"]


def wait(api: TestClient, status_url: str, auth: dict[str, str]) -> dict[str, Any]:
    """Poll until the manifest. The worker is awaited first: the in-memory store's access
    database is one SQLite connection that a poll must not share with a running worker (the
    202 answers while running are tested on a job held running)."""
    exports: BulkExportService = api.app.state.bulk  # type: ignore[attr-defined]
    exports.wait(status_url.rsplit("/", 1)[1], timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = api.get(status_url, headers=auth)
        if r.status_code == 200:
            assert r.headers["content-type"].startswith("application/json")
            manifest: dict[str, Any] = r.json()
            return manifest
        assert r.status_code == 202, r.text
        assert r.headers["retry-after"]
        assert "resources written" in r.headers["x-progress"]
        time.sleep(0.05)
    raise AssertionError("the export did not finish in 60 s")


def download(api: TestClient, manifest: dict[str, Any], auth: dict[str, str]) -> Counter[Key]:
    got: Counter[Key] = Counter()
    for out in manifest["output"]:
        r = api.get(out["url"], headers=auth)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(x) for x in r.content.splitlines() if x.strip()]
        assert len(lines) == out["count"]
        assert {x["resourceType"] for x in lines} == {out["type"]}
        got.update((x["resourceType"], x["id"]) for x in lines)
    return got


def export(api: TestClient, url: str, auth: dict[str, str]) -> tuple[dict[str, Any], Counter[Key]]:
    manifest = wait(api, kick_off(api, url, auth), auth)
    return manifest, download(api, manifest, auth)


@pytest.fixture
def api(store: FhirStore, tmp_path: Path) -> Iterator[TestClient]:
    with make_api(store, tmp_path) as c:
        yield c


@pytest.fixture
def bulk_store(bulk_loaded: Loaded) -> FhirStore:
    """A store of each kind holding the bulk sample (``tests/bulk_sample.py``: a copy of the
    one loaded once per test process; loading it, tested in ``test_synthea_bulk.py``, is what
    costs, not exporting it)."""
    assert bulk_loaded.report.errors == []
    assert bulk_loaded.report.resources == 7160
    return bulk_loaded.store


@pytest.fixture
def bulk_api(bulk_store: FhirStore, tmp_path: Path) -> Iterator[TestClient]:
    with make_api(bulk_store, tmp_path) as c:
        yield c


@pytest.fixture
def memory_api(bulk_10: Loaded, tmp_path: Path) -> Iterator[TestClient]:
    assert isinstance(bulk_10.store, MemoryStore)
    with make_api(bulk_10.store.fork(), tmp_path) as c:
        yield c


def _store(api: TestClient) -> FhirStore:
    store: FhirStore = api.app.state.store  # type: ignore[attr-defined]
    return store


# -- tests ---------------------------------------------------------------------------------
def test_system_export_returns_exactly_what_the_store_holds(
    bulk_api: TestClient, bulk_store: FhirStore, tmp_path: Path
) -> None:
    api, store = bulk_api, bulk_store
    auth = platform_auth(api)
    status_url = kick_off(api, "/fhir/$export?_outputFormat=application/fhir%2Bndjson", auth)
    assert status_url.startswith(f"{BASE}/fhir/bulk/")
    manifest = wait(api, status_url, auth)
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/fhir/$export?_outputFormat=application/fhir%2Bndjson")
    assert manifest["error"] == []
    datetime.fromisoformat(manifest["transactionTime"].replace("Z", "+00:00"))
    got = download(api, manifest, auth)
    assert got == held(store)
    assert sum(got.values()) == 7160
    # files live under var/bulk/{job}; the content is what a read returns (with meta)
    job_id = status_url.rsplit("/", 1)[1]
    assert sorted(p.name for p in (tmp_path / "bulk" / job_id).iterdir()) == sorted(
        o["url"].rsplit("/", 1)[1] for o in manifest["output"]
    )


def test_patient_level_export_is_every_patient_compartment(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    _, got = export(memory_api, "/fhir/Patient/$export", auth)
    store = _store(memory_api)
    assert got == held(store, lambda r: r.patient_id is not None)
    assert ("Organization", next(iter(held(store, _organisation)))[1]) not in got


def _organisation(r: StoredResource) -> bool:
    return r.resource_type == "Organization"


def test_type_and_since_narrow_the_export(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    store = _store(memory_api)
    _, got = export(memory_api, "/fhir/$export?_type=Patient,Condition", auth)
    assert got == held(store, lambda r: r.resource_type in ("Patient", "Condition"))

    since = datetime.now(UTC)
    time.sleep(0.01)
    pid = next(k[1] for k in held(store) if k[0] == "Patient")
    created = memory_api.post("/fhir/Observation", json=observation(pid), headers=auth)
    assert created.status_code == 201
    stamp = since.isoformat().replace("+00:00", "Z")
    _, got = export(memory_api, f"/fhir/$export?_since={stamp}", auth)
    assert got == Counter({("Observation", created.json()["id"]): 1})
    _, got = export(memory_api, f"/fhir/Patient/$export?_since={stamp}&_type=Patient", auth)
    assert got == Counter()


def test_group_export_holds_only_the_members_compartments(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    store = _store(memory_api)
    patients = sorted(k[1] for k in held(store) if k[0] == "Patient")[:2]
    group = {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patients],
    }
    gid = memory_api.post("/fhir/Group", json=group, headers=auth).json()["id"]
    _, got = export(memory_api, f"/fhir/Group/{gid}/$export", auth)
    expected = held(store, lambda r: r.patient_id in patients)
    assert got == expected
    assert {k[0] for k in got} >= {"Patient", "Encounter", "Condition"}
    assert len({k[1] for k in got if k[0] == "Patient"}) == 2
    _, got = export(memory_api, f"/fhir/Group/{gid}/$export?_type=Encounter", auth)
    assert got == held(store, lambda r: r.patient_id in patients and r.resource_type == "Encounter")
    r = memory_api.get("/fhir/Group/nope/$export", headers={**ASYNC, **auth})
    assert r.status_code == 404


def test_post_kick_off_takes_parameters(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "_outputFormat", "valueString": "ndjson"},
        ],
    }
    r = memory_api.post("/fhir/$export", json=body, headers={**ASYNC, **auth})
    assert r.status_code == 202, r.text
    manifest = wait(memory_api, r.headers["content-location"], auth)
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    assert manifest["output"][0]["count"] == 13


@pytest.mark.parametrize(
    ("url", "headers", "fragment"),
    [
        ("/fhir/$export", {"Accept": "application/fhir+json"}, "respond-async"),
        ("/fhir/$export?_type=Patient,Nonsense", ASYNC, "Nonsense"),
        ("/fhir/$export?_typeFilter=Patient%3Factive%3Dtrue", ASYNC, "_typeFilter"),
        ("/fhir/$export?_since=yesterday", ASYNC, "_since"),
        ("/fhir/$export?_outputFormat=text/csv", ASYNC, "_outputFormat"),
        ("/fhir/$export?_count=3", ASYNC, "_count"),
        ("/fhir/Patient/$export", {"Prefer": "respond-async", "Accept": "text/html"}, "Accept"),
    ],
)
def test_bad_kick_offs_are_refused_with_an_outcome(
    tmp_path: Path, url: str, headers: dict[str, str], fragment: str
) -> None:
    with make_api(MemoryStore(), tmp_path) as api:
        auth = platform_auth(api)
        r = api.get(url, headers={**headers, **auth})
        assert r.status_code == 400, r.text
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert fragment in outcome["issue"][0]["diagnostics"]
        jobs = BulkJobs(api.app.state.tokens.engine)  # type: ignore[attr-defined]
        with jobs.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM bulk_job").scalar_one() == 0


def test_facility_caller_exports_only_its_patients(
    bulk_api: TestClient, bulk_store: FhirStore
) -> None:
    api, store = bulk_api, bulk_store
    hcm = client_auth(api, ["system/*.rs", "system/Patient.cu"], "79001")
    pid = check_in(api, hcm, QR_AN)
    platform = platform_auth(api)
    obs = api.post("/fhir/Observation", json=observation(pid), headers=platform).json()["id"]
    manifest, got = export(api, "/fhir/$export", hcm)
    patients_seen = {k[1] for k in got if k[0] == "Patient"}
    assert patients_seen == {pid}
    assert ("Observation", obs) in got
    # shared resources (no patient) come too; no other patient's data does
    assert got == held(store, lambda r: r.patient_id in (None, pid))
    # one export AuditEvent for the job, naming the one patient
    engine = api.app.state.tokens.engine  # type: ignore[attr-defined]
    a = audit_event.c
    with engine.connect() as conn:
        rows = conn.execute(select(a.patient_id, a.outcome).where(a.action == "export")).all()
    assert [(r.patient_id, r.outcome) for r in rows] == [(pid, "success")]
    assert manifest["output"]


def test_others_cannot_see_poll_download_or_cancel_a_job(memory_api: TestClient) -> None:
    owner = platform_auth(memory_api)
    other = platform_auth(memory_api)
    status_url = kick_off(memory_api, "/fhir/$export?_type=Patient", owner)
    manifest = wait(memory_api, status_url, owner)
    file_url = manifest["output"][0]["url"]
    assert memory_api.get(status_url, headers=other).status_code == 404
    assert memory_api.get(file_url, headers=other).status_code == 404
    assert memory_api.delete(status_url, headers=other).status_code == 404
    assert memory_api.get(file_url).status_code == 401
    # and nothing but output files is served from the job folder
    assert memory_api.get(status_url + "/..%2F..%2Fsokhoe.db", headers=owner).status_code == 404
    assert memory_api.get(file_url, headers=owner).status_code == 200


def test_delete_cancels_and_removes_the_files(memory_api: TestClient, tmp_path: Path) -> None:
    auth = platform_auth(memory_api)
    status_url = kick_off(memory_api, "/fhir/$export", auth)
    manifest = wait(memory_api, status_url, auth)
    job_id = status_url.rsplit("/", 1)[1]
    assert (tmp_path / "bulk" / job_id).is_dir()
    r = memory_api.delete(status_url, headers=auth)
    assert r.status_code == 202
    assert not (tmp_path / "bulk" / job_id).exists()
    assert memory_api.get(status_url, headers=auth).status_code == 404
    assert memory_api.get(manifest["output"][0]["url"], headers=auth).status_code == 404


def test_finished_exports_expire_with_their_files(memory_api: TestClient, tmp_path: Path) -> None:
    """Exported files hold whole records: a day after the job finished they are gone (the
    next kick-off sweeps them), and a fresh job is untouched."""
    from datetime import timedelta

    auth = platform_auth(memory_api)
    old_url = kick_off(memory_api, "/fhir/$export?_type=Patient", auth)
    wait(memory_api, old_url, auth)
    old_id = old_url.rsplit("/", 1)[1]
    assert _service(memory_api).expire(timedelta(hours=1)) == []  # not old enough yet
    assert _service(memory_api).expire(timedelta(0)) == [old_id]
    assert not (tmp_path / "bulk" / old_id).exists()
    assert memory_api.get(old_url, headers=auth).status_code == 404


def _service(api: TestClient) -> BulkExportService:
    exports: BulkExportService = api.app.state.bulk  # type: ignore[attr-defined]
    return exports


def test_a_job_cancelled_while_running_stops_and_cleans_up(
    memory_api: TestClient, tmp_path: Path
) -> None:
    """The runner checks the job row every ``progress_every`` resources: once the row is gone
    (DELETE from any server process) it stops and removes what it wrote."""
    exports = _service(memory_api)
    job = exports.jobs.create("a" * 32, "tester", "/fhir/$export", "system", {})
    folder = tmp_path / "cancel-me"
    seen: list[str] = []

    door: GuardedRepository = memory_api.app.state.repository  # type: ignore[attr-defined]
    door = door.for_caller(door.principal)
    reads = door.stream

    def stream(resource_type: str | None = None) -> Iterator[StoredResource]:
        for stored in reads(resource_type):
            seen.append(stored.id)
            if len(seen) == 25:
                exports.jobs.remove(job.id)  # the client's DELETE, as another process would
            yield stored

    door.stream = stream  # type: ignore[method-assign]
    audits: list[tuple[list[str], str, str | None]] = []
    ctx = ExportContext(
        repo=door,
        jobs=exports.jobs,
        folder=folder,
        file_url=lambda name: name,
        audit=lambda p, o, r: audits.append((list(p), o, r)),
        principal=None,
        options=ExportOptions(max_per_file=7, progress_every=10),
    )
    run_export(job.id, ExportRequest("system", None), ctx)
    assert len(seen) == 30  # stopped at the first check after the removal
    assert not folder.exists()
    assert exports.jobs.get(job.id) is None
    assert audits == [([], "error", "stopped: cancelled by the client or the server shut down")]


def test_files_split_at_the_configured_size(memory_api: TestClient) -> None:
    _service(memory_api).options = ExportOptions(max_per_file=500, progress_every=100)
    auth = platform_auth(memory_api)
    manifest, got = export(memory_api, "/fhir/$export?_type=Procedure,Patient", auth)
    procedures = [o for o in manifest["output"] if o["type"] == "Procedure"]
    assert [o["count"] for o in procedures] == [500, 500, 500, 500, 56]
    assert [o["url"].rsplit("/", 1)[1] for o in procedures] == [
        f"Procedure.{n:03d}.ndjson" for n in range(5)
    ]
    assert sum(got.values()) == 2056 + 13


def test_a_job_whose_worker_died_is_reported_failed(memory_api: TestClient) -> None:
    """A restart loses the worker thread: the stale heartbeat turns the job into a failure
    (500 with an OperationOutcome) rather than a poll that never ends."""
    exports = _service(memory_api)
    owner = "platform-owner"
    job = exports.jobs.create("b" * 32, owner, "/fhir/$export", "system", {})
    assert exports.jobs.start(job.id)
    later = BulkJobs(exports.jobs.engine, clock=lambda: datetime.now(UTC) + STALE_AFTER * 2)
    found = later.get(job.id)
    assert found is not None
    assert found.status == "failed"
    assert "restart" in (found.error or "")
    principal = Principal(kind="client", subject=owner, display="x", role="system")
    assert exports.job_of(job.id, principal).status == "failed"


def test_failed_job_status_is_an_outcome(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    status_url = kick_off(memory_api, "/fhir/$export?_type=Patient", auth)
    wait(memory_api, status_url, auth)
    job_id = status_url.rsplit("/", 1)[1]
    exports = _service(memory_api)
    with exports.jobs.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE bulk_job SET status='failed', error='disk full' WHERE id=?", (job_id,)
        )
    r = memory_api.get(status_url, headers=auth)
    assert r.status_code == 500
    assert r.json()["issue"][0]["diagnostics"] == "disk full"


def test_shutdown_fails_unfinished_jobs(tmp_path: Path) -> None:
    store = MemoryStore()
    api = make_api(store, tmp_path)
    with api:
        exports = _service(api)
        job = exports.jobs.create("c" * 32, "x", "/fhir/$export", "system", {})
        exports._mine[job.id] = Future()  # as kick_off does; its worker never got to run
    found = exports.jobs.get(job.id)
    assert found is not None
    assert found.status == "failed"
    assert "shut down" in (found.error or "")


@pytest.mark.parametrize(
    ("principal", "reason"),
    [
        (Principal("staff", "an", "An", role="analyst", scopes=frozenset({"user/*.rs"})), "role"),
        (Principal("citizen", "0901", "Dân", scopes=frozenset({"patient/*.rs"})), "Citizens"),
        (Principal("client", "his", "HIS", role="system", scopes=frozenset()), "scopes"),
        (
            Principal("client", "his", "HIS", role="system", scopes=frozenset({"system/*.rs"})),
            "",
        ),
    ],
)
def test_who_may_export(principal: Principal, reason: str) -> None:
    store = MemoryStore()
    guard = GuardedRepository(store, principal, Policy(store), base_url=f"{BASE}/fhir")
    wanted = ExportRequest("system", ("Patient",))
    if not reason:
        assert authorise_export(guard, wanted) == wanted
        return
    with pytest.raises(Forbidden) as caught:
        authorise_export(guard, wanted)
    assert reason in str(caught.value)


def test_without_type_the_export_narrows_to_readable_types() -> None:
    store = MemoryStore()
    scopes = frozenset({"system/Patient.rs", "system/Encounter.rs"})
    principal = Principal("client", "his", "HIS", role="system", scopes=scopes)
    guard = GuardedRepository(store, principal, Policy(store), base_url=f"{BASE}/fhir")
    narrowed = authorise_export(guard, ExportRequest("system", None))
    assert narrowed.types == ("Encounter", "Patient")
    with pytest.raises(Forbidden):
        authorise_export(guard, ExportRequest("system", ("Condition",)))


def _condition(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
    }


def test_request_round_trips_through_the_job_row(store: FhirStore) -> None:
    """The worker runs the request it reads back from the job row, so what it selects must be
    what was asked: with ``_since`` on a millisecond, a resource updated a millisecond before is
    left out and one updated at that instant is in (Bulk Data: "resources modified on or after");
    the Group export keeps to its members, and both keep to ``_type``.

    See: https://hl7.org/fhir/uv/bulkdata/STU2/export.html#query-parameters
    """
    since = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
    ms = timedelta(milliseconds=1)
    clock = [since - timedelta(days=30)]
    repo = platform_repository(store, f"{BASE}/fhir", clock=lambda: clock[0])

    def made(resource: dict[str, Any], at: datetime) -> Key:
        clock[0] = at
        stored = repo.create(resource, resource["resourceType"]).resource
        return stored.resource_type, stored.id

    _, member = made({"resourceType": "Patient", "gender": "female"}, since - ms)
    _, other = made({"resourceType": "Patient", "gender": "male"}, since + ms)
    _, group = made(
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{member}"}}],
        },
        since - ms,
    )
    made(_condition(member), since - ms)  # a millisecond too early
    at_since = made(_condition(member), since)
    after = made(_condition(member), since + ms)
    made(observation(member), since + ms)  # a type not asked for
    others = made(_condition(other), since + ms)  # not a member of the group

    types = ("Condition", "Patient")
    cases = [
        (ExportRequest("group", types, since, group), {at_since, after}),
        (ExportRequest("system", types, since), {at_since, after, others, ("Patient", other)}),
    ]
    for wanted, expected in cases:
        row = ExportRequest.from_json(orjson.loads(orjson.dumps(wanted.to_json())))
        assert row == wanted
        got = {(r.resource_type, r.id) for r in select_resources(repo, row)}
        assert got == expected, wanted.kind


def test_status_of_a_running_job_is_202_with_progress(memory_api: TestClient) -> None:
    auth = platform_auth(memory_api)
    principal = memory_api.app.state.tokens.verify(  # type: ignore[attr-defined]
        auth["Authorization"].split()[1]
    )
    exports = _service(memory_api)
    job = exports.jobs.create("d" * 32, principal.subject, "/fhir/$export", "system", {})
    assert exports.jobs.start(job.id)
    assert exports.jobs.progress(job.id, 1234)
    r = memory_api.get(f"/fhir/bulk/{job.id}", headers=auth)
    assert r.status_code == 202
    assert r.headers["x-progress"] == "running: 1234 resources written"
    assert r.headers["retry-after"] == "2"
    assert (
        memory_api.get(f"/fhir/bulk/{job.id}/Patient.000.ndjson", headers=auth).status_code == 404
    )


def test_bench_exports_what_the_floor_writes(tmp_path: Path) -> None:
    from sokhoe.interop.bulk.bench import run

    result = run(patients=3, seed=1, work=tmp_path, repeat=1)
    assert result.resources > 1000  # the demo's facilities, practitioners and 3 people
    assert result.export_per_second > 0
    assert result.floor_per_second > 0
    assert result.output_bytes > 0
    # the floor writes the resources themselves (expanded from their compressed form)
    floor = sorted((tmp_path / "floor").glob("*.ndjson"))
    lines = [orjson.loads(line) for f in floor for line in f.read_bytes().splitlines()]
    assert len(lines) == result.resources
    assert all(r["resourceType"] == f.stem for f in floor[:1] for r in lines[:1])
