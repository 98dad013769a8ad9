"""A DICOM study sent to a real Orthanc appears in the patient's record (issue 5, part 2).

The tests start Orthanc (with the DICOMweb plugin), send it images made with pydicom over
DICOM C-STORE, run the watcher and read the record back through the FHIR repository.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sokhoe.access.guard import platform_repository
from sokhoe.fhir.validation import validate_resource
from sokhoe.interop.dicom.cli import pacs_app
from sokhoe.interop.dicom.imaging import (
    PacsSeries,
    PacsStudy,
    UnusableStudy,
    imaging_study,
    pacs_endpoint,
    patient_keys,
    started_at,
)
from sokhoe.interop.dicom.orthanc import OrthancClient, OrthancError
from sokhoe.interop.dicom.watch import PacsWatcher, PollReport, WatchState
from sokhoe.interop.watermark import clear_watermark, read_watermark, save_watermark
from sokhoe.mpi.identifiers import CCCD, make_cccd, mrn_system
from sokhoe.mpi.identifiers import FACILITY as FACILITY_SID
from sokhoe.store import FhirStore
from sokhoe.store.sql import open_store
from sokhoe.store.sql.access_schema import audit_event
from tests.interop.pacs_dicom import StudySpec, series, uid
from tests.interop.pacs_orthanc import PASSWORD, USER, OrthancServer

BASE = "http://testserver/fhir"
FACILITY = "01013"
CCCD_AN = make_cccd("001", "male", 1990, 123456)
CCCD_BINH = make_cccd("079", "female", 1985, 654321)
CCCD_CUONG = make_cccd("048", "male", 2001, 7)
STORES = pytest.mark.parametrize("store", ["memory", "sqlite"], indirect=True)


@pytest.fixture(scope="session")
def orthanc_server() -> Iterator[OrthancServer]:
    server = OrthancServer(stable_age=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def orthanc(orthanc_server: OrthancServer) -> OrthancServer:
    """The session's Orthanc, emptied for this test."""
    orthanc_server.clear()
    return orthanc_server


@pytest.fixture
def client(orthanc: OrthancServer) -> Iterator[OrthancClient]:
    with OrthancClient(orthanc.url, USER, PASSWORD) as c:
        yield c


def _patient(store: FhirStore, *identifiers: tuple[str, str], family: str = "Nguyễn") -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": s, "value": v} for s, v in identifiers],
        "name": [{"family": family, "given": ["Văn", "An"]}],
        "gender": "male",
    }
    return platform_repository(store, BASE).create(body, "Patient").resource.id


def _visit(store: FhirStore, patient: str, start: str, end: str) -> str:
    """An outpatient Encounter at the facility (whose Organization is in the registry)."""
    repo = platform_repository(store, BASE)
    org = {
        "resourceType": "Organization",
        "identifier": [{"system": FACILITY_SID, "value": FACILITY}],
        "name": "Bệnh viện Đa khoa Xanh Pôn",
    }
    org_id = repo.create(org, "Organization", if_none_exist=f"identifier={FACILITY_SID}|{FACILITY}")
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": start, "end": end},
        "serviceProvider": {"reference": f"Organization/{org_id.resource.id}"},
    }
    return repo.create(encounter, "Encounter").resource.id


def _studies(store: FhirStore, patient: str) -> list[dict[str, Any]]:
    repo = platform_repository(store, BASE)
    page = repo.search(repo.parse_query("ImagingStudy", [("patient", f"Patient/{patient}")]))
    return [m.content for m in page.matches if m.content is not None]


def _all_studies(store: FhirStore) -> list[dict[str, Any]]:
    repo = platform_repository(store, BASE)
    page = repo.search(repo.parse_query("ImagingStudy", []))
    return [m.content for m in page.matches if m.content is not None]


