"""Card addresses into units and codes; what the registry cannot resolve is flagged, not guessed."""

from __future__ import annotations

from typing import Any

import pytest

from sokhoe.registry.addresses import address_codes, parse_address, unresolved


def _parts(address: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(address.get(k) for k in ("line", "city", "district", "state"))


def test_new_form_resolves_ward_and_province() -> None:
    a = parse_address("Số 12,  Thôn Yên Nội, xã phúc thọ, TP. Hà Nội")
    assert _parts(a) == (["Số 12", "Thôn Yên Nội"], "Xã Phúc Thọ", None, "Thành phố Hà Nội")
    assert a["text"] == "Số 12, Thôn Yên Nội, xã phúc thọ, TP. Hà Nội"
    assert address_codes(a) == ("01", "09715") and unresolved(a) == []
    assert (a["use"], a["country"]) == ("home", "VN")


def test_a_ward_the_registry_does_not_know_is_kept_and_flagged() -> None:
    # Vạn Phúc is not a commune of Hà Nội after the 2025 reorganisation
    a = parse_address("Số 12, Thôn Yên Nội, Xã Vạn Phúc, Thành phố Hà Nội")
    assert a["city"] == "Xã Vạn Phúc"
    assert address_codes(a) == ("01", "")
    assert unresolved(a) == ["ward: 'Xã Vạn Phúc' is not a ward of Thành phố Hà Nội"]


def test_old_form_keeps_the_district_and_does_not_map_the_commune() -> None:
    # Lũng Cú commune of Đồng Văn district, Hà Giang: today's Tuyên Quang has a "Xã Lũng Cú"
    # too, but old communes were merged, so the same name is not proof of the same place
    a = parse_address("Thôn 2, Xã Lũng Cú, Huyện Đồng Văn, Tỉnh Hà Giang")
    assert _parts(a) == (["Thôn 2", "Xã Lũng Cú"], None, "Huyện Đồng Văn", "Tuyên Quang")
    assert a["text"] == "Thôn 2, Xã Lũng Cú, Huyện Đồng Văn, Tỉnh Hà Giang"  # as on the card
    assert address_codes(a) == ("08", "")
    assert len(unresolved(a)) == 1 and "before July 2025" in unresolved(a)[0]
    city = parse_address("Tổ 5, Phường 3, Quận 5, TP. Hồ Chí Minh")
    assert city["district"] == "Quận 5" and address_codes(city) == ("79", "")
    assert city["state"] == "Thành phố Hồ Chí Minh"  # the registry's name, not "TP."


@pytest.mark.parametrize(
    ("text", "codes", "flag"),
    [
        ("12 Lê Lợi, TP Hồ Chí Minh", ("79", ""), "ward: no ward"),
        ("Xa lộ Hà Nội, Thành phố Hồ Chí Minh", ("79", ""), "ward: no ward"),  # a road
        ("12 Lê Lợi", ("", ""), "province"),
        ("Thôn 3, Xã Phúc Thọ, Tỉnh Hà Tây", ("", ""), "province"),  # abolished in 2008
    ],
)
def test_what_is_not_a_unit_is_never_guessed(text: str, codes: tuple[str, str], flag: str) -> None:
    a = parse_address(text)
    assert address_codes(a) == codes
    assert unresolved(a) and unresolved(a)[0].startswith(flag)
    assert a["text"] == text


def test_addresses_written_before_parsing_carry_no_codes() -> None:
    assert address_codes({"city": "Phường Sài Gòn", "state": "Thành phố Hồ Chí Minh"}) is None
