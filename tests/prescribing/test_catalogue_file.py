"""Reading catalogue files: every row checked, every problem reported with its row number."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook

from sokhoe.fhir.validation import find_issues
from sokhoe.prescribing import (
    CatalogueFileError,
    classes_of,
    read_catalogue,
    reference_entries,
    to_medication,
)
from sokhoe.prescribing.catalogue_fhir import strength_ratio

HEADER = (
    "ma,ten_thuoc,hoat_chat,ham_luong,don_vi_tinh,atc,don_gia,ke_don,gay_nghien,"
    "huong_than_tien_chat"
)


def write(tmp_path: Path, *lines: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_csv_reads_every_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER + ",so_dang_ky,ma_thuoc,dang_bao_che,duong_dung",
        "P1,Paracetamol 500mg,Paracetamol,500mg,Viên,n02be01,180,0,,,VD-1-23,40.48,Viên nén,Uống",
        "A1,Amoxicilin + acid clavulanic,Amoxicilin + Acid clavulanic,500mg;125mg,Viên,J01CR02,"
        "4500.5,có,không,,VN-2-24,,,",
        ",,,,,,,,,,,,,",
        "M1,Morphin 10mg/1ml,Morphin hydroclorid,10mg/1ml,Ống,N02AA01,,x,1,0,,,,",
    )
    entries = read_catalogue(path)
    assert [e.code for e in entries] == ["P1", "A1", "M1"]
    para, amox, morphine = entries
    assert para.atc == "N02BE01" and para.registration == "VD-1-23" and para.ma_thuoc == "40.48"
    assert not para.prescription_only and para.prescription_type == "C"
    assert [i.name for i in amox.ingredients] == ["Amoxicilin", "Acid clavulanic"]
    assert amox.strength == "500mg;125mg" and str(amox.price) == "4500.5"
    assert amox.prescription_only
    assert morphine.narcotic and morphine.prescription_only and morphine.prescription_type == "N"


def test_every_problem_reported_with_its_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        "P1,Paracetamol 500mg,Paracetamol,500mg,Viên,N02BE01,180,0,0,0",
        "P1,Paracetamol again,Paracetamol,500mg,Viên,N02BE01,180,0,0,0",
        ",No code,Paracetamol,500mg,Viên,,,0,0,0",
        "X2,Two strengths,Amoxicilin,500mg;125mg,Viên,,,1,0,0",
        "X3,Bad ATC,Amoxicilin,500mg,Viên,J01-CA04,,1,0,0",
        "X4,Thousands,Amoxicilin,500mg,Viên,,1.200,1,0,0",
        "X5,Both,Diazepam,5mg,Viên,,,1,1,1",
        "X6,Not prescription,Diazepam,5mg,Viên,,,0,0,1",
        "X7,Odd flag,Diazepam,5mg,,,,maybe,0,0",
    )
    with pytest.raises(CatalogueFileError) as caught:
        read_catalogue(path)
    found = {(e.row, e.column) for e in caught.value.errors}
    assert found == {
        (3, "ma"),
        (4, "ma"),
        (5, "ham_luong"),
        (6, "atc"),
        (7, "don_gia"),
        (8, "huong_than_tien_chat"),
        (9, "ke_don"),
        (10, "don_vi_tinh"),
        (10, "ke_don"),
    }
    message = str(caught.value)
    assert "row 3, column ma: 'P1' is also on row 2" in message
    assert "row 7, column don_gia" in message and "thousands" in message


def test_missing_columns_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogueFileError, match=r"row 1: missing column.*hoat_chat"):
        read_catalogue(write(tmp_path, "ma,ten_thuoc,don_vi_tinh", "P1,Para,Viên"))
    with pytest.raises(CatalogueFileError, match="no medicines"):
        read_catalogue(write(tmp_path, HEADER))
    with pytest.raises(CatalogueFileError, match=r"\.csv or \.xlsx"):
        read_catalogue(write(tmp_path, HEADER, name="list.json"))


def test_excel_rows_and_numbers(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["MA", "Ten thuoc", "HOAT_CHAT", "Ham luong", "Don vi tinh", "Don gia", "Ke don"])
    sheet.append(["C1", "Cefixim 200mg", "Cefixim", "200mg", "Viên", 3500.0, 1])
    sheet.append(["C2", "Cefixim 100mg", None, "100mg", "Gói", 2100, 1])
    path = tmp_path / "list.xlsx"
    book.save(path)
    with pytest.raises(CatalogueFileError) as caught:
        read_catalogue(path)
    assert [(e.row, e.column) for e in caught.value.errors] == [(3, "hoat_chat")]
    sheet["C3"] = "Cefixim"
    book.save(path)
    first, second = read_catalogue(path)
    assert str(first.price) == "3500" and second.unit == "Gói" and first.prescription_only


def test_strengths_as_ratios() -> None:
    assert strength_ratio("500mg", "Viên") == {
        "numerator": {
            "value": 500,
            "unit": "mg",
            "system": "http://unitsofmeasure.org",
            "code": "mg",
        },
        "denominator": {"value": 1, "unit": "Viên"},
    }
    ratio = strength_ratio("0,5mg/2ml", "Ống")
    assert ratio is not None
    assert ratio["numerator"]["value"] == 0.5 and ratio["denominator"]["code"] == "mL"
    assert ratio["denominator"]["value"] == 2
    assert strength_ratio("100UI/ml", "Lọ") is not None
    assert strength_ratio("2 tỷ bào tử", "Ống") is None


def test_reference_list_is_valid_fhir_and_flags_follow_the_rows() -> None:
    entries = reference_entries()
    assert len(entries) >= 300
    names = {e.name for e in entries}
    assert {"Paracetamol 500mg", "Amlodipin 5mg", "Metformin 500mg", "Omeprazol 20mg"} <= names
    assert sum(e.narcotic for e in entries) >= 5 and sum(e.psychotropic for e in entries) >= 5
    assert sum(e.traditional for e in entries) >= 10
    for entry in entries:
        medication = to_medication(entry, "sokhoe", 1)
        assert find_issues(medication) == [], entry.code
        assert ("narcotic" in classes_of(medication)) == entry.narcotic
        assert ("psychotropic-precursor" in classes_of(medication)) == entry.psychotropic
        if entry.ma_thuoc:  # every Ministry code in the shipped list is marked unconfirmed
            assert "ma_thuoc" in entry.unconfirmed
        assert entry.registration == ""
