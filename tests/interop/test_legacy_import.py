"""Legacy CSV/Excel import: mapping, encodings, idempotent re-import, dry run, transactions."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from typer.testing import CliRunner

from sokhoe.access.audit import AuditLog
from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.cli import app
from sokhoe.errors import InvalidRequest
from sokhoe.interop.legacy.importer import Job, LegacyImporter
from sokhoe.interop.legacy.mapping import Mapping, load_mapping
from sokhoe.interop.legacy.reader import detect_encoding, open_table, sniff_delimiter
from sokhoe.interop.legacy.report import ImportReport
from sokhoe.mpi.identifiers import CCCD, FACILITY, PRACTITIONER, mrn_system
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.ports import StoredResource
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event
from tests.conftest import BASE

CODE = "79001"
TODAY = date(2026, 1, 15)
SAMPLES = Path(str(resources.files("sokhoe.interop.legacy") / "samples"))
TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
PATIENT_HEADER = (
    "Mã BN;Họ và tên;Ngày sinh;Giới tính;Số CCCD;Mã thẻ BHYT;Điện thoại;Địa chỉ;Phường/Xã;"
    "Tỉnh/TP;Dân tộc"
)
VISIT_HEADER = (
    "Mã lượt khám,Mã BN,Ngày vào,Ngày ra,Loại KCB,Mã bệnh chính,Mã bệnh kèm theo,"
    "Lý do khám,Khoa,Mã bác sĩ"
)


# -- helpers ---------------------------------------------------------------------------------
def registry(store: FhirStore) -> GuardedRepository:
    """The facility's Organization, as the registry publishes it."""
    repo = platform_repository(store, BASE)
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": "org-79001",
        "name": "Bệnh viện Đa khoa Thử nghiệm",
        "identifier": [{"use": "official", "system": FACILITY, "value": CODE}],
    }
    repo.update(org, "Organization", org["id"])
    return repo


def importer(store: FhirStore, repo: GuardedRepository | None = None) -> LegacyImporter:
    repo = repo or platform_repository(store, BASE)
    return LegacyImporter(repo, CODE, today=TODAY, source="test")


def patients_mapping() -> Mapping:
    return load_mapping(SAMPLES / "patients.mapping.json")


def visits_mapping() -> Mapping:
    return load_mapping(SAMPLES / "visits.mapping.json")


def sample_jobs() -> list[Job]:
    return [
        Job(SAMPLES / "patients_cp1258.csv", patients_mapping()),
        Job(SAMPLES / "visits.csv", visits_mapping()),
    ]


def to_cp1258(text: str) -> bytes:
    """Windows-1258 as legacy software writes it: base letters precomposed, tones combining."""
    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES))
        out += base.encode("cp1258") + "".join(c for c in parts if c in TONES).encode("cp1258")
    return out


