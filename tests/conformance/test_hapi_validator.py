"""HAPI FHIR's own validator over what sokhoe writes: zero errors (issue 16, item 6).

HAPI's ``FhirInstanceValidator`` (``tools/hapi``, offline: core R4 definitions, in-memory
terminology, no terminology server) starts in seconds, so everything is gathered first by one
module-scoped fixture and validated in ONE run; each test asserts on its slice:

- the demo population as ``sokhoe demo`` writes it: every person's records, and one in twenty of
  the registry's Organizations, Locations, Practitioners and PractitionerRoles (the same
  generator made the other nine);
- ``Patient/{id}/$everything`` for two demo patients, through the REST API, from a SQLite
  store the demo was loaded into;
- what the HL7 v2 path writes for the sample messages (``tests/interop/hl7_samples``);
- what the legacy spreadsheet import writes for its sample files;
- what the claims (XML 130) export writes to the record: its AuditEvents;
- the Vietnam core package as ``sokhoe ig build`` writes it (``--tgz``), loaded with
  ``--package`` for the whole run (the demo's Patients claim its Patient profile): its profiles,
  code systems, value sets and naming systems, and Vietnamese patients against its Patient
  profile, a conforming one and one per rule broken, each failing where the server's own
  checker says;
- a tiny FHIR NPM package made here (a Patient profile whose FHIRPath constraint requires a
  12-digit CCCD, and a CodeSystem) loaded with ``--package``: a conforming patient passes, a
  malformed CCCD fails, a code of the package's CodeSystem is checked against it; a second
  package, as a ``.tgz``, likewise.

Warnings are allowed, but only the kinds listed (and explained) in ``WARNINGS`` below and in the
README's "Checked by HAPI FHIR's validator"; a new kind fails ``test_only_known_warnings``.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sokhoe.access.guard import platform_repository
from sokhoe.config import Settings
from sokhoe.demo import write_demo
from sokhoe.fhir.profiles import profile_issues
from sokhoe.ig.package import write_dir, write_tgz
from sokhoe.interop.claims.export import ExportOptions, export_day, export_repository
from sokhoe.interop.claims.signing import facility_key
from sokhoe.interop.hl7v2.processor import Hl7Processor
from sokhoe.interop.load import load_paths
from sokhoe.mpi.identifiers import CCCD, FACILITY, mrn_system
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from sokhoe.web.app import create_app
from tests.conformance import hapi
from tests.conftest import FAST_PASSWORDS, platform_token, sqlite_store
from tests.ig.test_check import GOOD, with_identifier
from tests.interop.test_hl7v2_mapping import SAMPLES, prepare, sample
from tests.interop.test_legacy_import import importer, registry, sample_jobs

BASE = "http://testserver"
REGISTRY = ("Organization", "Location", "Practitioner", "PractitionerRole")
TINY = "https://fhir.sokhoe.vn/test/StructureDefinition/tiny-patient"
TINY_CS = "https://fhir.sokhoe.vn/test/CodeSystem/tiny-level"
TGZ_CS = "https://fhir.sokhoe.vn/test/CodeSystem/tiny-kind"

WARNINGS: dict[str, str] = {
    "http://hl7.org/fhir/StructureDefinition/DomainResource#dom-6": (
        "no narrative (best practice): narrative is optional; pages render from the data"
    ),
    "Terminology_PassThrough_TX_Message": (
        "code system not shipped with HAPI (ICD-10, LOINC, CVX, our own): no terminology server"
    ),
    "Terminology_TX_ValueSet_NotFound": (
        "ImagingStudy.modality's DICOM value set is not shipped with HAPI"
    ),
    "All_observations_should_have_a_performer": (
        "best practice: device readings and self-declared values have no performer"
    ),
    "SD_ED_EXPERIMENTAL_BINDING": (
        "the Vietnam core profiles keep R4's binding of language to the experimental 'languages'"
        " value set (the R4 base does the same)"
    ),
    "Terminology_TX_Code_ValueSet_Ext": (
        "an ethnic group a legacy spreadsheet gave as a name, not a code: kept as text, which the"
        " extensible binding to the 54 groups allows"
    ),
    "Terminology_TX_NoValid_2_CC": (
        "extensible binding met with another code: v2-0203 VN (visit number) on an Encounter's"
        " identifier, our own mpi-activity code for a merge"
    ),
}
"""The warning kinds accepted (messageId: why). Information-level messages are not judged."""


@dataclass
class Gathered:
    """Files to validate, by slice; and after the run, the reports of each slice."""

    files: dict[str, list[Path]] = field(default_factory=dict)
    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    packages: list[Path] = field(default_factory=list)
    everything_ids: list[str] = field(default_factory=list)

    def add(self, slice_: str, path: Path) -> None:
        self.files.setdefault(slice_, []).append(path)


def _ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


def _demo(root: Path, gathered: Gathered) -> Path:
    """Demo NDJSON: people's records whole, the registry one line in twenty."""
    out = root / "demo"
    write_demo(out, 12, 3, "ndjson")
    for path in sorted(out.glob("*.ndjson")):
        if path.stem in REGISTRY:
            lines = path.read_bytes().splitlines(keepends=True)[::20]
            sampled = root / f"demo-sample-{path.name}"
            sampled.write_bytes(b"".join(lines))
            gathered.add("demo", sampled)
        else:
            gathered.add("demo", path)
    return out


