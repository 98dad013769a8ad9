"""The claim tables as data, the field checks, the amount checks and the price list."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sokhoe.interop.claims.catalogue import demo_catalogue, load_catalogue
from sokhoe.interop.claims.envelope import inner_xml, read_table
from sokhoe.interop.claims.formats import birth12, number
from sokhoe.interop.claims.tables import TABLES, XML1, XML2
from sokhoe.interop.claims.validate import check_amounts, check_field, check_rules, validate_claim


def test_tables_have_unique_fields_and_the_2026_benefit_width() -> None:
    for table in TABLES.values():
        assert len(set(table.names)) == len(table.names), table.loai
        assert table.names[0] == "MA_LK"
    assert len(XML1.fields) == 66  # QĐ 130 table 1 as amended: 66 fields
    assert XML2.field("MUC_HUONG").max_len == 4  # QĐ 1931/QĐ-BYT from 1 July 2026
    assert TABLES["XML3"].field("MUC_HUONG").max_len == 4
    assert check_field(XML2.field("MUC_HUONG"), "47.5") is None
    assert check_field(XML2.field("MUC_HUONG"), "100.5") is not None


@pytest.mark.parametrize(
    ("table", "name", "value", "ok"),
    [
        ("XML1", "MA_BENH_CHINH", "J18.9", True),
        ("XML1", "MA_BENH_CHINH", "A09", True),
        ("XML1", "MA_BENH_CHINH", "J18.90000", False),  # longer than 7
        ("XML1", "MA_BENH_CHINH", "j18.9", False),
        ("XML1", "MA_BENH_CHINH", "", False),  # required
        ("XML1", "MA_BENH_KT", "I10;E11.9", True),
        ("XML1", "MA_BENH_KT", ";".join(["I10"] * 13), False),  # at most 12 codes
        ("XML1", "MA_THE_BHYT", "DN4790123456789", True),
        ("XML1", "MA_THE_BHYT", "DN4790123456789;HC4010000000001", True),
        ("XML1", "MA_THE_BHYT", "DN6790123456789", False),  # benefit level 1–5
        ("XML1", "MA_THE_BHYT", "DN479012345678", False),
        ("XML1", "MA_LOAI_KCB", "01", True),
        ("XML1", "MA_LOAI_KCB", "1", False),  # a string keeping its leading zero
        ("XML1", "MA_DOITUONG_KCB", "1.11", False),  # 3 characters in XML1
        ("XML0", "MA_DOITUONG_KCB", "1.11", True),  # 4 in XML0
        ("XML1", "MA_DOITUONG_KCB", "9", True),
        ("XML1", "NGAY_VAO", "202607150930", True),
        ("XML1", "NGAY_VAO", "202602301200", False),  # 30 February
        ("XML1", "NGAY_VAO", "2026071509", False),
        ("XML1", "NGAY_SINH", "199000000000", True),  # year only
        ("XML1", "NGAY_SINH", "199005000000", True),  # year and month
        ("XML1", "NGAY_SINH", "199013000000", False),
        ("XML1", "GT_THE_TU", "20260101", True),
        ("XML1", "GT_THE_TU", "2026-01-01", False),
        ("XML7", "NGAY_CT", "20260230", False),
        ("XML1", "T_TONGCHI_BV", "123456.78", True),
        ("XML1", "T_TONGCHI_BV", "1,5", False),
        ("XML1", "MA_CSKCB", "79024", True),
        ("XML1", "MA_CSKCB", "7902", False),  # 5 characters
        ("XML1", "MA_CSKCB", "79-02", False),
        ("XML1", "HO_TEN", "x" * 256, False),
    ],
)
def test_field_rules(table: str, name: str, value: str, ok: bool) -> None:
    problem = check_field(TABLES[table].field(name), value)
    assert (problem is None) is ok, problem


def _line(qty: str, price: str, bv: str, bhtt: str, bncct: str) -> dict[str, str]:
    return {
        "SO_LUONG": qty,
        "DON_GIA": price,
        "THANH_TIEN_BV": bv,
        "THANH_TIEN_BH": bv,
        "T_BHTT": bhtt,
        "T_BNCCT": bncct,
        "T_BNTT": "0",
        "T_NGUONKHAC": "0",
    }


def test_amounts_must_add_up() -> None:
    good = {
        "XML1": [
            {
                "T_THUOC": "2700",
                "T_VTYT": "0",
                "T_TONGCHI_BV": "2700",
                "T_TONGCHI_BH": "2700",
                "T_BNTT": "0",
                "T_BNCCT": "540",
                "T_BHTT": "2160",
                "T_NGUONKHAC": "0",
            }
        ],
        "XML2": [_line("15", "180", "2700", "2160", "540")],
    }
    assert check_amounts("LK", good) == []
    wrong_line = {**good, "XML2": [_line("15", "180", "2800", "2160", "540")]}
    found = {(p.table, p.stt, p.field) for p in check_amounts("LK", wrong_line)}
    assert ("XML2", 1, "THANH_TIEN_BV") in found  # 15 × 180 ≠ 2800
    assert ("XML2", 1, "T_BHTT") in found  # payers no longer add up to the amount
    assert ("XML1", None, "T_TONGCHI_BV") in found  # total ≠ the lines
    wrong_total = {"XML1": [{**good["XML1"][0], "T_THUOC": "2000"}], "XML2": good["XML2"]}
    assert [(p.table, p.field) for p in check_amounts("LK", wrong_total)] == [("XML1", "T_THUOC")]


def test_rows_must_carry_the_claim_key_and_numbered_rows() -> None:
    row = dict.fromkeys(TABLES["XML4"].names, "")
    row.update(
        MA_LK="OTHER",
        STT="2",
        MA_DICH_VU="23.0075.1494",
        MA_CHI_SO="2345-7",
        TEN_CHI_SO="Glucose",
        GIA_TRI="110",
        NGAY_KQ="202607150930",
    )
    problems = {(p.table, p.stt, p.field) for p in validate_claim("LK", {"XML4": [row]})}
    assert ("XML4", 1, "MA_LK") in problems and ("XML4", 1, "STT") in problems
    assert ("XML1", None, "MA_LK") in problems  # no summary table at all


def test_inner_xml_round_trips_utf8_and_keeps_every_field() -> None:
    row = dict.fromkeys(TABLES["XML5"].names, "")
    row.update(MA_LK="LK", STT="1", DIEN_BIEN_LS="Sốt 39 °C & ho <khan>", THOI_DIEM_DBLS="1")
    data = inner_xml("XML5", [row])
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert "Sốt 39 °C &amp; ho &lt;khan&gt;".encode() in data
    assert read_table("XML5", data) == [row]
    with pytest.raises(ValueError, match="root element"):
        read_table("XML4", data)


def test_number_and_birth_formats() -> None:
    assert number(Decimal("2700.00")) == "2700"
    assert number(Decimal("47.50")) == "47.5"
    assert number(Decimal("0.000")) == "0"
    assert birth12("1990-05-17") == "199005170000"
    assert birth12("1990-05") == "199005000000"
    assert birth12("1990") == "199000000000"
    assert birth12(None) == ""


def test_price_list_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "kind,key,code,name,unit,price,group,per_day,ingredient,route\n"
        "drug,AMLODIPIN-5,40.469,Amlodipin 5mg,Viên,400.5,4,1,amlodipin,1.01\n"
        "lab,2345-7,23.0075.1494,Định lượng Glucose,Lần,22000,1,,,\n",
        encoding="utf-8",
    )
    catalogue = load_catalogue(path)
    drug = catalogue.get("drug", "AMLODIPIN-5")
    assert drug is not None and drug.price == Decimal("400.5") and drug.ingredient == "amlodipin"
    lab = catalogue.get("lab", "2345-7")
    assert lab is not None and lab.group == 1 and lab.per_day == 1
    path.write_text(
        "kind,key,code,name,unit,price,group\nsnack,X,1,X,cái,abc,4\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"prices.csv:2: bad price-list row"):
        load_catalogue(path)


def test_demo_price_list_prices_everything_the_demo_generates() -> None:
    from sokhoe.demo.clinical import _LABS, ACUTE, DM, DRUGS, HTN

    catalogue = demo_catalogue()
    assert all(catalogue.get("drug", key) for key in DRUGS)
    assert all(catalogue.get("lab", code) for code in _LABS)
    for dx in [*ACUTE, HTN, DM]:
        if dx.imaging:
            assert catalogue.imaging(dx.imaging[0], dx.imaging[2]) is not None
    for cls in ("AMB", "EMER", "IMP"):
        assert catalogue.get("exam", cls) is not None
    assert catalogue.get("bed", "IMP") is not None


def test_rules_across_fields() -> None:
    summary = {
        "MA_BENH_CHINH": "J18.9",
        "MA_BENH_KT": "I10;X99.99",
        "GIOI_TINH": "1",
        "NGAY_VAO": "202607150900",
        "NGAY_RA": "202607180900",
    }
    services = [
        {"MA_BENH": "J18.9;I10", "NGAY_YL": "202607151000"},
        {"MA_BENH": "J18", "NGAY_YL": "202607200800"},  # after discharge
    ]
    found = {
        (p.table, p.stt, p.field, p.message)
        for p in check_rules("LK", {"XML1": [summary], "XML3": services})
    }
    assert found == {
        ("XML1", None, "MA_BENH_KT", "X99.99 is not an ICD-10 (sub)category"),
        ("XML3", 2, "NGAY_YL", "202607200800 is outside the visit"),
    }
    backwards = {**summary, "MA_BENH_KT": "A90", "NGAY_RA": "202607140900", "GIOI_TINH": "4"}
    assert {(p.field, p.message) for p in check_rules("LK", {"XML1": [backwards]})} == {
        ("NGAY_RA", "202607140900 is before NGAY_VAO"),
        ("GIOI_TINH", "must be 1, 2 or 3"),
    }