def write_patients(path: Path, rows: list[str], encoding: str = "cp1258") -> Path:
    text = "\r\n".join([PATIENT_HEADER, *rows]) + "\r\n"
    path.write_bytes(to_cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    return path


def write_visits(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([VISIT_HEADER, *rows]) + "\n", encoding="utf-8-sig")
    return path


def snapshot(store: FhirStore) -> tuple[int, list[tuple[str, str, int]]]:
    """Every version in the store: a rejected import must leave this exactly as it was."""
    with store.begin() as tx:
        found, total = tx.history(None, None, None, 10_000, 0)
    return total, sorted((r.resource_type, r.id, r.version_id) for r in found)


def search(repo: GuardedRepository, rtype: str, **params: str) -> list[StoredResource]:
    return list(repo.search(repo.parse_query(rtype, list(params.items()))).matches)


def by_row(report: ImportReport) -> dict[int, Any]:
    return {r.row: r for r in report.rows}


# -- end to end ------------------------------------------------------------------------------
def test_patients_then_visits_appear_in_the_record(store: FhirStore) -> None:
    repo = registry(store)
    patients, visits = importer(store, repo).run(sample_jobs())

    assert patients.committed and visits.committed
    assert patients.totals == {"rows": 4, "created": 4, "updated": 0, "unchanged": 0, "error": 0}
    assert visits.totals["created"] == 3 and not visits.failed
    assert (patients.encoding, patients.delimiter) == ("cp1258", ";")
    assert (visits.encoding, visits.delimiter) == ("utf-8-sig", ",")

    [an] = search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0001")
    assert search(repo, "Patient", identifier=f"{CCCD}|079085001234")[0].id == an.id
    content = an.content or {}
    assert content["name"][0] == {
        "use": "official",
        "text": "Nguyễn Văn An",
        "family": "Nguyễn",
        "given": ["Văn", "An"],
    }
    assert (content["gender"], content["birthDate"]) == ("male", "1985-03-12")
    assert content["telecom"] == [{"system": "phone", "value": "0903123456", "use": "mobile"}]
    assert content["address"][0]["city"] == "Phường Bến Thành"
    assert content["address"][0]["state"] == "Thành phố Hồ Chí Minh"
    systems = {i["system"]: i["value"] for i in content["identifier"]}
    assert systems["https://fhir.sokhoe.vn/sid/bhyt"] == "DN4790123456789"
    assert systems["https://fhir.sokhoe.vn/sid/bhxh"] == "0123456789"

    [hoa] = search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0004")
    assert (hoa.content or {})["address"][0]["state"] == "Thành phố Hồ Chí Minh"  # Bình Dương
    [nam] = search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0003")
    assert (nam.content or {})["birthDate"] == "1978"

    [stay] = search(
        repo, "Encounter", identifier="https://fhir.sokhoe.vn/sid/visit/79001|LK2025-0002"
    )
    enc = stay.content or {}
    assert enc["class"]["code"] == "IMP" and enc["status"] == "finished"
    assert enc["period"] == {
        "start": "2025-04-10T14:30:00+07:00",
        "end": "2025-04-15T10:00:00+07:00",
    }
    assert enc["serviceProvider"] == {"reference": "Organization/org-79001"}
    assert stay.patient_id == search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0002")[0].id
    conditions = search(repo, "Condition", encounter=f"Encounter/{stay.id}")
    codes = {c.content["code"]["coding"][0]["code"] for c in conditions if c.content}
    assert codes == {"J18.9", "J20.9", "K29.7"}
    ranked = sorted(enc["diagnosis"], key=lambda d: d["rank"])
    main = ranked[0]["condition"]["reference"].split("/")[1]
    primary = next(c.content for c in conditions if c.id == main)
    assert primary is not None and primary["code"]["coding"][0]["code"] == "J18.9"
    [emergency] = search(
        repo, "Encounter", identifier="https://fhir.sokhoe.vn/sid/visit/79001|LK2025-0003"
    )
    [fracture] = search(repo, "Condition", encounter=f"Encounter/{emergency.id}")
    assert (fracture.content or {})["code"]["coding"][0]["code"] == "S52.5"  # typed "s525"
    [first] = search(
        repo, "Encounter", identifier="https://fhir.sokhoe.vn/sid/visit/79001|LK2025-0001"
    )
    doctor = (first.content or {})["participant"][0]["individual"]
    assert doctor == {
        "identifier": {"system": "https://fhir.sokhoe.vn/sid/cchn", "value": "0012345/HCM-CCHN"}
    }


def test_running_twice_creates_nothing_twice(store: FhirStore) -> None:
    registry(store)
    importer(store).run(sample_jobs())
    before = snapshot(store)

    patients, visits = importer(store).run(sample_jobs())

    assert snapshot(store) == before  # not one new version
    assert {r.status for r in patients.rows} == {"unchanged"}
    assert {r.status for r in visits.rows} == {"unchanged"}
    assert patients.totals["unchanged"] == 4 and visits.totals["unchanged"] == 3


def test_a_changed_row_updates_and_a_dropped_diagnosis_is_withdrawn(
    store: FhirStore, tmp_path: Path
) -> None:
    repo = registry(store)
    importer(store, repo).run(sample_jobs())
    text = (SAMPLES / "patients_cp1258.csv").read_bytes().decode("cp1258")
    rows = unicodedata.normalize("NFC", text).splitlines()[1:]
    rows[1] = rows[1].replace("0912345678", "0987654321")
    visits = (SAMPLES / "visits.csv").read_text(encoding="utf-8-sig").splitlines()[1:]
    visits[1] = visits[1].replace("J20.9;K29.7", "J20.9")

    patients_report, visits_report = importer(store, repo).run(
        [
            Job(write_patients(tmp_path / "p.csv", rows), patients_mapping()),
            Job(write_visits(tmp_path / "v.csv", visits), visits_mapping()),
        ]
    )

    assert [r.status for r in patients_report.rows] == [
        "unchanged",
        "updated",
        "unchanged",
        "unchanged",
    ]
    assert [r.status for r in visits_report.rows] == ["unchanged", "updated", "unchanged"]
    [ngoc] = search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0002")
    assert ngoc.version_id == 2
    assert (ngoc.content or {})["telecom"][0]["value"] == "0987654321"
    [stay] = search(
        repo, "Encounter", identifier="https://fhir.sokhoe.vn/sid/visit/79001|LK2025-0002"
    )
    assert len(stay.content["diagnosis"]) == 2  # type: ignore[index]
    conditions = {
        c.content["code"]["coding"][0]["code"]: c.content
        for c in search(repo, "Condition", encounter=f"Encounter/{stay.id}")
        if c.content
    }
    assert conditions["K29.7"]["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in conditions["K29.7"]
    assert conditions["J20.9"]["verificationStatus"]["coding"][0]["code"] == "confirmed"


# -- dry run and transactions ----------------------------------------------------------------
BAD_PATIENTS = [
    "BN0101;Đỗ Minh Tuấn;12/03/1985;Nam;079085009999;;;;;;",
    "BN0102;Vũ Thị Lan;31/02/1990;Nữ;079190001111;;;;;;",  # no 31 February
    "BN0103;Hồ Văn Bình;01/01/1970;Nam;12345;;;;;;",  # CCCD too short
    ";Không Có Mã;01/01/1970;Nam;;;;;;;",  # MRN missing
    "BN0105;Mai Anh;01/01/1970;Khác giới;;;;;Phường Hư Cấu;Hồ Chí Minh;",
]
BAD_VISITS = [
    "LK-1,BN0101,03/03/2025 08:15,,Ngoại trú,I10,,,,",  # patient from the same dry run
    "LK-2,BN0101,03/03/2025 08:15,,Ngoại trú,X99.99,,,,",  # no such ICD-10 code
    "LK-3,BN9999,03/03/2025 08:15,,Ngoại trú,I10,,,,",  # unknown patient
    "LK-4,BN0101,2025-03-03,,Ngoại trú,I10,,,,",  # date in a format the mapping lacks
    "LK-5,BN0101,03/03/2025 08:15,03/03/2025 07:50,Ngoại trú,I10,,,,",  # ends before it starts
]


def test_dry_run_reports_row_errors_and_changes_nothing(store: FhirStore, tmp_path: Path) -> None:
    registry(store)
    before = snapshot(store)
    jobs = [
        Job(write_patients(tmp_path / "p.csv", BAD_PATIENTS), patients_mapping()),
        Job(write_visits(tmp_path / "v.csv", BAD_VISITS), visits_mapping()),
    ]

    patients, visits = importer(store).run(jobs, dry_run=True)

    assert snapshot(store) == before
    assert not patients.committed and not visits.committed
    p = by_row(patients)
    assert p[2].status == "created"  # header is row 1
    assert p[3].status == "error" and "'31/02/1990' is not a date" in p[3].messages[0]
    assert "Ngày sinh" in p[3].messages[0]
    assert p[4].status == "error" and "CCCD must be exactly 12 digits" in p[4].messages[0]
    assert p[5].status == "error" and p[5].messages == ["column 'Mã BN': is empty (required)"]
    assert p[6].status == "error" and len(p[6].messages) == 2  # sex and ward, both reported
    assert "'Khác giới' is not one of" in p[6].messages[0]
    assert "Phường Hư Cấu" in p[6].messages[1]
    v = by_row(visits)
    assert v[2].status == "created"  # BN0101 would be created earlier in this dry run
    assert v[3].status == "error" and "X99.99" in " ".join(v[3].messages)
    assert v[4].status == "error" and "no patient has record number BN9999" in v[4].messages[0]
    assert v[5].status == "error" and "'2025-03-03' is not a date" in v[5].messages[0]
    assert v[6].messages == [
        "column 'Ngày ra': the visit ends (2025-03-03T07:50:00+07:00) before it starts "
        "(2025-03-03T08:15:00+07:00)"
    ]
    assert patients.totals["error"] == 4 and visits.totals["error"] == 4


def test_per_row_keeps_good_rows_and_all_or_nothing_keeps_none(
    store: FhirStore, tmp_path: Path
) -> None:
    repo = registry(store)
    path = write_patients(tmp_path / "p.csv", BAD_PATIENTS)
    before = snapshot(store)

    [whole] = importer(store, repo).run([Job(path, patients_mapping())], all_or_nothing=True)

    assert whole.failed and not whole.committed
    assert by_row(whole)[2].status == "created"  # would have been: rolled back
    assert snapshot(store) == before
    assert search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0101") == []

    [rows] = importer(store, repo).run([Job(path, patients_mapping())])

    assert rows.committed and rows.totals["created"] == 1 and rows.totals["error"] == 4
    assert len(search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0101")) == 1


def test_all_or_nothing_commits_a_clean_file(store: FhirStore) -> None:
    repo = registry(store)
    patients, visits = importer(store, repo).run(sample_jobs(), all_or_nothing=True)
    assert patients.committed and visits.committed and not visits.failed
    assert len(search(repo, "Encounter", _count="50")) == 3


def test_the_import_is_audited_in_its_transactions(store: FhirStore) -> None:
    """A dry run leaves no audit rows (its writes never happened); a real run names every
    patient and resource it wrote, in the transactions that wrote them."""
    registry(store)
    engine = access_engine(store)
    log = AuditLog(engine)
    before = log.verify().checked
    importer(store).run(sample_jobs(), dry_run=True)
    assert log.verify().checked == before
    reports = importer(store).run(sample_jobs())
    written = {ref for report in reports for row in report.rows for ref in row.resources}
    assert len(written) >= 7  # 4 patients, 3 visits and their diagnoses
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.patient_id, audit_event.c.content).where(
                audit_event.c.action == "create", audit_event.c.agent == f"client:import:{CODE}"
            )
        ).all()
    audited = {f"Patient/{r.patient_id}" for r in rows if r.patient_id}
    audited |= {
        e["what"]["reference"] for r in rows for e in r.content.get("entity", []) if "what" in e
    }
    assert written <= audited
    assert all(r.patient_id for r in rows)  # every write names its patient
    assert log.verify().ok


def test_a_person_registered_elsewhere_gains_the_record_number_only(store: FhirStore) -> None:
    repo = registry(store)
    other = {
        "resourceType": "Patient",
        "identifier": [
            {"use": "usual", "system": mrn_system("01001"), "value": "HN-77"},
            {"use": "official", "system": CCCD, "value": "079085001234"},
        ],
        "name": [{"use": "official", "text": "Nguyễn Văn Ân", "family": "Nguyễn"}],
        "birthDate": "1985-03-12",
    }
    existing = repo.create(other, "Patient").resource

    [patients] = importer(store, repo).run(sample_jobs()[:1])

    assert by_row(patients)[2].status == "updated"
    [an] = search(repo, "Patient", identifier=f"{mrn_system(CODE)}|BN0001")
    assert an.id == existing.id
    content = an.content or {}
    assert content["name"][0]["text"] == "Nguyễn Văn Ân"  # not overwritten by this facility
    assert content["gender"] == "male"  # missing there, filled in
    assert {i["value"] for i in content["identifier"]} >= {"HN-77", "BN0001", "079085001234"}


def test_unknown_facility_is_refused(store: FhirStore) -> None:
    platform_repository(store, BASE)
    with pytest.raises(InvalidRequest, match="79001 is not in the registry"):
        importer(store)


# -- mapping, files and formats --------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"columns": {"mrn": "Mã BN", "blood_group": "Nhóm máu"}}, "Unknown patients targets"),
        ({"columns": {"full_name": "Họ và tên"}}, "must give a column for mrn"),
        ({"kind": "drugs"}, "'kind' must be 'patients' or 'visits'"),
        ({"date_formats": ["dd/MM/yyyy", "qq"]}, "unknown letter 'q'"),
        ({"columns": {"mrn": "Mã BN", "sex": {"column": "GT", "values": {"X": "x"}}}}, "not in"),
        ({"facility": "7"}, "Facility code must be 5"),
        ({"colums": {}}, "Unknown mapping keys: colums"),
    ],
)
def test_bad_mappings_are_refused_with_the_reason(change: dict[str, Any], message: str) -> None:
    data = json.loads((SAMPLES / "patients.mapping.json").read_text(encoding="utf-8"))
    data.update(change)
    with pytest.raises(InvalidRequest, match=message):
        load_mapping(data)


