"""VietQR payloads: the CRC, a published sample byte for byte, every field read back."""

from __future__ import annotations

import pytest
from lxml import etree  # type: ignore[import-untyped]

from sokhoe.clinic.vietqr import (
    ascii_text,
    crc16_ccitt_false,
    read_payload,
    vietqr_payload,
    vietqr_svg,
)
from sokhoe.errors import InvalidRequest

SUBIZ_SAMPLE = (
    "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA"
    "530370454061200005802VN62170813ung ho lu lut6304C15C"
)
"""The README example of the Go package subiz/vietqr: 120,000 đồng to VietinBank (BIN 970415)
account 0011001932418, note "ủng hộ lũ lụt" (copied from the published text, not generated)."""


def test_crc_matches_the_catalogued_check_values() -> None:
    # CRC-16/CCITT-FALSE check value from the CRC catalogue (reveng): "123456789" → 0x29B1
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF  # the initial value, nothing shifted in
    assert crc16_ccitt_false(b"A") == 0xB915


def test_the_published_sample_is_reproduced_byte_for_byte() -> None:
    built = vietqr_payload("970415", "0011001932418", 120000, "ủng hộ lũ lụt")
    assert built == SUBIZ_SAMPLE


def test_every_field_reads_back() -> None:
    payload = vietqr_payload("970436", "0881000458086", 81660, "VP 01001-3F2A9C1B0D")
    assert read_payload(payload) == {
        "format": "01",
        "initiation": "12",
        "guid": "A000000727",
        "bin": "970436",
        "account": "0881000458086",
        "service": "QRIBFTTA",
        "currency": "704",
        "amount": "81660",
        "country": "VN",
        "purpose": "VP 01001-3F2A9C1B0D",
        "crc": payload[-4:],
        "tags": "00,01,38,53,54,58,62,63",
    }
    # the merchant block exactly as the specification nests it
    assert payload.startswith("000201010212385" + "70010A000000727" + "0127" + "0006970436")
    assert read_payload(SUBIZ_SAMPLE)["purpose"] == "ung ho lu lut"


def test_a_changed_character_breaks_the_crc() -> None:
    payload = vietqr_payload("970436", "0881000458086", 81660, "VP 1")
    forged = payload.replace("5405816605802", "5405916605802")
    assert forged != payload
    with pytest.raises(ValueError, match="CRC"):
        read_payload(forged)


def test_diacritics_are_removed_and_the_purpose_must_fit() -> None:
    assert ascii_text("Viện phí Đợt 1 – BN Nguyễn") == "Vien phi Dot 1 – BN Nguyen"
    assert read_payload(vietqr_payload("970436", "1", 1, "Thanh toán viện phí"))["purpose"] == (
        "Thanh toan vien phi"
    )
    with pytest.raises(InvalidRequest, match="26 characters"):
        vietqr_payload("970436", "1", 1, "Thanh toán viện phí lần 12")
    with pytest.raises(InvalidRequest, match="plain letters"):
        vietqr_payload("970436", "1", 1, "Viện phí – đợt 1")  # the dash is not ASCII
    assert "62" not in read_payload(vietqr_payload("970436", "1", 1))["tags"].split(",")


@pytest.mark.parametrize(
    ("bank_bin", "account", "amount", "message"),
    [
        ("97043", "1", 1, "BIN"),
        ("97043A", "1", 1, "BIN"),
        ("970436", "12345678901234567890", 1, "account"),
        ("970436", "0881-000", 1, "account"),
        ("970436", "1", 0, "positive"),
        ("970436", "1", -5, "positive"),
        ("970436", "1", True, "positive"),
        ("970436", "1", 10**13, "13 digits"),
    ],
)
def test_bad_inputs_are_refused(bank_bin: str, account: str, amount: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        vietqr_payload(bank_bin, account, amount)


def test_limits_themselves_are_accepted() -> None:
    payload = vietqr_payload("970436", "A" * 19, 10**13 - 1, "x" * 25)
    fields = read_payload(payload)
    assert (fields["account"], fields["amount"], fields["purpose"]) == (
        "A" * 19,
        "9" * 13,
        "x" * 25,
    )


def test_svg_is_a_qr_of_the_payload() -> None:
    svg = vietqr_svg(vietqr_payload("970436", "0881000458086", 81660), title="Viện phí")
    root = etree.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.findtext("{http://www.w3.org/2000/svg}title") == "Viện phí"
    assert int(root.get("width")) == int(root.get("height")) > 100
