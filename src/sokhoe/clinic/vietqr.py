"""VietQR: the national interbank transfer QR that every Vietnamese banking app reads.

The patient pays the bill by scanning one code with their bank's app: the payload names the
facility's bank (BIN) and account, the amount and the bill number, so nothing is typed and the
transfer can be matched to the bill. The format is NAPAS's profile of the EMVCo
merchant-presented QR (NAPAS QR Switching technical specification v1.5.2, part IV): a string
of ID–length–value objects,

- ``00`` payload format "01"; ``01`` initiation "12" (one-off: this amount, this bill);
- ``38`` merchant account information: ``00`` the NAPAS GUID ``A000000727``, ``01`` the
  beneficiary organisation (``00`` the bank's 6-digit BIN, ``01`` the account number, at most
  19 characters), ``02`` the service code ``QRIBFTTA`` (transfer to an account);
- ``53`` currency "704" (đồng); ``54`` the amount, whole đồng; ``58`` country "VN";
- ``62`` additional data with ``08`` the purpose of the transfer (our bill number, ASCII, at
  most 25 characters: bank apps show it and put it in the transfer's description);
- ``63`` CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR)
  over the whole payload up to and including "6304", as 4 upper-case hex digits.

Unconfirmed: the specification PDF was read only through public summaries and the sample of
the Go package ``subiz/vietqr`` (whose payload the tests check byte for byte).
See: https://vietqr.net
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass

import segno

from sokhoe.errors import InvalidRequest
from sokhoe.messages import Message

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
CURRENCY_VND = "704"
MAX_AMOUNT_DIGITS = 13
MAX_PURPOSE = 25
_BIN = re.compile(r"[0-9]{6}")
_ACCOUNT = re.compile(r"[0-9A-Za-z]{1,19}")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data`` ("123456789" → 0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def ascii_text(text: str) -> str:
    """Vietnamese without diacritics: "Viện phí Đợt 1" → "Vien phi Dot 1"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _tlv(tag: str, value: str) -> str:
    if not 0 < len(value) <= 99:
        raise ValueError(f"EMVCo object {tag} must hold 1 to 99 characters, got {len(value)}")
    return f"{tag}{len(value):02d}{value}"


@dataclass(frozen=True, slots=True)
class BankAccount:
    """Where the money goes: the facility's bank (its NAPAS BIN) and account number."""

    bin: str
    account: str


def vietqr_payload(bank_bin: str, account: str, amount: int, purpose: str = "") -> str:
    """The VietQR text for a one-off transfer of ``amount`` đồng (see the module docstring).

    ``purpose`` (the bill number) loses its diacritics and must then be printable ASCII of at
    most 25 characters. Raises :class:`~sokhoe.errors.InvalidRequest` naming what is wrong.
    """
    if not _BIN.fullmatch(bank_bin):
        raise InvalidRequest(
            Message("The bank BIN must be 6 digits, got %(bin)s", bin=repr(bank_bin)), "bin"
        )
    if not _ACCOUNT.fullmatch(account):
        raise InvalidRequest(
            Message(
                "The account number must be 1 to 19 letters or digits, got %(account)s",
                account=repr(account),
            ),
            "account",
        )
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidRequest(
            Message(
                "The amount must be a positive whole number of đồng, got %(amount)s",
                amount=repr(amount),
            )
        )
    if len(str(amount)) > MAX_AMOUNT_DIGITS:
        raise InvalidRequest(
            Message(
                "The amount has more than %(most)s digits: %(amount)s",
                most=str(MAX_AMOUNT_DIGITS),
                amount=str(amount),
            )
        )
    text = ascii_text(purpose).strip()
    if not _PRINTABLE.fullmatch(text):
        raise InvalidRequest(
            Message("The bill text must be plain letters and digits: %(text)s", text=repr(purpose))
        )
    if len(text) > MAX_PURPOSE:
        raise InvalidRequest(
            Message(
                "The bill text is %(length)s characters without diacritics, at most %(most)s "
                "fit: %(text)s",
                length=str(len(text)),
                most=str(MAX_PURPOSE),
                text=repr(text),
            )
        )
    beneficiary = _tlv("00", bank_bin) + _tlv("01", account)
    merchant = _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TO_ACCOUNT)
    payload = (
        _tlv("00", "01")
        + _tlv("01", "12")
        + _tlv("38", merchant)
        + _tlv("53", CURRENCY_VND)
        + _tlv("54", str(amount))
        + _tlv("58", "VN")
    )
    if text:
        payload += _tlv("62", _tlv("08", text))
    payload += "6304"
    return payload + f"{crc16_ccitt_false(payload.encode('ascii')):04X}"


def vietqr_svg(payload: str, *, scale: int = 4, title: str | None = None) -> str:
    """The QR as an SVG document (medium error correction, a 4-module quiet zone)."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(
        buffer, kind="svg", scale=scale, border=4, title=title, xmldecl=False
    )
    return buffer.getvalue().decode("utf-8")


def read_tlv(text: str) -> dict[str, str]:
    """One level of ID–length–value objects → {id: value}; ValueError when malformed."""
    found: dict[str, str] = {}
    at = 0
    while at < len(text):
        tag, size = text[at : at + 2], text[at + 2 : at + 4]
        if len(tag) < 2 or not size.isdigit():
            raise ValueError(f"malformed object at position {at}: {text[at : at + 4]!r}")
        value = text[at + 4 : at + 4 + int(size)]
        if len(value) != int(size):
            raise ValueError(f"object {tag} is shorter than its length {size}")
        found[tag] = value
        at += 4 + int(size)
    return found


def read_payload(payload: str) -> dict[str, str]:
    """A VietQR payload back into named fields, after checking its CRC.

    For reading a scanned code (and for the tests): the builder never uses it.
    """
    if len(payload) < 8 or payload[-8:-4] != "6304":
        raise ValueError("the payload does not end with a CRC object (6304…)")
    expected = f"{crc16_ccitt_false(payload[:-4].encode('ascii')):04X}"
    if payload[-4:] != expected:
        raise ValueError(f"CRC {payload[-4:]} does not match the content ({expected})")
    root = read_tlv(payload)
    merchant = read_tlv(root.get("38", ""))
    beneficiary = read_tlv(merchant.get("01", ""))
    extra = read_tlv(root.get("62", ""))
    return {
        "format": root.get("00", ""),
        "initiation": root.get("01", ""),
        "guid": merchant.get("00", ""),
        "bin": beneficiary.get("00", ""),
        "account": beneficiary.get("01", ""),
        "service": merchant.get("02", ""),
        "currency": root.get("53", ""),
        "amount": root.get("54", ""),
        "country": root.get("58", ""),
        "purpose": extra.get("08", ""),
        "crc": root.get("63", ""),
        "tags": ",".join(root),
    }
