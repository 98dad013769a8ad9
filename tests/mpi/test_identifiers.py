"""Identifier construction and validation."""

from __future__ import annotations

import pytest

from sokhoe.mpi.identifiers import (
    CCCD,
    cccd_century_sex_digit,
    cccd_sex_and_year,
    make_cccd,
    mrn_system,
    validate_bhyt,
    validate_cccd,
)


@pytest.mark.parametrize(
    ("sex", "year", "digit"),
    [
        ("male", 1985, 0),
        ("female", 1999, 1),
        ("male", 2000, 2),
        ("female", 2024, 3),
        ("male", 2100, 4),
        ("female", 2150, 5),
    ],
)
def test_century_sex_digit(sex: str, year: int, digit: int) -> None:
    assert cccd_century_sex_digit(sex, year) == digit


def test_century_sex_digit_rejects() -> None:
    with pytest.raises(ValueError, match="outside"):
        cccd_century_sex_digit("male", 1899)
    with pytest.raises(ValueError, match="sex"):
        cccd_century_sex_digit("unknown", 1990)


def test_make_and_decode_cccd() -> None:
    value = make_cccd("079", "female", 2003, 42)
    assert value == "079303000042"
    assert validate_cccd("079 303 000 042") == value
    assert cccd_sex_and_year(value) == ("female", 2003)
    with pytest.raises(ValueError):
        make_cccd("003", "male", 1990, 1)  # 03 is not an old province code
    with pytest.raises(ValueError):
        make_cccd("001", "male", 1990, 1_000_000)


@pytest.mark.parametrize(
    "bad", ["", "12345678901", "0013900000012", "00190000001A", "003190000001", "001690000001"]
)
def test_validate_cccd_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="CCCD"):
        validate_cccd(bad)


def test_validate_bhyt() -> None:
    assert validate_bhyt(" dn4790123456789 ") == "DN4790123456789"
    for bad in ["DN679012345678", "DN0790123456789", "D14790123456789", "DN47901234567890"]:
        with pytest.raises(ValueError, match="BHYT"):
            validate_bhyt(bad)


def test_systems() -> None:
    assert CCCD == "https://fhir.sokhoe.vn/sid/cccd"
    assert mrn_system("01001") == "https://fhir.sokhoe.vn/sid/mrn/01001"