def test_a_column_missing_from_the_file_stops_the_file(tmp_path: Path) -> None:
    store = MemoryStore()
    registry(store)
    path = tmp_path / "p.csv"
    path.write_text("Mã BN;Họ tên\nBN1;Trần An\n", encoding="utf-8")
    [report] = importer(store).run([Job(path, patients_mapping())])
    assert report.fatal is not None and report.rows == []
    assert "'Họ và tên' (for full_name)" in report.fatal and "'Họ tên'" in report.fatal


def test_headers_match_ignoring_case_accents_spaces_and_order() -> None:
    header = [
        "  DÂN TỘC ",
        "ma bn",
        "Ho  va ten",
        "Ngay sinh",
        "GIỚI TÍNH",
        "Số CCCD",
        "ma the bhyt",
        "dien thoai",
        "dia chi",
        "phuong / xa",
        "TINH/TP",
    ]
    bound = patients_mapping().bind(header)
    assert {t: i for t, (i, _) in bound.columns.items()} == {
        "ethnicity": 0,
        "mrn": 1,
        "full_name": 2,
        "birth_date": 3,
        "sex": 4,
        "cccd": 5,
        "bhyt": 6,
        "phone": 7,
        "address_line": 8,
        "ward": 9,
        "province": 10,
    }


