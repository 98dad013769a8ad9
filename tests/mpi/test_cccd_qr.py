"""Parsing the CCCD QR: six or seven fields, stray whitespace, and clear refusals."""

from __future__ import annotations

from datetime import date

import pytest

from sokhoe.errors import InvalidRequest
from sokhoe.mpi.cccd_qr import parse_cccd_qr

SEVEN = (
    "079090001234|023456789|NGUYỄN VĂN AN|15031990|Nam|"
    "12 Lê Lợi, Phường Bến Thành, TP Hồ Chí Minh|01022021"
)
SIX = "001301004567|Trần Thị Bích Ngọc|05112001|Nữ|Xã Đông Anh, Hà Nội|20082022"


def test_seven_fields() -> None:
    card = parse_cccd_qr(SEVEN)
    assert card.number == "079090001234"
    assert card.old_number == "023456789"
    assert card.full_name == "Nguyễn Văn An"
    assert card.birth_date == date(1990, 3, 15)
    assert card.sex == "male"
    assert card.address.startswith("12 Lê Lợi")
    assert card.issued == date(2021, 2, 1)


def test_six_fields_and_whitespace() -> None:
    card = parse_cccd_qr("  " + SIX.replace("|", " | ") + "\n")
    assert card.number == "001301004567"
    assert card.old_number is None
    assert card.full_name == "Trần Thị Bích Ngọc"
    assert card.sex == "female"
    assert card.birth_date == date(2001, 11, 5)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("079090001234|NGUYEN VAN AN|15031990|Nam", "6 or 7 fields"),
        (SEVEN.replace("079090001234", "07909000123"), "12 digits"),
        (SEVEN.replace("079090001234", "999090001234"), "province"),
        (SEVEN.replace("15031990", "31021990"), "not a real date"),
        (SEVEN.replace("15031990", "1990-03-15"), "ddMMyyyy"),
        (SEVEN.replace("|Nam|", "|M|"), "Nam"),
        (SEVEN.replace("|Nam|", "|Nữ|"), "misread"),
        (SEVEN.replace("15031990", "15031991"), "misread"),
        (SEVEN.replace("023456789", "0234"), "9 digits"),
        (SEVEN.replace("NGUYỄN VĂN AN", " "), "name"),
    ],
)
def test_bad_qr_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_cccd_qr(text)
    assert says in str(caught.value.issues[0].diagnostics)
