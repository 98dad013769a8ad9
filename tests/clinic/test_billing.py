"""A patient checked in by the chip-ID QR is billed and claimed alike (SQLite, through the door).

One module-scoped store: a facility (01001, Hà Nội) and its doctor in the registry; the desk
checks people in from the CCCD QR; the doctor records visits with a lab test and drugs of the
demo price list; the cashier issues the bill and takes the payment; the claims export writes
the day's XML. Every expected amount below is worked out by hand from the demo prices.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.principal import Principal
from sokhoe.clinic.billing import (
    BILL_NUMBER,
    INVOICE_ENCOUNTER,
    Bill,
    issue_bill,
    payment_payload,
    record_payment,
)
from sokhoe.clinic.referrals import referral
from sokhoe.clinic.vietqr import BankAccount, read_payload
from sokhoe.errors import Conflict, Forbidden, InvalidRequest
from sokhoe.interop.claims.benefit import Route
from sokhoe.interop.claims.envelope import read_claim, read_table
from sokhoe.interop.claims.export import ExportOptions, export_day, export_repository
from sokhoe.interop.claims.signing import facility_key
from sokhoe.interop.claims.sources import FacilityRef
from sokhoe.mpi.identifiers import FACILITY, PRACTITIONER
from sokhoe.operations.check_in import check_in
from sokhoe.registry.addresses import unresolved
from sokhoe.store.sql import SqlStore

BASE = "http://127.0.0.1:8000/fhir"
CODE = "01001"
STATION = "01002"
"""A commune health station that refers patients to the hospital ``CODE``."""
LOINC = "http://loinc.org"
DRUG = "https://fhir.sokhoe.vn/CodeSystem/drug"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
QR_NEW = (
    "001090012345|Trần Văn Bình|17051990|Nam|"
    "Số 12, Thôn Yên Nội, Xã Phúc Thọ, Thành phố Hà Nội|01022024"
)
"""A card whose address is in the post-July-2025 form (ward/commune + province)."""
QR_OLD = (
    "001190054321|012345678|NGUYỄN THỊ HOA|02031990|Nữ|"
    "Thôn 2, Xã Lũng Cú, Huyện Đồng Văn, Tỉnh Hà Giang|05062021"
)
"""An older card: commune, district, province (Hà Giang, merged into Tuyên Quang)."""


@dataclass
class World:
    store: SqlStore
    desk: GuardedRepository
    doctor: GuardedRepository
    var: Path
    insured: str
    uninsured: str


def _staff(platform: GuardedRepository, who: str, role: str, code: str = CODE) -> GuardedRepository:
    scopes = frozenset({"user/*.cruds"})
    return platform.for_caller(
        Principal("staff", who, who, role=role, facility=code, scopes=scopes)
    )


def _params(**values: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": k, "valueString": v} for k, v in values.items()],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("billing")
    store = SqlStore(f"sqlite:///{root / 'bill.db'}")
    platform = platform_repository(store, BASE)
    for resource in (
        {
            "resourceType": "Organization",
            "id": "org-hn",
            "identifier": [{"system": FACILITY, "value": CODE}],
            "name": "Bệnh viện Đa khoa Hà Nội",
        },
        {
            "resourceType": "Organization",
            "id": "org-hcm",
            "identifier": [{"system": FACILITY, "value": "79001"}],
            "name": "Bệnh viện Sài Gòn",
        },
        {
            "resourceType": "Organization",
            "id": "org-tram",
            "identifier": [{"system": FACILITY, "value": STATION}],
            "name": "Trạm Y tế Xã Phúc Thọ",
        },
        {
            "resourceType": "Practitioner",
            "id": "dr-an",
            "identifier": [{"system": PRACTITIONER, "value": "001234/HNO-CCHN"}],
            "name": [{"text": "BS. Nguyễn An"}],
        },
    ):
        platform.update(resource, resource["resourceType"], resource["id"])
    desk = _staff(platform, "le.tan", "receptionist")
    insured = check_in(desk, _params(qr=QR_NEW, bhyt="DN4010123456789", facility=CODE))
    uninsured = check_in(desk, _params(qr=QR_OLD, facility=CODE))
    assert insured.registered and uninsured.registered
    yield World(
        store,
        desk,
        _staff(platform, "bs.an", "doctor"),
        root / "var",
        insured.patient.id,
        uninsured.patient.id,
    )
    store.close()


def _visit(
    world: World,
    eid: str,
    patient: str,
    day: str,
    labs: list[str],
    drugs: list[tuple[str, int]],
    *,
    based_on: str | None = None,
    provider: str = "org-hn",
    writer: GuardedRepository | None = None,
) -> None:
    """An outpatient visit 09:00–09:40 with a diagnosis, lab results and prescriptions,
    written by the doctor through the door (or ``writer``), at ``provider``, ``basedOn``
    the ServiceRequest ``based_on``."""
    at = f"{day}T09:%02d:00+07:00"
    who = {"reference": "Patient/" + patient}
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Encounter",
            "id": eid,
            "status": "finished",
            "class": {"system": ACT, "code": "AMB"},
            "subject": who,
            "period": {"start": at % 0, "end": at % 40},
            "reasonCode": [{"text": "Khát nhiều, tiểu nhiều"}],
            "diagnosis": [{"condition": {"reference": f"Condition/{eid}-dx"}, "rank": 1}],
            "participant": [{"individual": {"reference": "Practitioner/dr-an"}}],
            "serviceProvider": {"reference": f"Organization/{provider}"},
        },
        {
            "resourceType": "Condition",
            "id": f"{eid}-dx",
            "code": {"coding": [{"system": ICD10, "code": "E11.9"}], "text": "Đái tháo đường"},
            "subject": who,
            "encounter": {"reference": f"Encounter/{eid}"},
        },
    ]
    for n, loinc in enumerate(labs, start=1):
        resources.append(
            {
                "resourceType": "Observation",
                "id": f"{eid}-lab{n}",
                "status": "final",
                "category": [{"coding": [{"system": LAB, "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": loinc, "display": f"test {loinc}"}]},
                "subject": who,
                "encounter": {"reference": f"Encounter/{eid}"},
                "effectiveDateTime": at % (10 + n),
                "valueQuantity": {"value": 7.1, "unit": "%"},
            }
        )
    for n, (drug, days) in enumerate(drugs, start=1):
        resources.append(
            {
                "resourceType": "MedicationRequest",
                "id": f"{eid}-rx{n}",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": DRUG, "code": drug}]},
                "subject": who,
                "encounter": {"reference": f"Encounter/{eid}"},
                "requester": {"reference": "Practitioner/dr-an"},
                "authoredOn": at % 30,
                "dosageInstruction": [{"text": "Theo chỉ dẫn"}],
                "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "d"}},
            }
        )
    if based_on is not None:
        resources[0]["basedOn"] = [{"reference": f"ServiceRequest/{based_on}"}]
    for resource in resources:
        (writer or world.doctor).update(resource, resource["resourceType"], resource["id"])


def _export(
    world: World, out: Path, day: date, ma_lk: str, code: str = CODE
) -> dict[str, list[dict[str, str]]]:
    key = facility_key(world.var, code, code)
    report = export_day(
        export_repository(world.store, BASE),
        ExportOptions(code, day, out, key, created=day),
    )
    mine = [r for r in report.results if r.ma_lk == ma_lk]
    assert mine and mine[0].file is not None, [str(p) for p in report.problems]
    tables = read_claim(mine[0].file.read_bytes())
    if mine[0].checkin is not None:  # XML0 goes in a file of its own
        tables["XML0"] = read_table("XML0", mine[0].checkin.read_bytes())
    return tables


def _same_as_claim(bill: Bill, tables: dict[str, list[dict[str, str]]]) -> None:
    """The bill's totals are XML1's and its lines XML2's then XML3's, row by row."""
    summary = tables["XML1"][0]
    assert (bill.total, bill.insurance, bill.co_payment, bill.self_pay) == tuple(
        Decimal(summary[k]) for k in ("T_TONGCHI_BV", "T_BHTT", "T_BNCCT", "T_BNTT")
    )
    rows = tables.get("XML2", []) + tables["XML3"]
    assert len(rows) == len(bill.lines)
    for line, row in zip(bill.lines, rows, strict=True):
        assert line.code == (row.get("MA_THUOC") or row["MA_DICH_VU"])
        assert line.quantity == Decimal(row["SO_LUONG"])
        assert line.amount == Decimal(row["THANH_TIEN_BV"])
        assert line.insurance == Decimal(row["T_BHTT"])
        assert line.co_payment == Decimal(row["T_BNCCT"])
        assert line.self_pay == Decimal(row["T_BNTT"])


def test_card_address_is_parsed_into_units_and_codes(world: World) -> None:
    patient = world.desk.read("Patient", world.insured).content or {}
    home = patient["address"][0]
    assert (home["line"], home["city"], home["state"]) == (
        ["Số 12", "Thôn Yên Nội"],
        "Xã Phúc Thọ",
        "Thành phố Hà Nội",
    )
    assert unresolved(home) == []
    old = (world.desk.read("Patient", world.uninsured).content or {})["address"][0]
    assert old["district"] == "Huyện Đồng Văn" and "city" not in old
    assert "Xã Lũng Cú" in old["line"]  # a same-named new commune exists: still not mapped
    assert ["ward"] == [reason.split(":")[0] for reason in unresolved(old)]


def test_level_4_visit_pays_80_percent_on_the_bill_and_in_the_xml(
    world: World, tmp_path: Path
) -> None:
    # exam 50,600 + HbA1c 101,000 + glucose 21,500 + ceftriaxon 10 × 21,000 + metformin
    # 2/day × 30 days × 420 = 408,300 đồng: above 15 % of the base salary (351,000), so the
    # level-4 card's 80 % applies to every line.
    _visit(
        world,
        "e-80",
        world.insured,
        "2026-07-15",
        ["4548-4", "2345-7"],
        [
            ("CEFTRIAXON-1G", 10),
            ("METFORMIN-500", 30),
        ],
    )
    cashier = _staff(platform_repository(world.store, BASE), "thu.ngan", "receptionist")
    bill, invoice = issue_bill(cashier, "e-80")
    assert bill.payer == "insurance" and bill.card == "DN4010123456789"
    assert [(line.code, line.amount, line.insurance, line.co_payment) for line in bill.lines] == [
        ("40.221", Decimal(210000), Decimal(168000), Decimal(42000)),
        ("40.794", Decimal(25200), Decimal(20160), Decimal(5040)),
        ("02.1896", Decimal(50600), Decimal(40480), Decimal(10120)),
        ("23.0083.1523", Decimal(101000), Decimal(80800), Decimal(20200)),
        ("23.0075.1494", Decimal(21500), Decimal(17200), Decimal(4300)),
    ]
    assert (bill.total, bill.insurance, bill.co_payment, bill.self_pay) == (
        Decimal(408300),
        Decimal(326640),
        Decimal(81660),
        Decimal(0),
    )
    assert bill.due == 81660
    content = invoice.content or {}
    assert content["status"] == "issued"
    assert content["totalGross"] == {"value": 408300, "currency": "VND"}
    assert content["totalNet"] == {"value": 81660, "currency": "VND"}
    assert content["subject"] == {"reference": f"Patient/{world.insured}"}
    assert content["extension"] == [
        {"url": INVOICE_ENCOUNTER, "valueReference": {"reference": "Encounter/e-80"}}
    ]
    assert len(content["lineItem"]) == 5
    assert content["paymentTerms"] == (
        "Quỹ BHYT chi trả 326.640 đồng (mức hưởng 80%); người bệnh thanh toán 81.660 đồng."
    )
    tables = _export(world, tmp_path, date(2026, 7, 15), "e-80")
    _same_as_claim(bill, tables)
    assert {r["MUC_HUONG"] for r in tables["XML2"] + tables["XML3"]} == {"80"}
    summary = tables["XML1"][0]
    assert summary["DIA_CHI"] == "Số 12, Thôn Yên Nội, Xã Phúc Thọ, Thành phố Hà Nội"
    assert (summary["MATINH_CU_TRU"], summary["MAXA_CU_TRU"]) == ("01", "09715")
    assert summary["MA_THE_BHYT"] == "DN4010123456789" and summary["HO_TEN"] == "Trần Văn Bình"


def test_low_cost_visit_is_paid_in_full_by_insurance_in_both(world: World, tmp_path: Path) -> None:
    # exam 50,600 + glucose 21,500 + paracetamol 3/day × 5 days × 180 = 74,800 đồng, under
    # 351,000: the fund pays it all although the card is level 4.
    _visit(world, "e-low", world.insured, "2026-07-16", ["2345-7"], [("PARACETAMOL-500", 5)])
    cashier = _staff(platform_repository(world.store, BASE), "thu.ngan", "receptionist")
    bill, invoice = issue_bill(cashier, "e-low")
    assert (bill.total, bill.insurance, bill.patient_total, bill.due) == (
        Decimal(74800),
        Decimal(74800),
        Decimal(0),
        0,
    )
    assert bill.split is not None and bill.split.low_cost
    assert "thấp hơn 15% mức lương cơ sở" in (invoice.content or {})["paymentTerms"]
    tables = _export(world, tmp_path, date(2026, 7, 16), "e-low")
    _same_as_claim(bill, tables)
    assert {r["MUC_HUONG"] for r in tables["XML2"] + tables["XML3"]} == {"100"}
    with pytest.raises(Conflict, match="nothing to pay"):
        payment_payload(invoice.content or {}, BankAccount("970415", "113366668888"))


def test_old_card_fee_paying_visit_fills_the_address_it_can(world: World, tmp_path: Path) -> None:
    _visit(world, "e-fee", world.uninsured, "2026-07-17", ["2345-7"], [])
    cashier = _staff(platform_repository(world.store, BASE), "thu.ngan", "receptionist")
    bill, _ = issue_bill(cashier, "e-fee")
    # no card: the patient pays everything, exam 50,600 + glucose 21,500
    assert bill.payer == "self-pay" and bill.split is None
    assert (bill.total, bill.insurance, bill.self_pay, bill.due) == (
        Decimal(72100),
        Decimal(0),
        Decimal(72100),
        72100,
    )
    tables = _export(world, tmp_path, date(2026, 7, 17), "e-fee")
    _same_as_claim(bill, tables)
    summary = tables["XML1"][0]
    assert summary["DIA_CHI"] == "Thôn 2, Xã Lũng Cú, Huyện Đồng Văn, Tỉnh Hà Giang"
    assert summary["MATINH_CU_TRU"] == "08"  # Hà Giang lies inside today's Tuyên Quang
    assert summary["MAXA_CU_TRU"] == ""  # the old commune is flagged, not guessed


def test_payment_takes_exactly_the_amount_due_once(world: World) -> None:
    _visit(
        world,
        "e-pay",
        world.insured,
        "2026-07-18",
        ["4548-4", "2345-7"],
        [
            ("CEFTRIAXON-1G", 10),
            ("METFORMIN-500", 30),
        ],
    )
    cashier = _staff(platform_repository(world.store, BASE), "thu.ngan", "receptionist")
    bill, invoice = issue_bill(cashier, "e-pay")
    assert bill.due == 81660  # as in the 80 % visit above
    assert issue_bill(cashier, "e-pay")[1].version_id == invoice.version_id  # same bill
    payload = payment_payload(invoice.content or {}, BankAccount("970415", "113366668888"))
    fields = read_payload(payload)
    assert (fields["amount"], fields["bin"], fields["account"]) == (
        "81660",
        "970415",
        "113366668888",
    )
    assert fields["purpose"] == f"VP {bill.number}" and len(fields["purpose"]) <= 25
    with pytest.raises(InvalidRequest, match=r"81,660 đồng; 80,000 đồng is less"):
        record_payment(cashier, invoice.id, 80000, "cash")
    with pytest.raises(InvalidRequest, match=r"81,661 đồng is more"):
        record_payment(cashier, invoice.id, 81661, "cash")
    with pytest.raises(InvalidRequest, match="method"):
        record_payment(cashier, invoice.id, 81660, "cheque")
    paid = record_payment(cashier, invoice.id, 81660, "vietqr")
    assert (paid.invoice.content or {})["status"] == "balanced"
    reconciliation = paid.reconciliation.content or {}
    assert reconciliation["paymentAmount"] == {"value": 81660, "currency": "VND"}
    assert reconciliation["detail"][0]["request"] == {"reference": f"Invoice/{invoice.id}"}
    assert reconciliation["identifier"] == [{"system": BILL_NUMBER, "value": bill.number}]
    assert reconciliation["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "vietqr"
    with pytest.raises(Conflict, match="already paid"):
        record_payment(cashier, invoice.id, 81660, "cash")
    with pytest.raises(Conflict, match="is paid"):
        issue_bill(cashier, "e-pay")


def test_issuing_again_revises_the_unpaid_invoice(world: World) -> None:
    _visit(world, "e-rev", world.insured, "2026-07-20", [], [("AMLODIPIN-5", 30)])
    cashier = _staff(platform_repository(world.store, BASE), "thu.ngan", "receptionist")
    # exam 50,600 + amlodipin 30 × 350 = 61,100: low-cost, the fund pays all
    first, invoice = issue_bill(cashier, "e-rev")
    assert (first.total, first.due) == (Decimal(61100), 0)
    _visit(
        world,
        "e-rev",
        world.insured,
        "2026-07-20",
        ["4548-4"],
        [
            ("AMLODIPIN-5", 30),
            ("CEFTRIAXON-1G", 14),
        ],
    )
    # + HbA1c 101,000 + ceftriaxon 14 × 21,000 = 294,000 → 456,100: above 351,000, so 80 %
    # and the patient owes 20 %: 91,220 đồng
    second, revised = issue_bill(cashier, "e-rev")
    assert revised.id == invoice.id and int(revised.version_id) == int(invoice.version_id) + 1
    assert (second.total, second.insurance, second.due) == (
        Decimal(456100),
        Decimal(364880),
        91220,
    )
    assert (revised.content or {})["totalNet"] == {"value": 91220, "currency": "VND"}


def test_only_the_treating_facility_bills_the_visit(world: World) -> None:
    _visit(world, "e-other", world.insured, "2026-07-19", [], [])
    elsewhere = _staff(platform_repository(world.store, BASE), "thu.ngan2", "receptionist", "79001")
    with pytest.raises(Forbidden):
        issue_bill(elsewhere, "e-other")
    # a doctor there who broke the glass may read the visit, still not bill it
    glass = _staff(platform_repository(world.store, BASE), "bs.sg", "doctor", "79001")
    with pytest.raises(Forbidden, match="cannot bill a visit at 01001"):
        issue_bill(glass.for_caller(glass.principal, break_glass="cấp cứu"), "e-other")
    pharmacist = _staff(platform_repository(world.store, BASE), "duoc.si", "pharmacist")
    with pytest.raises(Forbidden, match="roles"):
        issue_bill(pharmacist, "e-other")


def test_a_referred_visit_is_billed_and_claimed_as_referred(world: World, tmp_path: Path) -> None:
    """The station refers the patient to the hospital at its visit's closing; the hospital's
    visit is based on the referral: bill and XML agree on the referred route (*chuyển
    tuyến*: the card's full level, as for a right-route visit), XML1 names the station and the
    referral paper, and the station's own claim names the hospital it referred to."""
    platform = platform_repository(world.store, BASE)
    station = FacilityRef("org-tram", STATION, "Trạm Y tế Xã Phúc Thọ")
    hospital = FacilityRef("org-hn", CODE, "Bệnh viện Đa khoa Hà Nội")
    _visit(
        world, "e-tram", world.insured, "2026-07-20", [], [], provider="org-tram", writer=platform
    )
    sent = platform.create(
        referral(
            patient_id=world.insured,
            patient_name="Trần Văn Bình",
            encounter_id="e-tram",
            sender=station,
            receiver=hospital,
            reason="Cần xét nghiệm HbA1c",
            diagnosis=None,
            when="2026-07-20T09:40:00+07:00",
        ),
        "ServiceRequest",
    ).resource.id
    labs, drugs = ["4548-4", "2345-7"], [("CEFTRIAXON-1G", 10), ("METFORMIN-500", 30)]
    _visit(world, "e-ref", world.insured, "2026-07-21", labs, drugs, based_on=sent)
    _visit(world, "e-noref", world.insured, "2026-07-21", labs, drugs)
    cashier = _staff(platform, "thu.ngan", "receptionist")
    referred, invoice = issue_bill(cashier, "e-ref")
    unreferred, _ = issue_bill(cashier, "e-noref")
    assert referred.split is not None and referred.split.route == Route.REFERRED
    assert unreferred.split is not None and unreferred.split.route == Route.RIGHT
    assert (referred.referred_from, unreferred.referred_from) == (STATION, "")
    # the route changes no amount here: referred and right-route both get the card's level
    assert referred.split.percent == unreferred.split.percent == 80
    assert (referred.total, referred.insurance, referred.due) == (
        Decimal(408300),
        Decimal(326640),
        81660,
    )
    assert (unreferred.total, unreferred.insurance, unreferred.due) == (
        referred.total,
        referred.insurance,
        referred.due,
    )
    assert (invoice.content or {})["paymentTerms"] == (
        "Quỹ BHYT chi trả 326.640 đồng (mức hưởng 80%, có giấy chuyển tuyến từ cơ sở 01002); "
        "người bệnh thanh toán 81.660 đồng."
    )
    tables = _export(world, tmp_path / "ref", date(2026, 7, 21), "e-ref")
    _same_as_claim(referred, tables)
    summary = tables["XML1"][0]
    assert (summary["MA_DOITUONG_KCB"], summary["MA_NOI_DI"], summary["MA_NOI_DEN"]) == (
        "1.3",
        STATION,
        "",
    )
    assert summary["GIAY_CHUYEN_TUYEN"] == sent
    assert tables["XML0"][0]["MA_DOITUONG_KCB"] == "1.3"  # the check-in is still due
    plain = _export(world, tmp_path / "noref", date(2026, 7, 21), "e-noref")
    _same_as_claim(unreferred, plain)
    assert [plain["XML1"][0][k] for k in ("MA_DOITUONG_KCB", "MA_NOI_DI", "GIAY_CHUYEN_TUYEN")] == [
        "1.1",
        "",
        "",
    ]
    assert plain["XML0"][0]["MA_DOITUONG_KCB"] == "1.1"
    sender = _export(world, tmp_path / "tram", date(2026, 7, 20), "e-tram", STATION)
    assert (sender["XML1"][0]["MA_NOI_DEN"], sender["XML1"][0]["MA_NOI_DI"]) == (CODE, "")
    assert sender["XML1"][0]["MA_DOITUONG_KCB"] == "1.1"