def _everything_and_claims(
    request: pytest.FixtureRequest, root: Path, demo: Path, gathered: Gathered
) -> None:
    """The demo loaded into SQLite; ``$everything`` of two patients over the REST API; one day's
    claims export at the facility of an inpatient stay, and the AuditEvents it wrote."""
    store = sqlite_store(request, root / "demo.db")
    try:
        repo = platform_repository(store, f"{BASE}/fhir")
        assert load_paths(repo, [demo], workers=0).errors == []
        settings = Settings(
            base_url=BASE, database_url="sqlite://", var_dir=root / "var", **FAST_PASSWORDS
        )
        app = create_app(settings, store)
        with TestClient(app, base_url=BASE) as api:
            api.headers["Authorization"] = f"Bearer {platform_token(app)}"
            patients = api.get("/fhir/Patient", params={"_count": "2"}).json()["entry"]
            for entry in patients:
                pid = entry["resource"]["id"]
                r = api.get(f"/fhir/Patient/{pid}/$everything", params={"_count": "1000"})
                assert r.status_code == 200, r.text
                assert r.json()["total"] > 1
                path = root / f"everything-{pid}.json"
                path.write_bytes(r.content)
                gathered.add("everything", path)
                gathered.everything_ids.append(pid)
        inpatient = next(
            r.content
            for r in store.iter_all("Encounter")
            if r.content and r.content["class"]["code"] == "IMP"
        )
        org = repo.read("Organization", inpatient["serviceProvider"]["reference"].split("/")[1])
        identifiers = (org.content or {})["identifier"]
        code = next(i["value"] for i in identifiers if i["system"] == FACILITY)
        day = date.fromisoformat(inpatient["period"]["start"][:10])
        seq = audit_event.c.seq
        with store.writer.connect() as conn:
            last = conn.execute(select(seq).order_by(seq.desc())).first()
        before = last[0] if last else 0
        key = facility_key(root / "var", code, code)
        options = ExportOptions(code, day, root / "claims", key, created=date(2026, 7, 20))
        report = export_day(export_repository(store, f"{BASE}/fhir"), options)
        assert report.written
        with store.writer.connect() as conn:
            rows = conn.execute(select(audit_event.c.content).where(seq > before)).all()
        events = [json.loads(r.content) if isinstance(r.content, str) else r.content for r in rows]
        assert len(events) >= len(report.written)
        gathered.add("claims", _ndjson(root / "claims-auditevents.ndjson", events))
    finally:
        store.close()