def _poll_until(
    watcher: PacsWatcher, done: Callable[[PollReport], bool], timeout: float = 20
) -> PollReport:
    """Poll (as the loop does) until the studies sent have become stable and been handled;
    returns the sum of the polls' reports."""
    total = PollReport()
    deadline = time.monotonic() + timeout
    while True:
        report = watcher.run_once()
        for name in ("stable_studies", "written", "unchanged", "held", "rejected", "gone"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.pending, total.since = report.pending, report.since
        if done(total):
            return total
        if time.monotonic() > deadline:
            raise AssertionError(f"Orthanc studies not handled in {timeout} s: {total}")
        time.sleep(0.3)


def _watcher(store: FhirStore, client: OrthancClient, page_size: int = 100) -> PacsWatcher:
    return PacsWatcher(store, client, FACILITY, base_url=BASE, page_size=page_size)


# -- end to end ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "store",
    ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_study_sent_to_orthanc_appears_in_the_patients_record(
    store: FhirStore, orthanc: OrthancServer, client: OrthancClient
) -> None:
    an = _patient(store, (CCCD, CCCD_AN), (mrn_system(FACILITY), "BN-0001"))
    binh = _patient(store, (mrn_system(FACILITY), "BN-0002"), family="Trần")
    visit = _visit(store, an, "2026-11-20T08:00:00+07:00", "2026-11-20T11:00:00+07:00")
    chest = StudySpec(
        "an-ct-chest", CCCD_AN, accession="ACC-777", description="CT ngực không tiêm thuốc"
    )
    hand = StudySpec(
        "binh-cr-hand", "BN-0002", issuer=FACILITY, date="20261121", time="1405",
        timezone="+0000",
    )  # fmt: skip
    orthanc.c_store(series(chest, 1, 3, "CT", "CHEST") + series(chest, 2, 2, "CT", "CHEST"))
    orthanc.c_store(series(hand, 1, 1, "CR", "HAND"), calling_aet="CR01")

    watcher = _watcher(store, client, page_size=3)  # several pages of the change log
    report = _poll_until(watcher, lambda r: r.written >= 2)
    assert (report.written, report.held, report.rejected, report.pending) == (2, 0, 0, 0)

    [study] = _studies(store, an)
    assert study["identifier"][0] == {
        "use": "official",
        "system": "urn:dicom:uid",
        "value": f"urn:oid:{uid('an-ct-chest')}",
    }
    assert study["identifier"][1]["value"] == "ACC-777"
    assert study["status"] == "available"
    assert study["subject"] == {"reference": f"Patient/{an}"}
    assert study["encounter"] == {"reference": f"Encounter/{visit}"}  # the visit that day
    assert study["started"] == "2026-11-20T09:30:15+07:00"
    assert study["description"] == "CT ngực không tiêm thuốc"
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (2, 5)
    assert [(s["number"], s["numberOfInstances"]) for s in study["series"]] == [(1, 3), (2, 2)]
    assert [s["uid"] for s in study["series"]] == [uid("an-ct-chest/1"), uid("an-ct-chest/2")]
    assert study["modality"] == [
        {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}
    ]
    assert study["series"][0]["bodySite"]["code"] == "51185008"

    [hand_study] = _studies(store, binh)
    assert hand_study["started"] == "2026-11-21T14:05:00+00:00"
    assert "encounter" not in hand_study  # no visit recorded: not tied to one
    assert hand_study["series"][0]["modality"]["code"] == "CR"
    assert hand_study["endpoint"] == study["endpoint"]

    # the endpoint points at the real PACS: images are fetched from there over DICOMweb
    endpoint_id = study["endpoint"][0]["reference"].removeprefix("Endpoint/")
    endpoint = platform_repository(store, BASE).read("Endpoint", endpoint_id).content
    assert endpoint is not None
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert endpoint["address"] == orthanc.dicomweb
    assert endpoint["managingOrganization"]["identifier"]["value"] == FACILITY
    with orthanc.http() as http:
        answer = http.get(f"{endpoint['address']}/studies/{uid('an-ct-chest')}/series")
        assert answer.status_code == 200
        found = {s["0020000E"]["Value"][0] for s in answer.json()}
        assert found == {uid("an-ct-chest/1"), uid("an-ct-chest/2")}
        missing = http.get(f"{endpoint['address']}/studies/{uid('nothing')}/series")
        assert missing.status_code == 200 and missing.json() == []  # Orthanc 1.10's answer

    # the PACS's reads and writes went through the door and were audited as the PACS
    with watcher.engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.action, audit_event.c.patient_id, audit_event.c.outcome).where(
                audit_event.c.agent == f"client:pacs:{FACILITY}"
            )
        ).all()
    assert ("create", an, "success") in rows  # audited as what was written: a new study
    assert ("create", binh, "success") in rows
    assert ("search", an, "success") in rows
    assert ("create", None, "success") in rows  # the Endpoint, once

    # polling again creates nothing; neither does re-reading the whole change log
    assert watcher.run_once().written == 0
    state = watcher.state()
    assert state.since > 0 and state.pending == {}
    with watcher.engine.begin() as conn:
        clear_watermark(conn, watcher.watermark)
    again = _watcher(store, client).run_once()
    assert (again.written, again.unchanged) == (0, 2)
    assert len(_all_studies(store)) == 2
    repo = platform_repository(store, BASE)
    endpoints = repo.search(repo.parse_query("Endpoint", []))
    assert len(endpoints.matches) == 1
    assert _studies(store, an)[0]["meta"]["versionId"] == "1"


