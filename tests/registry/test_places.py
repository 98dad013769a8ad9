"""Administrative units: the 34 new provinces, the 63 old ones, and tolerant lookups."""

from __future__ import annotations

from datetime import date

import pytest

from sokhoe.mpi.identifiers import OLD_PROVINCE_CODES
from sokhoe.registry.places import (
    find_ward,
    old_province,
    old_provinces,
    province_by_code,
    provinces,
    resolve_province,
)


def test_new_units() -> None:
    ps = provinces()
    assert len(ps) == 34
    assert sum(len(p.wards) for p in ps) == 3321
    assert all(p.valid_from == date(2025, 7, 1) for p in ps)
    assert province_by_code("79").short_name == "Hồ Chí Minh"


def test_old_table_covers_the_63() -> None:
    olds = old_provinces()
    assert {o.code for o in olds} == OLD_PROVINCE_CODES
    assert len({o.name for o in olds}) == 63
    assert {o.new_code for o in olds} == {p.code for p in provinces()}
    assert all(o.valid_to == date(2025, 6, 30) for o in olds)


def test_kept_codes_map_to_themselves() -> None:
    """Each new province kept a member's code, so "old 44" and "new 44" never disagree."""
    new_codes = {p.code for p in provinces()}
    for o in old_provinces():
        if o.code in new_codes:
            assert o.new_code == o.code, o


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("Hà Giang", "08"),
        ("ha giang", "08"),
        ("HA GIANG", "08"),
        ("Tỉnh Bình Dương", "79"),
        ("binh duong", "79"),
        ("Bà Rịa - Vũng Tàu", "79"),
        ("TP. Hồ Chí Minh", "79"),
        ("Thành phố Hồ Chí Minh", "79"),
        ("tp hcm", "79"),
        ("Thừa Thiên Huế", "46"),
        ("Huế", "46"),
        ("Quảng Bình", "44"),
        ("Quảng Trị", "44"),
        ("Yên Bái", "15"),
        ("Lào Cai", "15"),
        ("Bắc Giang", "24"),
        ("Kon Tum", "51"),
        ("Đắk Nông", "68"),
        ("dak nong", "68"),
        ("Bạc Liêu", "96"),
        ("Sóc Trăng", "92"),
        ("Thành phố Hà Nội", "01"),
        ("02", "08"),
        ("074", "79"),
        ("79", "79"),
        ("1", "01"),
    ],
)
def test_resolve_province(query: str, code: str) -> None:
    province = resolve_province(query)
    assert province is not None
    assert province.code == code


@pytest.mark.parametrize("query", ["", "Hà Tây", "03", "1234", "Atlantis"])
def test_unknown_province(query: str) -> None:
    assert resolve_province(query) is None


def test_old_province() -> None:
    ha_giang = old_province("02")
    assert ha_giang is not None
    assert (ha_giang.name, ha_giang.new_code) == ("Hà Giang", "08")
    assert old_province("2") == ha_giang
    assert old_province("03") is None


def test_find_ward() -> None:
    hoan_kiem = find_ward("Hà Nội", "Phường Hoàn Kiếm")
    assert hoan_kiem is not None
    assert hoan_kiem.code == "00070"
    for spelling in ["phuong hoan kiem", "P. Hoàn Kiếm", "Hoàn Kiếm", "HOAN KIEM", "70"]:
        assert find_ward(province_by_code("01"), spelling) == hoan_kiem, spelling
    assert find_ward("01", "Nowhere") is None
    assert find_ward("Atlantis", "Hoàn Kiếm") is None


def test_every_ward_finds_itself() -> None:
    for p in provinces():
        for w in p.wards:
            assert find_ward(p, w.name) == w


def test_accents_kept_when_they_distinguish() -> None:
    """Thái Nguyên has "Xã Văn Lang" and "Xã Văn Lăng": accents decide, folding is ambiguous."""
    lang, lang_breve = find_ward("19", "Văn Lang"), find_ward("19", "Văn Lăng")
    assert lang is not None and lang_breve is not None
    assert (lang.name, lang_breve.name) == ("Xã Văn Lang", "Xã Văn Lăng")
    assert find_ward("19", "xa van lang") is None
