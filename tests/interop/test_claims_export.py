"""``sokhoe claims export``: signed appraisal XML from a demo population in SQLite.

One module-scoped store: 200 demo people (seed 5) plus a constructed day (2026-07-15, after the
demo's last day) at one facility, whose visits exercise what the demo cannot: an uninsured
inpatient, a patient without a birth date, a visit without a diagnosis, a test repeated at
another facility and overlapping prescriptions.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]
from signxml.exceptions import InvalidSignature
from sqlalchemy import select
from typer.testing import CliRunner

from sokhoe.access.guard import platform_repository
from sokhoe.cli import app
from sokhoe.demo import write_demo
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.claims.envelope import read_claim, read_table
from sokhoe.interop.claims.export import ExportOptions, export_day, export_repository, file_name
from sokhoe.interop.claims.signing import facility_key, verify
from sokhoe.interop.claims.tables import TABLES
from sokhoe.interop.claims.validate import check_field
from sokhoe.interop.load import load_paths
from sokhoe.mpi.identifiers import BHYT, CCCD, FACILITY, mrn_system
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.access_schema import audit_event

BASE = "http://127.0.0.1:8000/fhir"
DAY = date(2026, 7, 15)
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
DRUG = "https://fhir.sokhoe.vn/CodeSystem/drug"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


JAVA_VERIFIER = """\
import java.io.File;
import java.io.FileInputStream;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