@STORES
def test_unknown_patient_is_held_until_known_then_added_series_update_the_study(
    store: FhirStore, orthanc: OrthancServer, client: OrthancClient
) -> None:
    spec = StudySpec("cuong-ct-head", CCCD_CUONG, description="CT sọ não")
    orthanc.c_store(series(spec, 1, 2, "CT", "HEAD"))
    watcher = _watcher(store, client)
    report = _poll_until(watcher, lambda r: r.held >= 1)
    assert (report.written, report.pending) == (0, 1)
    assert _all_studies(store) == []

    # held, not lost: retried on every poll even though the change log has moved on
    assert watcher.run_once().held == 1
    [(held_id, reason)] = watcher.state().pending.items()
    assert client.study(held_id) is not None
    assert CCCD_CUONG not in reason and f"********{CCCD_CUONG[-4:]}" in reason  # last 4 only

    # known to the platform but not to this facility: the PACS may not create the relation
    cuong = _patient(store, (CCCD, CCCD_CUONG), family="Lê")
    held = watcher.run_once()
    assert (held.written, held.held, held.pending) == (0, 1, 1)
    assert _all_studies(store) == []

    # checked in at the facility's reception (its record number on the Patient): written
    repo = platform_repository(store, BASE)
    patient = repo.read("Patient", cuong).content
    assert patient is not None
    patient["identifier"].append({"system": mrn_system(FACILITY), "value": "BN-0003"})
    repo.update(patient, "Patient", cuong)
    done = watcher.run_once()
    assert (done.written, done.held, done.pending) == (1, 0, 0)
    [study] = _studies(store, cuong)
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (1, 2)

    # a series added later makes the study stable again: the same ImagingStudy is updated
    orthanc.c_store(series(spec, 2, 4, "CT", "HEAD"))
    _poll_until(watcher, lambda r: r.written >= 1)
    [study] = _studies(store, cuong)
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (2, 6)
    assert study["meta"]["versionId"] == "2"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_ambiguous_patient_ids_are_held_and_malformed_studies_rejected(
    store: FhirStore, orthanc: OrthancServer, client: OrthancClient
) -> None:
    # a CCCD that is also another person's record number here: which one is meant is unknown
    _patient(store, (CCCD, CCCD_BINH), (mrn_system(FACILITY), "BN-0004"))
    _patient(store, (mrn_system(FACILITY), CCCD_BINH))
    orthanc.c_store(series(StudySpec("binh-ambiguous", CCCD_BINH), 1, 1))
    orthanc.c_store(series(StudySpec("nobody", "   "), 1, 1))
    # a known patient, but a series UID that is not a DICOM UID (leading zero in a component)
    malformed = series(StudySpec("bad-uid", "BN-0004"), 1, 1)
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):  # pydicom agrees
        malformed[0].SeriesInstanceUID = "1.2.03"
        orthanc.c_store(malformed)
    watcher = _watcher(store, client)
    report = _poll_until(watcher, lambda r: r.pending >= 2 and r.rejected >= 1)
    assert (report.written, report.rejected, report.pending) == (0, 1, 2)  # held: re-counted
    assert _all_studies(store) == []
    assert sorted(watcher.state().pending.values())[0].startswith("Patient ID '' is not")
    # a rejected study is not retried (the PACS keeps it; the log says why)
    assert watcher.run_once().rejected == 0


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_loop_polls_at_its_interval_until_stopped(
    store: FhirStore, orthanc: OrthancServer, client: OrthancClient
) -> None:
    an = _patient(store, (CCCD, CCCD_AN), (mrn_system(FACILITY), "BN-0001"))
    watcher = _watcher(store, client)
    stop = threading.Event()
    loop = threading.Thread(target=watcher.run, args=(0.2, stop), daemon=True)
    loop.start()
    try:
        orthanc.c_store(series(StudySpec("loop-study", CCCD_AN), 1, 1))
        deadline = time.monotonic() + 20
        while not _studies(store, an) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert not loop.is_alive()
    assert len(_studies(store, an)) == 1


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_pacs_whose_change_log_restarted_is_read_again(
    store: FhirStore, orthanc: OrthancServer, client: OrthancClient
) -> None:
    an = _patient(store, (CCCD, CCCD_AN), (mrn_system(FACILITY), "BN-0001"))
    watcher = _watcher(store, client)
    with watcher.engine.begin() as conn:  # as if the PACS had been reinstalled since
        save_watermark(conn, watcher.watermark, WatchState(since=10**6).to_json())
    orthanc.c_store(series(StudySpec("after-reinstall", CCCD_AN), 1, 1))
    _poll_until(watcher, lambda r: r.written >= 1)
    assert len(_studies(store, an)) == 1
    assert watcher.state().since < 10**6