def test_encodings_and_separators_are_detected(tmp_path: Path) -> None:
    text = "Mã BN;Họ và tên\nBN1;Nguyễn Thị Hường\n"
    cases = {
        "bom.csv": b"\xef\xbb\xbf" + text.encode("utf-8"),
        "plain.csv": text.encode("utf-8"),
        "legacy.csv": to_cp1258(text),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with open_table(tmp_path / name) as table:
            assert table.header == ["Mã BN", "Họ và tên"], name
            assert list(table.rows) == [(2, ["BN1", "Nguyễn Thị Hường"])], name
    assert detect_encoding(tmp_path / "legacy.csv") == "cp1258"
    assert detect_encoding(tmp_path / "plain.csv") == "utf-8-sig"
    assert sniff_delimiter("a,b,c\n1,2;3,4\n") == ","
    assert sniff_delimiter("a;b;c\n1;2,5;4\n") == ";"


def _sample_rows() -> list[list[str]]:
    text = unicodedata.normalize(
        "NFC", (SAMPLES / "patients_cp1258.csv").read_bytes().decode("cp1258")
    )
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def _excel(path: Path, rows: list[list[str]]) -> Path:
    """The sample patient list as an Excel user has it: two title lines above the header,
    real date cells, one birth date as a bare serial number, a birth year and a CCCD typed as
    numbers."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "BenhNhan"
    sheet.append(["DANH SÁCH BỆNH NHÂN"])
    sheet.append([])
    sheet.append(rows[0])
    for i, row in enumerate(rows[1:]):
        cells: list[Any] = list(row)
        if "/" in row[2]:
            day = datetime.strptime(row[2], "%d/%m/%Y")
            cells[2] = (day - datetime(1899, 12, 30)).days if i == 1 else day
        elif row[2].isdigit():
            cells[2] = int(row[2])  # a birth year typed as a number
        if row[4] and i == 0:
            cells[4] = int(row[4])  # Excel drops the leading zero
        sheet.append([c if c != "" else None for c in cells])
    book.save(path)
    return path


def _comparable(store: FhirStore) -> list[dict[str, Any]]:
    out = []
    for rtype in ("Patient",):
        with store.begin() as tx:
            found, _ = tx.history(rtype, None, None, 100, 0)
        for r in found:
            content = {k: v for k, v in (r.content or {}).items() if k not in ("id", "meta")}
            out.append(content)
    return sorted(out, key=lambda c: json.dumps(c, sort_keys=True))


def test_excel_and_csv_in_either_encoding_give_the_same_record(tmp_path: Path) -> None:
    rows = _sample_rows()
    utf8 = tmp_path / "patients-utf8.csv"
    with utf8.open("w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(rows)
    xlsx = _excel(tmp_path / "patients.xlsx", rows)
    excel_mapping = load_mapping(
        {
            **json.loads((SAMPLES / "patients.mapping.json").read_text(encoding="utf-8")),
            "sheet": "BenhNhan",
            "header_row": 3,
        }
    )
    results = []
    for path, mapping in [
        (SAMPLES / "patients_cp1258.csv", patients_mapping()),
        (utf8, patients_mapping()),
        (xlsx, excel_mapping),
    ]:
        store = MemoryStore()
        registry(store)
        [report] = importer(store).run([Job(path, mapping)])
        assert report.totals["created"] == 4, (path, report.rows)
        assert [r.row for r in report.rows] == ([4, 5, 6, 7] if path == xlsx else [2, 3, 4, 5])
        results.append(_comparable(store))
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 4


# -- command line ----------------------------------------------------------------------------
def test_cli_imports_reports_and_signals_failure(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    store = SqlStore(db)
    registry(store)
    store.close()
    runner = CliRunner()
    base = ["--mapping", str(SAMPLES / "patients.mapping.json"), "--db", db]
    patients = tmp_path / "patients.csv"
    patients.write_bytes((SAMPLES / "patients_cp1258.csv").read_bytes())

    dry = runner.invoke(app, ["import", "patients", str(patients), *base, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run, nothing written" in dry.output

    ok = runner.invoke(app, ["import", "patients", str(patients), *base, "--report", "out.json"])
    assert ok.exit_code == 0, ok.output
    assert "4 created" in ok.output
    written = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert written["totals"]["created"] == 4 and written["committed"] is True

    visits = write_visits(tmp_path / "visits.csv", BAD_VISITS[:1] + BAD_VISITS[2:3])
    bad = runner.invoke(
        app,
        [
            "import",
            "visits",
            str(visits),
            "--mapping",
            str(SAMPLES / "visits.mapping.json"),
            "--db",
            db,
            "--report",
            str(tmp_path / "visits-report.csv"),
        ],
    )
    assert bad.exit_code == 1, bad.output
    assert "row 3: no patient has record number BN9999" in bad.output
    report = (tmp_path / "visits-report.csv").read_text(encoding="utf-8-sig").splitlines()
    assert report[0].startswith("row,status")
    assert report[2].startswith("3,error,LK-3")

    again = runner.invoke(app, ["import", "patients", str(patients), *base])
    assert again.exit_code == 0 and "4 unchanged" in again.output

    wrong = runner.invoke(
        app,
        [
            "import",
            "visits",
            str(visits),
            "--mapping",
            str(SAMPLES / "patients.mapping.json"),
            "--db",
            db,
        ],
    )
    assert wrong.exit_code == 2


def test_cli_dry_run_of_visits_counts_the_patients_the_list_would_create(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = SqlStore(db)
    registry(store)
    before = snapshot(store)
    store.close()
    args = [
        "import",
        "visits",
        str(SAMPLES / "visits.csv"),
        "--mapping",
        str(SAMPLES / "visits.mapping.json"),
        "--db",
        db,
        "--dry-run",
    ]

    alone = CliRunner().invoke(app, args)
    together = CliRunner().invoke(
        app,
        [
            *args,
            "--patients",
            str(SAMPLES / "patients_cp1258.csv"),
            "--patients-mapping",
            str(SAMPLES / "patients.mapping.json"),
        ],
    )

    assert alone.exit_code == 1 and "3 with errors" in alone.output
    assert together.exit_code == 0, together.output
    assert "4 created" in together.output and "3 created" in together.output
    store = SqlStore(db)
    try:
        assert snapshot(store) == before
    finally:
        store.close()


def test_a_registered_doctor_is_referenced_and_an_unknown_one_kept_by_licence() -> None:
    store = MemoryStore()
    repo = registry(store)
    doctor = {
        "resourceType": "Practitioner",
        "identifier": [{"system": PRACTITIONER, "value": "0012345/HCM-CCHN"}],
        "name": [{"text": "Bác sĩ Trần Minh"}],
    }
    registered = repo.create(doctor, "Practitioner").resource
    importer(store, repo).run(sample_jobs())
    [first] = search(
        repo, "Encounter", identifier="https://fhir.sokhoe.vn/sid/visit/79001|LK2025-0001"
    )
    individual = (first.content or {})["participant"][0]["individual"]
    assert individual["reference"] == f"Practitioner/{registered.id}"


def test_a_cccd_pointing_at_someone_else_is_refused(store: FhirStore, tmp_path: Path) -> None:
    repo = registry(store)
    stranger = {
        "resourceType": "Patient",
        "identifier": [{"use": "official", "system": CCCD, "value": "079085001234"}],
        "name": [{"use": "official", "text": "Hồ Thị Mai", "family": "Hồ"}],
        "birthDate": "1985-07-01",
    }
    kept = repo.create(stranger, "Patient").resource

    [report] = importer(store, repo).run(sample_jobs()[:1])

    first = by_row(report)[2]
    assert first.status == "error"
    assert "birth date is 1985-07-01, not 1985-03-12" in first.messages[0]
    assert "family name is not Nguyễn" in first.messages[0]
    assert report.totals["created"] == 3
    assert repo.read("Patient", kept.id).version_id == 1  # the stranger's record is untouched