def _written(store: SqlStore, before: set[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        r.content
        for r in store.iter_all()
        if r.content is not None and (r.resource_type, r.id) not in before
    ]


def _hl7(request: pytest.FixtureRequest, root: Path, gathered: Gathered) -> None:
    store = sqlite_store(request, root / "hl7.db")
    try:
        prepare(store)
        before = {(r.resource_type, r.id) for r in store.iter_all()}
        processor = Hl7Processor(store, f"{BASE}/fhir")
        for path in sorted(SAMPLES.glob("*.hl7")):
            ack = processor.handle(sample(path.stem), source="127.0.0.1")
            assert "MSA|AA|" in ack, (path.name, ack)
        written = _written(store, before)
        assert {r["resourceType"] for r in written} >= {"Patient", "Encounter", "Observation"}
        gathered.add("hl7v2", _ndjson(root / "hl7v2.ndjson", written))
    finally:
        store.close()


def _legacy(request: pytest.FixtureRequest, root: Path, gathered: Gathered) -> None:
    store = sqlite_store(request, root / "legacy.db")
    try:
        repo = registry(store)
        before = {(r.resource_type, r.id) for r in store.iter_all()}
        reports = importer(store, repo).run(sample_jobs())
        assert all(r.committed and r.fatal is None for r in reports), reports
        written = _written(store, before)
        assert {r["resourceType"] for r in written} >= {"Patient", "Encounter"}
        gathered.add("legacy", _ndjson(root / "legacy.ndjson", written))
    finally:
        store.close()


def _tiny_package(root: Path) -> Path:
    """A FHIR NPM package folder (``package/package.json``, resources beside it): a Patient
    profile requiring a 12-digit CCCD by a FHIRPath constraint, and a complete CodeSystem."""
    folder = root / "tiny" / "package"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(
        json.dumps(
            {
                "name": "sokhoe.test.tiny",
                "version": "0.1.0",
                "fhirVersions": ["4.0.1"],
                "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
            }
        )
    )
    profile = {
        "resourceType": "StructureDefinition",
        "id": "tiny-patient",
        "url": TINY,
        "name": "TinyPatient",
        "status": "active",
        "fhirVersion": "4.0.1",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
        "differential": {
            "element": [
                {
                    "id": "Patient.identifier",
                    "path": "Patient.identifier",
                    "min": 1,
                    "constraint": [
                        {
                            "key": "tiny-cccd",
                            "severity": "error",
                            "human": "A CCCD is 12 digits",
                            "expression": f"system != '{CCCD}' or value.matches('^[0-9]{{12}}$')",
                            "source": TINY,
                        }
                    ],
                }
            ]
        },
    }
    code_system = {
        "resourceType": "CodeSystem",
        "id": "tiny-level",
        "url": TINY_CS,
        "name": "TinyLevel",
        "status": "active",
        "content": "complete",
        "concept": [{"code": "central", "display": "Trung ương"}],
    }
    (folder / "StructureDefinition-tiny-patient.json").write_text(json.dumps(profile))
    (folder / "CodeSystem-tiny-level.json").write_text(json.dumps(code_system))
    return folder.parent


def _tgz_package(root: Path) -> Path:
    """A second package, as a ``.tgz`` (the form registries serve): one CodeSystem."""
    folder = root / "tgz" / "package"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(
        json.dumps({"name": "sokhoe.test.tgz", "version": "0.1.0", "fhirVersions": ["4.0.1"]})
    )
    code_system = {
        "resourceType": "CodeSystem",
        "id": "tiny-kind",
        "url": TGZ_CS,
        "name": "TinyKind",
        "status": "active",
        "content": "complete",
        "concept": [{"code": "hospital", "display": "Bệnh viện"}],
    }
    (folder / "CodeSystem-tiny-kind.json").write_text(json.dumps(code_system))
    path = root / "tgz.tgz"
    with tarfile.open(path, "w:gz") as tgz:
        tgz.add(folder, arcname="package")
    return path


def _vietnam_core(root: Path, gathered: Gathered) -> Path:
    """The Vietnam core package (``sokhoe ig build --tgz``); its resources as a slice, and
    Vietnamese patients against its Patient profile. The package's extension definitions are
    not validated as resources: regenerating the snapshot of any extension whose context is an
    element (HL7's own ``patient-birthPlace`` too) makes this offline HAPI look the core package
    up in a package cache it does not have ("Unable to resolve package id hl7.fhir.r4.core")."""
    folder = root / "vn-core"
    write_dir(folder)
    tgz = root / "vn.sokhoe.fhir.core.tgz"
    write_tgz(tgz)
    for path in sorted((folder / "package").glob("*.json")):
        resource = json.loads(path.read_bytes())
        if path.name not in ("package.json", ".index.json") and resource.get("type") != "Extension":
            gathered.add("vn-core", path)
    patients = {
        "vn-good": GOOD,
        "vn-bad-cccd": with_identifier(0, "991085012345"),
        "vn-bad-cmnd": with_identifier(1, "0123456789"),
        "vn-bad-bhyt": with_identifier(2, "DN6010123456789"),
    }
    mrn = json.loads(json.dumps(GOOD))
    mrn["identifier"][3]["system"] = mrn_system("HOSPITAL-B")
    patients["vn-bad-mrn"] = mrn
    ethnicity = json.loads(json.dumps(GOOD))
    ethnicity["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] = "99"
    patients["vn-bad-ethnicity"] = ethnicity
    resources = [{**p, "id": pid} for pid, p in patients.items()]
    gathered.add("vn-patients", _ndjson(root / "vn-patients.ndjson", resources))
    return tgz


def _profiled(root: Path, gathered: Gathered) -> None:
    def patient(pid: str, cccd: str) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "id": pid,
            "meta": {"profile": [TINY]},
            "identifier": [{"system": CCCD, "value": cccd}],
            "name": [{"family": "Lê", "given": ["Văn", "Bình"]}],
            "gender": "male",
            "birthDate": "1988-01-02",
        }

    def organization(oid: str, level: str, system: str = TINY_CS) -> dict[str, Any]:
        return {
            "resourceType": "Organization",
            "id": oid,
            "name": "Bệnh viện Thử",
            "type": [{"coding": [{"system": system, "code": level}]}],
        }

    resources = [
        patient("tiny-good", "079088001234"),
        patient("tiny-bad", "07908800123X"),
        organization("tiny-org-good", "central"),
        organization("tiny-org-bad", "nowhere"),
        organization("tgz-org-good", "hospital", TGZ_CS),
        organization("tgz-org-bad", "nowhere", TGZ_CS),
        # a control: what sokhoe's own validation refuses, HAPI must refuse too
        {**patient("control-bad", "079088001235"), "gender": "nam", "birthDate": "1985-02-30"},
    ]
    gathered.add("package", _ndjson(root / "package-examples.ndjson", resources))
    gathered.packages += [_tiny_package(root), _tgz_package(root)]


@pytest.fixture(scope="module")
def gathered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Gathered:
    root = tmp_path_factory.mktemp("hapi")
    result = Gathered()
    demo = _demo(root, result)
    _everything_and_claims(request, root, demo, result)
    _hl7(request, root, result)
    _legacy(request, root, result)
    result.packages.append(_vietnam_core(root, result))
    _profiled(root, result)
    files = [p for paths in result.files.values() for p in paths]
    reports = hapi.validate(files, result.packages)
    # every report, to read when a test fails (and for the README's table of warnings)
    _ndjson(root / "hapi-reports.ndjson", reports)
    by_file = {p: s for s, paths in result.files.items() for p in paths}
    for report in reports:
        result.reports.setdefault(by_file[Path(report["file"])], []).append(report)
    return result


def _issues(reports: list[dict[str, Any]], *severities: str) -> list[str]:
    return [
        f"{r['resourceType']}/{r['id']} {i['location']}: {i['message']} [{i['messageId']}]"
        for r in reports
        for i in r["issues"]
        if i["severity"] in severities
    ]


def test_demo_population_has_no_error(gathered: Gathered) -> None:
    reports = gathered.reports["demo"]
    types = Counter(r["resourceType"] for r in reports)
    assert set(types) >= {"Patient", "Encounter", "Observation", "Condition", *REGISTRY}
    assert _issues(reports, "error", "fatal") == []


def test_everything_output_has_no_error(gathered: Gathered) -> None:
    reports = gathered.reports["everything"]
    assert len(reports) == 2 and {r["resourceType"] for r in reports} == {"Bundle"}
    assert _issues(reports, "error", "fatal") == []


def test_hl7v2_output_has_no_error(gathered: Gathered) -> None:
    assert len(gathered.reports["hl7v2"]) >= 3
    assert _issues(gathered.reports["hl7v2"], "error", "fatal") == []


def test_legacy_import_output_has_no_error(gathered: Gathered) -> None:
    assert len(gathered.reports["legacy"]) >= 2
    assert _issues(gathered.reports["legacy"], "error", "fatal") == []


def test_claims_audit_events_have_no_error(gathered: Gathered) -> None:
    reports = gathered.reports["claims"]
    assert reports and {r["resourceType"] for r in reports} == {"AuditEvent"}
    assert _issues(reports, "error", "fatal") == []


def test_package_profile_passes_a_conforming_patient_and_fails_a_malformed_cccd(
    gathered: Gathered,
) -> None:
    by_id = {r["id"]: r for r in gathered.reports["package"]}
    assert _issues([by_id["tiny-good"]], "error", "fatal") == []
    bad = _issues([by_id["tiny-bad"]], "error", "fatal")
    assert len(bad) == 1 and "tiny-cccd" in bad[0], bad


def test_the_vietnam_core_package_loads_and_its_resources_have_no_error(
    gathered: Gathered,
) -> None:
    reports = gathered.reports["vn-core"]
    kinds = Counter(r["resourceType"] for r in reports)
    assert kinds["StructureDefinition"] == 4 and kinds["CodeSystem"] >= 10
    assert kinds["ValueSet"] == kinds["CodeSystem"] and kinds["NamingSystem"] >= 10
    assert _issues(reports, "error", "fatal") == []


VN_FAULTS = {
    "vn-bad-cccd": ("Patient.identifier[0].value", "vn-cccd-1"),
    "vn-bad-cmnd": ("Patient.identifier[1].value", "vn-cmnd-1"),
    "vn-bad-bhyt": ("Patient.identifier[2].value", "vn-bhyt-1"),
    "vn-bad-mrn": ("Patient.identifier[3].system", "vn-pat-2"),
    "vn-bad-ethnicity": ("Patient.extension[0].value.ofType(CodeableConcept)", "ethnicity#99"),
}
"""Each broken patient: where HAPI must find the fault, and what its message names."""


def test_the_core_patient_profile_passes_a_vietnamese_patient_and_fails_each_broken_rule(
    gathered: Gathered,
) -> None:
    by_id = {r["id"]: r for r in gathered.reports["vn-patients"]}
    assert _issues([by_id["vn-good"]], "error", "fatal") == []
    for pid, (location, names) in VN_FAULTS.items():
        found = [i for i in by_id[pid]["issues"] if i["severity"] in ("error", "fatal")]
        assert found and {i["location"] for i in found} == {location}, (pid, found)
        assert any(names in i["message"] for i in found), (pid, found)
        # and the server's own checker refuses the same resource at the same place
        resource = _vn_patient(gathered, pid)
        assert location in {i.expression for i in profile_issues(resource)}, pid


def _vn_patient(gathered: Gathered, pid: str) -> dict[str, Any]:
    path = gathered.files["vn-patients"][0]
    return next(r for r in map(json.loads, path.read_bytes().splitlines()) if r["id"] == pid)


def test_the_validator_is_not_blind(gathered: Gathered) -> None:
    """The same run finds the errors of a bad resource: a gender outside its required value
    set and a day that does not exist."""
    by_id = {r["id"]: r for r in gathered.reports["package"]}
    bad = _issues([by_id["control-bad"]], "error", "fatal")
    assert any("Patient.gender" in m for m in bad), bad
    assert any("Patient.birthDate" in m for m in bad), bad


def test_package_code_system_is_known_to_the_validator(gathered: Gathered) -> None:
    """A code of the package's CodeSystem is checked against it: the known code passes with no
    'unknown code system' warning, an unknown code is an error."""
    by_id = {r["id"]: r for r in gathered.reports["package"]}
    good = _issues([by_id["tiny-org-good"]], "error", "fatal", "warning")
    assert not [m for m in good if TINY_CS in m], good
    bad = _issues([by_id["tiny-org-bad"]], "error", "fatal")
    assert any("nowhere" in m for m in bad), bad
    # the same from a package given as a .tgz
    good = _issues([by_id["tgz-org-good"]], "error", "fatal", "warning")
    assert not [m for m in good if TGZ_CS in m], good
    assert any("nowhere" in m for m in _issues([by_id["tgz-org-bad"]], "error", "fatal"))


def test_only_known_warnings(gathered: Gathered) -> None:
    kinds: Counter[str] = Counter(
        i["messageId"]
        for slice_, reports in gathered.reports.items()
        if slice_ not in ("package", "vn-patients")
        for r in reports
        for i in r["issues"]
        if i["severity"] == "warning"
    )
    assert set(kinds) <= set(WARNINGS), {k: n for k, n in kinds.items() if k not in WARNINGS}