# -- the CLI and failures ----------------------------------------------------------------------
def test_cli_watch_once(orthanc: OrthancServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = open_store(db)
    try:
        an = _patient(store, (CCCD, CCCD_AN), (mrn_system(FACILITY), "BN-0001"))
    finally:
        store.close()
    orthanc.c_store(series(StudySpec("cli-study", CCCD_AN), 1, 2))
    args = [
        "watch",
        "--orthanc",
        orthanc.url,
        "--user",
        USER,
        "--facility",
        FACILITY,
        "--db",
        db,
        "--once",
    ]
    runner = CliRunner()
    deadline = time.monotonic() + 20
    written = 0
    while written == 0 and time.monotonic() < deadline:
        result = runner.invoke(pacs_app, args, env={"SOKHOE_PACS_PASSWORD": PASSWORD})
        assert result.exit_code == 0, result.output
        written = json.loads(result.stdout)["written"]
        time.sleep(0.3)
    assert written == 1
    store = open_store(db)
    try:
        [study] = _studies(store, an)
        assert study["numberOfInstances"] == 2
        saved = read_watermark(store.writer, f"orthanc:{FACILITY}:{orthanc.url}")
        assert WatchState.from_json(saved).since > 0
    finally:
        store.close()

    bad = runner.invoke(pacs_app, [*args[:-1], "--facility", "X", "--once"])
    assert bad.exit_code == 2 and "5 letters or digits" in bad.output


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_unreachable_or_refusing_pacs_changes_nothing(
    store: FhirStore, orthanc: OrthancServer
) -> None:
    with OrthancClient(orthanc.url, USER, "wrong") as wrong:
        watcher = _watcher(store, wrong)
        with pytest.raises(OrthancError, match="credentials"):
            watcher.run_once()
        assert read_watermark(watcher.engine, watcher.watermark) is None
    with OrthancClient("http://127.0.0.1:9", USER, PASSWORD, timeout=2) as down:
        with pytest.raises(OrthancError, match="unreachable"):
            _watcher(store, down).run_once()
    assert _all_studies(store) == []


# -- the mapping, without a PACS ---------------------------------------------------------------
def _study(**changes: Any) -> PacsStudy:
    fields: dict[str, Any] = {
        "orthanc_id": "x",
        "uid": "1.2.840.113619.2.55.3",
        "patient_id": CCCD_AN,
        "issuer": None,
        "accession": None,
        "date": "20261120",
        "time": "093015.25",
        "timezone": None,
        "description": None,
        "series": (PacsSeries("1.2.3.4", "MR", 3, 10, "BRAIN"),),
    }
    return PacsStudy(**(fields | changes))


def test_mapping_is_a_valid_r4_imaging_study() -> None:
    resource = imaging_study(_study(), "p1", "e1", FACILITY)
    validate_resource(resource)
    validate_resource(pacs_endpoint(FACILITY, "https://pacs.bv.vn/dicom-web"))
    assert resource["started"] == "2026-11-20T09:30:15.25+07:00"
    assert resource["series"][0]["bodySite"] == {"display": "BRAIN"}
    assert "identifier" not in resource["series"][0]
    with pytest.raises(UnusableStudy):
        imaging_study(_study(uid="not-a-uid"), "p1", "e1", FACILITY)
    with pytest.raises(UnusableStudy):
        imaging_study(_study(series=(PacsSeries("", "CT", 1, 1),)), "p1", "e1", FACILITY)


@pytest.mark.parametrize(
    ("date", "time_", "offset", "expected"),
    [
        ("20261120", "093015", None, "2026-11-20T09:30:15+07:00"),
        ("20261120", "0930", "-0500", "2026-11-20T09:30:00-05:00"),
        ("20261120", "09", None, "2026-11-20T09:00:00+07:00"),
        ("20261120", "09:30:15", "+0000", "2026-11-20T09:30:15+00:00"),
        ("20261120", None, None, "2026-11-20"),
        ("20261120", "250000", None, None),
        ("2026112", "093015", None, None),
        (None, "093015", None, None),
    ],
)
def test_started_from_dicom_date_time_and_offset(
    date: str | None, time_: str | None, offset: str | None, expected: str | None
) -> None:
    assert started_at(date, time_, offset) == expected


def test_patient_keys_follow_the_issuer() -> None:
    mrn = mrn_system(FACILITY)
    assert patient_keys(CCCD_AN, None, FACILITY) == [(CCCD, CCCD_AN), (mrn, CCCD_AN)]
    assert patient_keys(CCCD_AN, "CCCD", FACILITY) == [(CCCD, CCCD_AN)]
    assert patient_keys(CCCD_AN, FACILITY, FACILITY) == [(mrn, CCCD_AN)]
    assert patient_keys("BN-1", None, FACILITY) == [(mrn, "BN-1")]
    assert patient_keys("BN-1", "BV Bạch Mai", FACILITY) == [(mrn, "BN-1")]
    assert patient_keys("BN-1", "cccd", FACILITY) == []
    assert patient_keys("  ", None, FACILITY) == []