public class Verify {
    public static void main(String[] args) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        X509Certificate cert;
        try (FileInputStream in = new FileInputStream(args[0])) {
            CertificateFactory x509 = CertificateFactory.getInstance("X.509");
            cert = (X509Certificate) x509.generateCertificate(in);
        }
        for (int i = 1; i < args.length; i++) {
            Document doc = factory.newDocumentBuilder().parse(new File(args[i]));
            NodeList found = doc.getElementsByTagNameNS(XMLSignature.XMLNS, "Signature");
            DOMValidateContext context = new DOMValidateContext(cert.getPublicKey(), found.item(0));
            XMLSignatureFactory dom = XMLSignatureFactory.getInstance("DOM");
            XMLSignature signature = dom.unmarshalXMLSignature(context);
            System.out.println((signature.validate(context) ? "VALID " : "INVALID ") + args[i]);
        }
    }
}
"""
"""An independent verifier: the JDK's own XML signature implementation (JSR 105), closer to
what a portal built on Java or .NET does than signxml verifying its own output."""


@dataclass
class World:
    db: Path
    store: SqlStore
    code: str
    """The facility of the constructed day."""
    other_org: str
    demo_code: str
    """A facility-day of the demo with an inpatient stay."""
    demo_day: date
    ids: dict[str, str]
    var: Path


def _org_code(org: dict[str, Any]) -> str:
    return str(next(i["value"] for i in org["identifier"] if i["system"] == FACILITY))


def _put(repo: FhirRepository, resource: dict[str, Any]) -> None:
    repo.update(resource, resource["resourceType"], resource["id"])


def _patient(pid: str, org: str, code: str, template: dict[str, Any], **kw: Any) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [
            {"system": CCCD, "value": kw.get("cccd", "001090012345")},
            {"system": mrn_system(code), "value": f"T-{pid}"},
        ],
        "name": [{"use": "official", "text": f"Trần Thị {pid}", "family": "Trần"}],
        "gender": "female",
        "address": template["address"],
    }
    if kw.get("birth", True):
        patient["birthDate"] = "1990-05-17"
    if kw.get("card"):
        patient["identifier"].append(
            {
                "system": BHYT,
                "value": kw["card"],
                "period": {"start": "2026-01-01", "end": "2026-12-31"},
                "assigner": {"reference": f"Organization/{org}"},
            }
        )
    return patient


def _encounter(
    eid: str, pid: str, org: str, start: str, end: str, cls: str = "AMB", dx: str | None = None
) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": ACT, "code": cls},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start, "end": end},
        "reasonCode": [{"text": "Sốt, ho"}],
        "serviceProvider": {"reference": f"Organization/{org}"},
    }
    if dx:
        enc["diagnosis"] = [{"condition": {"reference": f"Condition/{dx}"}, "rank": 1}]
    return enc


def _condition(cid: str, pid: str, eid: str, code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"coding": [{"system": ICD10, "code": code}], "text": text},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
    }


def _lab(oid: str, pid: str, eid: str, code: str, when: str, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
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
        "code": {"coding": [{"system": LOINC, "code": code, "display": f"test {code}"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "mg/dL"},
    }


def _rx(rid: str, pid: str, eid: str, drug: str, when: str, days: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": DRUG, "code": drug}]},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "authoredOn": when,
        "dosageInstruction": [{"text": "Uống 1 viên x 2 lần/ngày"}],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "d"}},
    }


def _construct(repo: FhirRepository, store: SqlStore) -> tuple[str, str, dict[str, str]]:
    """The constructed day at facility A (plus an earlier visit at facility B)."""
    encounters = [r.content for r in store.iter_all("Encounter") if r.content]
    orgs = {r.id: r.content for r in store.iter_all("Organization") if r.content}
    used = Counter(e["serviceProvider"]["reference"].split("/")[1] for e in encounters)
    (org_a, _), (org_b, _) = used.most_common(2)
    code_a = _org_code(orgs[org_a])
    doctor = next(
        e["participant"][0]["individual"]["reference"]
        for e in encounters
        if e["serviceProvider"]["reference"] == f"Organization/{org_a}" and e.get("participant")
    )
    template = next(r.content for r in store.iter_all("Patient") if r.content)
    resources: list[dict[str, Any]] = []
    # P1 insured: lab repeated (done at B three days before), overlapping metformin
    resources += [
        _patient("p1", org_a, code_a, template, card="DN4790123456789"),
        _encounter("e0", "p1", org_b, "2026-07-12T08:00:00+07:00", "2026-07-12T08:30:00+07:00"),
        _lab("o0", "p1", "e0", "2345-7", "2026-07-12T08:10:00+07:00", 150),
        _rx("r0", "p1", "e0", "METFORMIN-500", "2026-07-01T08:00:00+07:00", 30),
        _encounter(
            "e1", "p1", org_a, "2026-07-15T09:00:00+07:00", "2026-07-15T09:30:00+07:00", dx="c1"
        ),
        _condition("c1", "p1", "e1", "E11.9", "Đái tháo đường type 2"),
        _lab("o1", "p1", "e1", "2345-7", "2026-07-15T09:10:00+07:00", 160),
        _rx("r1", "p1", "e1", "METFORMIN-500", "2026-07-15T09:20:00+07:00", 30),
    ]
    # P2 uninsured inpatient: written (XML7, no check-in, insurance pays nothing)
    resources += [
        _patient("p2", org_a, code_a, template, cccd="001190054321"),
        _encounter(
            "e2",
            "p2",
            org_a,
            "2026-07-15T10:00:00+07:00",
            "2026-07-18T10:00:00+07:00",
            cls="IMP",
            dx="c2",
        ),
        _condition("c2", "p2", "e2", "J18.9", "Viêm phổi"),
        _lab("o2", "p2", "e2", "777-3", "2026-07-15T10:30:00+07:00", 250),
        _rx("r2", "p2", "e2", "CEFTRIAXON-1G", "2026-07-15T10:40:00+07:00", 3),
    ]
    # P3 has no birth date; P4's visit has no diagnosis: both withheld
    resources += [
        _patient("p3", org_a, code_a, template, birth=False, card="HC4790111111111"),
        _encounter(
            "e3", "p3", org_a, "2026-07-15T11:00:00+07:00", "2026-07-15T11:20:00+07:00", dx="c3"
        ),
        _condition("c3", "p3", "e3", "J06.9", "Viêm họng"),
        _patient("p4", org_a, code_a, template, card="HC4790222222222"),
        _encounter("e4", "p4", org_a, "2026-07-15T14:00:00+07:00", "2026-07-15T14:20:00+07:00"),
    ]
    for resource in resources:
        if resource["resourceType"] == "Encounter":
            resource["participant"] = [{"individual": {"reference": doctor}}]
        _put(repo, resource)
    return code_a, org_b, {"e1": "e1", "e2": "e2", "e3": "e3", "e4": "e4"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("claims")
    write_demo(root / "demo", 200, 5, "bundles")
    db = root / "claims.db"
    store = SqlStore(f"sqlite:///{db}")
    repo = platform_repository(store, BASE)
    assert load_paths(repo, [root / "demo"], workers=0).errors == []
    inpatient = next(
        r.content
        for r in store.iter_all("Encounter")
        if r.content and r.content["class"]["code"] == "IMP"
    )
    org = repo.read("Organization", inpatient["serviceProvider"]["reference"].split("/")[1])
    demo_code = _org_code(org.content or {})
    demo_day = date.fromisoformat(inpatient["period"]["start"][:10])
    code, other, ids = _construct(repo, store)
    yield World(db, store, code, other, demo_code, demo_day, ids, root / "var")
    store.close()


def _export(world: World, out: Path, code: str, day: date) -> Any:
    key = facility_key(world.var, code, code)
    options = ExportOptions(code, day, out, key, created=date(2026, 7, 20))
    return export_day(export_repository(world.store, BASE), options), key


DECISION: dict[str, dict[str, Any]] = tomllib.loads(
    (Path(__file__).parent / "data" / "qd4750_tables.toml").read_text(encoding="utf-8")
)
"""XML1–XML5, XML7, XML8 as the Decision publishes them (QĐ 130 as amended by QĐ 4750 and QĐ
3176), typed from the regulation and public sources named in the file, never from tables.py."""


def _decision_layout(data: bytes) -> set[str]:
    """Check each table of a ``GIAMDINHHS`` file against ``DECISION``: root, list and row
    elements and every column's name in document order. Read with lxml alone, not with
    ``read_claim`` (which finds the rows through tables.py). The tables seen."""
    seen: set[str] = set()
    for file in etree.fromstring(data).iterfind("THONGTINHOSO/DANHSACHHOSO/HOSO/FILEHOSO"):
        loai = file.findtext("LOAIHOSO")
        spec = DECISION[loai]
        inner = etree.fromstring(base64.b64decode(file.findtext("NOIDUNGFILE")))
        assert inner.tag == spec["root"], loai
        rows = [inner]
        if "list" in spec:
            assert [e.tag for e in inner] == [spec["list"]], loai
            rows = list(inner[0])
            assert rows and {e.tag for e in rows} == {spec["row"]}, loai
        for row in rows:
            assert [e.tag for e in row] == spec["columns"], loai
        seen.add(loai)
    return seen


def _check_values(loai: str, rows: list[dict[str, str]]) -> None:
    for row in rows:
        for spec in TABLES[loai].fields:
            assert check_field(spec, row[spec.name]) is None, (loai, spec.name, row[spec.name])


def test_demo_day_exports_signed_files_that_verify(world: World, tmp_path: Path) -> None:
    report, key = _export(world, tmp_path, world.demo_code, world.demo_day)
    assert report.results and not report.withheld
    folder = tmp_path / world.demo_code / world.demo_day.isoformat()
    tables_seen: set[str] = set()
    for result in report.written:
        assert result.file == folder / file_name(world.demo_code, world.demo_day, result.ma_lk)
        data = result.file.read_bytes()
        assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
        signed = verify(data, key.cert_pem)
        assert signed.findtext("THONGTINDONVI/MACSKCB") == world.demo_code
        root = etree.fromstring(data)
        assert root.findtext("THONGTINHOSO/NGAYLAP") == "20260720"
        assert root.findtext("THONGTINHOSO/SOLUONGHOSO") == "1"
        ds = "{http://www.w3.org/2000/09/xmldsig#}"
        sig = root.find(f"CHUKYDONVI/{ds}Signature")
        assert sig is not None
        algorithms = {e.tag.removeprefix(ds): e.get("Algorithm") for e in sig.iter()}
        assert algorithms["CanonicalizationMethod"] == (
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
        )
        assert algorithms["SignatureMethod"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        assert algorithms["DigestMethod"] == "http://www.w3.org/2001/04/xmlenc#sha256"
        assert algorithms["Transform"] in (
            "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
            "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        )
        assert sig.find(f"{ds}KeyInfo/{ds}X509Data/{ds}X509Certificate") is not None
        tables_seen |= _decision_layout(data)
        tables = read_claim(data)
        for loai, rows in tables.items():
            _check_values(loai, rows)
        summary = tables["XML1"][0]
        assert summary["MA_LK"] == result.ma_lk
        assert re.fullmatch(r"\d{12}", summary["NGAY_VAO"])
        assert summary["NGAY_VAO"].startswith(world.demo_day.strftime("%Y%m%d"))
        lines = tables.get("XML2", []) + tables["XML3"]
        assert Decimal(summary["T_TONGCHI_BV"]) == sum(
            (Decimal(r["THANH_TIEN_BV"]) for r in lines), Decimal(0)
        )
        for row in lines:
            price = row.get("DON_GIA") or row["DON_GIA_BV"]
            assert Decimal(row["THANH_TIEN_BV"]) == Decimal(row["SO_LUONG"]) * Decimal(price)
        assert all(r["MA_LK"] == result.ma_lk for rows in tables.values() for r in rows)
        assert "XML8" in tables
        if summary["MA_LOAI_KCB"] == "03":
            assert "XML7" in tables
    assert any(
        read_claim(r.file.read_bytes())["XML1"][0]["MA_LOAI_KCB"] == "03"
        for r in report.written
        if r.file
    )
    assert tables_seen == set(DECISION)  # the day's files hold every pinned table


def test_editing_a_signed_file_breaks_verification(world: World, tmp_path: Path) -> None:
    report, key = _export(world, tmp_path, world.demo_code, world.demo_day)
    data = report.written[0].file.read_bytes()
    verify(data, key.cert_pem)
    root = etree.fromstring(data)
    file = root.find("THONGTINHOSO/DANHSACHHOSO/HOSO/FILEHOSO")
    inner = base64.b64decode(file.findtext("NOIDUNGFILE"))
    forged = inner.replace(b"<T_BHTT>", b"<T_BHTT>9", 1)
    assert forged != inner
    file.find("NOIDUNGFILE").text = base64.b64encode(forged).decode()
    with pytest.raises(InvalidSignature):
        verify(etree.tostring(root), key.cert_pem)
    other = facility_key(world.var, "ZZ999", "another facility")
    with pytest.raises(InvalidSignature):
        verify(data, other.cert_pem)


def test_constructed_day_reports_problems_and_withholds_exactly_those(
    world: World, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "claims",
            "export",
            "--facility",
            world.code,
            "--date",
            DAY.isoformat(),
            "--out",
            str(tmp_path),
            "--db",
            f"sqlite:///{world.db}",
        ],
        env={"SOKHOE_VAR_DIR": str(world.var)},
    )
    assert result.exit_code == 1, result.output
    folder = tmp_path / world.code / DAY.isoformat()
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["encounters"] == 4
    assert report["summary"]["written"] == 2 and report["summary"]["withheld"] == 2
    errors = {
        (p["table"], p["ma_lk"], p["stt"], p["field"], p["message"])
        for p in report["problems"]
        if p["severity"] == "error"
    }
    assert errors == {
        ("XML1", "e3", None, "NGAY_SINH", "required field is empty"),
        ("XML0", "e3", 1, "NGAY_SINH", "required field is empty"),
        ("XML1", "e4", None, "MA_BENH_CHINH", "required field is empty"),
        ("XML1", "e4", None, "CHAN_DOAN_RV", "required field is empty"),
        ("XML8", "e4", None, "CHAN_DOAN_RV", "required field is empty"),
    }
    assert "error: XML1 e3 NGAY_SINH: required field is empty" in result.output
    for ma_lk, written in (("e1", True), ("e2", True), ("e3", False), ("e4", False)):
        assert (folder / file_name(world.code, DAY, ma_lk)).exists() is written
    # the uninsured inpatient: discharge paper, record summary, no check-in, insurance pays 0
    tables = read_claim((folder / file_name(world.code, DAY, "e2")).read_bytes())
    assert {"XML1", "XML3", "XML7", "XML8"} <= set(tables)
    summary = tables["XML1"][0]
    assert summary["MA_DOITUONG_KCB"] == "9" and summary["MA_THE_BHYT"] == ""
    assert summary["T_BHTT"] == "0" and summary["T_BNTT"] == summary["T_TONGCHI_BV"]
    assert summary["MA_LOAI_KCB"] == "03" and summary["SO_NGAY_DTRI"] == "4"
    assert not (folder / "checkin" / file_name(world.code, DAY, "e2")).exists()
    # the insured visit has its signed check-in
    checkin = (folder / "checkin" / file_name(world.code, DAY, "e1")).read_bytes()
    key = (world.var / "certs" / f"{world.code}.pem").read_bytes()
    signed = verify(checkin, key)
    rows = read_table("XML0", etree.tostring(signed))
    assert rows[0]["MA_THE_BHYT"] == "DN4790123456789" and rows[0]["MA_LK"] == "e1"
    assert "self-signed DEVELOPMENT certificate" in result.output


def test_repeated_test_and_overlapping_prescription_warn(world: World, tmp_path: Path) -> None:
    report, _ = _export(world, tmp_path, world.code, DAY)
    warnings = [p for p in report.problems if p.severity == "warning"]
    repeated = [p for p in warnings if p.field == "MA_CHI_SO"]
    assert [(p.ma_lk, p.stt) for p in repeated] == [("e1", 1)]
    assert "2345-7" in repeated[0].message and world.other_org in repeated[0].message
    overlap = [p for p in warnings if p.field == "MA_THUOC"]
    assert [(p.ma_lk, p.stt) for p in overlap] == [("e1", 1)]
    assert "metformin" in overlap[0].message and "r0" in overlap[0].message
    # warnings do not withhold: e1 is written
    assert (tmp_path / world.code / DAY.isoformat() / file_name(world.code, DAY, "e1")).exists()
    # the inpatient's lab (777-3) was never done elsewhere: no warning for e2
    assert not [p for p in warnings if p.ma_lk == "e2"]


def test_export_is_reproducible(world: World, tmp_path: Path) -> None:
    first, _ = _export(world, tmp_path / "a", world.code, DAY)
    second, _ = _export(world, tmp_path / "b", world.code, DAY)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.xml"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.xml"))
    assert files_a == files_b and len(files_a) == 3  # two claims and one check-in
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert first.as_json() == second.as_json()


def test_every_exported_visit_is_audited_as_export(world: World, tmp_path: Path) -> None:
    with world.store.writer.connect() as conn:
        before = conn.execute(
            select(audit_event.c.seq).where(audit_event.c.action == "export")
        ).all()
    _export(world, tmp_path, world.code, DAY)
    with world.store.writer.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.patient_id, audit_event.c.outcome, audit_event.c.agent).where(
                audit_event.c.action == "export",
                audit_event.c.seq > max([0, *[b[0] for b in before]]),
            )
        ).all()
    assert sorted((r.patient_id, r.outcome) for r in rows) == [
        ("p1", "success"),
        ("p2", "success"),
        ("p3", "error"),
        ("p4", "error"),
    ]
    assert {r.agent for r in rows} == {"client:claims-export"}


def test_price_list_csv_without_a_drug_withholds_that_visit(world: World, tmp_path: Path) -> None:
    from sokhoe.interop.claims.catalogue import demo_catalogue

    out = tmp_path / "out"
    _export(world, out, world.code, DAY)
    e1 = out / world.code / DAY.isoformat() / file_name(world.code, DAY, "e1")
    assert e1.exists()
    prices = tmp_path / "prices.csv"
    lines = ["kind,key,code,name,unit,price,group,per_day,ingredient,route"]
    for item in demo_catalogue().items.values():
        if item.key != "METFORMIN-500":
            lines.append(
                f"{item.category},{item.key},{item.code},{item.name},{item.unit},{item.price},"
                f"{item.group},{item.per_day},{item.ingredient},{item.route}"
            )
    prices.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "claims",
            "export",
            "--facility",
            world.code,
            "--date",
            DAY.isoformat(),
            "--out",
            str(out),
            "--db",
            f"sqlite:///{world.db}",
            "--catalogue",
            str(prices),
        ],
        env={"SOKHOE_VAR_DIR": str(world.var)},
    )
    assert result.exit_code == 1
    assert "error: XML2 e1 row 1 DON_GIA: no price in the price list for drug METFORMIN-500" in (
        result.output
    )
    assert not e1.exists()  # the earlier run's file is no longer valid, so it is gone
    assert (out / world.code / DAY.isoformat() / file_name(world.code, DAY, "e2")).exists()


def test_cli_refuses_bad_arguments_and_unknown_facilities(world: World, tmp_path: Path) -> None:
    base = ["claims", "export", "--out", str(tmp_path), "--db", f"sqlite:///{world.db}"]
    env = {"SOKHOE_VAR_DIR": str(world.var)}
    bad_date = CliRunner().invoke(app, [*base, "--facility", world.code, "--date", "15/07/2026"])
    assert bad_date.exit_code == 2
    unknown = CliRunner().invoke(
        app, [*base, "--facility", "ZZ000", "--date", "2026-07-15"], env=env
    )
    assert unknown.exit_code == 2 and "ZZ000" in unknown.output
    assert not list(tmp_path.iterdir())


def test_given_certificate_signs_and_a_foreign_key_is_refused(world: World, tmp_path: Path) -> None:
    from sokhoe.interop.claims.signing import load_key, self_signed

    mine, theirs = self_signed(world.code, "Bệnh viện A"), self_signed("ZZ999", "B")
    (tmp_path / "a.pem").write_bytes(mine.cert_pem)
    (tmp_path / "a.key").write_bytes(mine.key_pem)
    (tmp_path / "b.key").write_bytes(theirs.key_pem)
    with pytest.raises(ValueError, match="does not belong"):
        load_key(tmp_path / "a.pem", tmp_path / "b.key")
    base = [
        "claims",
        "export",
        "--facility",
        world.code,
        "--date",
        DAY.isoformat(),
        "--out",
        str(tmp_path / "out"),
        "--db",
        f"sqlite:///{world.db}",
    ]
    half = CliRunner().invoke(app, [*base, "--cert", str(tmp_path / "a.pem")])
    assert half.exit_code == 2
    result = CliRunner().invoke(
        app, [*base, "--cert", str(tmp_path / "a.pem"), "--key", str(tmp_path / "a.key")]
    )
    assert result.exit_code == 1  # e3 and e4 are withheld, as always
    assert "DEVELOPMENT" not in result.output
    data = tmp_path / "out" / world.code / DAY.isoformat() / file_name(world.code, DAY, "e1")
    verify(data.read_bytes(), mine.cert_pem)
    with pytest.raises(InvalidSignature):
        verify(data.read_bytes(), theirs.cert_pem)


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK (java on PATH)")
def test_the_jdk_verifies_our_signatures_and_rejects_an_edited_file(
    world: World, tmp_path: Path
) -> None:
    report, key = _export(world, tmp_path / "out", world.code, DAY)
    files = [r.file for r in report.written if r.file] + [
        r.checkin for r in report.written if r.checkin
    ]
    assert len(files) == 3
    forged = tmp_path / "forged.xml"
    root = etree.fromstring(files[0].read_bytes())
    root.find("THONGTINDONVI/MACSKCB").text = "99999"
    forged.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    (tmp_path / "Verify.java").write_text(JAVA_VERIFIER, encoding="utf-8")
    (tmp_path / "cert.pem").write_bytes(key.cert_pem)
    done = subprocess.run(
        [
            str(shutil.which("java")),
            str(tmp_path / "Verify.java"),
            str(tmp_path / "cert.pem"),
            *map(str, files),
            str(forged),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    verdicts = [line.split(" ", 1)[0] for line in done.stdout.splitlines()]
    assert verdicts == ["VALID", "VALID", "VALID", "INVALID"], done.stdout + done.stderr
