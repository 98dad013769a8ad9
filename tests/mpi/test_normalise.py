"""Normalising names, phones and birth dates for matching."""

from __future__ import annotations

import pytest

from sokhoe.mpi.identifiers import BHYT, CCCD, CMND
from sokhoe.mpi.normalise import (
    BirthDate,
    NameParts,
    accented,
    bhyt_social_numbers,
    day_month_swapped,
    fold,
    normalise_phone,
    parse_birth_date,
    patient_name,
    split_human_name,
    swapped_date,
    valid_cccds,
)


def test_folded_agree_accented_differ() -> None:
    assert fold("Nguyễn") == fold("Nguyen") == fold("NGUYÊN") == "nguyen"
    assert accented("Nguyễn") != accented("Nguyên")
    assert accented("NGUYỄN") == accented("Nguyễn") == "nguyễn"
    assert fold("Đặng") == "dang"


def test_fhir_name_family_then_given_list() -> None:
    name = {"family": "Nguyễn", "given": ["Thị", "Lan"]}
    assert split_human_name(name) == NameParts("nguyễn", "thị", "lan")
    several = {"family": "Trần", "given": ["Thị Ngọc", "Anh"]}
    assert split_human_name(several) == NameParts("trần", "thị ngọc", "anh")
    assert split_human_name({"family": "Lê", "given": ["Văn Tám"]}) == NameParts("lê", "văn", "tám")


@pytest.mark.parametrize(
    "name",
    [
        {"text": "Nguyễn Văn  An"},
        {"family": "Nguyễn Văn An"},
        {"given": ["Nguyễn Văn An"]},
        "NGUYỄN VĂN AN",
    ],
)
def test_whole_name_in_one_string(name: dict[str, object] | str) -> None:
    assert split_human_name(name) == NameParts("nguyễn", "văn", "an")


def test_patient_prefers_official_name() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"use": "nickname", "text": "Bé Na"}, {"use": "official", "text": "Lê Thị Na"}],
    }
    assert patient_name(patient).given == "na"
    assert patient_name(patient).family == "lê"
    assert NameParts("a", "b", "c").swapped() == NameParts("c", "b", "a")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+84 912 345 678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0084-912-345-678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("912345678", "0912345678"),
        ("12345", None),
        ("", None),
        (None, None),
    ],
)
def test_phone(raw: str | None, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


def test_birth_dates() -> None:
    assert parse_birth_date("1990-03-15") == BirthDate(1990, 3, 15)
    assert parse_birth_date("1990") == BirthDate(1990)
    assert parse_birth_date("1990-05") == BirthDate(1990, 5)
    placeholder = parse_birth_date("1990-01-01")
    assert placeholder == BirthDate(1990, placeholder=True)
    assert placeholder is not None and not placeholder.full
    assert parse_birth_date("15/03/1990") is None
    assert parse_birth_date(None) is None
    a, b = BirthDate(1990, 3, 5), BirthDate(1990, 5, 3)
    assert day_month_swapped(a, b)
    assert not day_month_swapped(a, a)
    assert not day_month_swapped(a, BirthDate(1991, 5, 3))
    assert swapped_date(a) == "1990-05-03"
    assert swapped_date(BirthDate(1990, 3, 25)) is None


def test_identifiers_for_deterministic_rules() -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": CCCD, "value": "079 090 001234"},
            {"system": CCCD, "value": "not-an-id"},
            {"system": CMND, "value": "023456789", "use": "old"},
            {"system": BHYT, "value": "dn4790123456789"},
        ],
    }
    assert valid_cccds(patient) == {"079090001234"}
    assert bhyt_social_numbers(patient) == {"0123456789"}
