"""Vietnamese person and facility identifiers: FHIR system URIs, construction, validation.

CCCD (personal ID, since Decree 102/2025 also the health ID): 12 digits = 3-digit code of the
province where the birth was registered + 1 sex/century digit + 2-digit birth year + 6 serial
digits, no check digit. The province part uses the *old* 63-province codes ("0" + the 2-digit
statistics code before the 2025 merger), because numbers already issued never change.
The century digits beyond 1900–2099 are unconfirmed in the official wording.
"""

from __future__ import annotations

import re

from sokhoe.messages import InvalidValue, Message

CCCD = "https://fhir.sokhoe.vn/sid/cccd"
CMND = "https://fhir.sokhoe.vn/sid/cmnd"
BHYT = "https://fhir.sokhoe.vn/sid/bhyt"
FACILITY = "https://fhir.sokhoe.vn/sid/ma-cskcb"
PRACTITIONER = "https://fhir.sokhoe.vn/sid/cchn"
PASSPORT = "https://fhir.sokhoe.vn/sid/passport"
BIRTH_CERTIFICATE = "https://fhir.sokhoe.vn/sid/giay-khai-sinh"
"""The number of a birth certificate (*số giấy khai sinh*), as the civil registry printed it:
children registered since the electronic civil registry also get the 12-digit personal ID, older
certificates carry a register number such as ``123/2015`` (format unconfirmed: kept as printed,
spaces removed)."""
BHXH = "https://fhir.sokhoe.vn/sid/bhxh"
"""The 10-digit social-insurance number (*mã số BHXH*): the stable tail of every BHYT card
number the person is ever issued, so it finds a person whose card (group, level) changed."""


MRN_PREFIX = "https://fhir.sokhoe.vn/sid/mrn/"


def mrn_system(facility_code: str) -> str:
    """The identifier system of one facility's medical record numbers."""
    return f"{MRN_PREFIX}{facility_code}"


OLD_PROVINCE_CODES: frozenset[str] = frozenset(
    "01 02 04 06 08 10 11 12 14 15 17 19 20 22 24 25 26 27 30 31 33 34 35 36 37 38 40 42 44 45 "
    "46 48 49 51 52 54 56 58 60 62 64 66 67 68 70 72 74 75 77 79 80 82 83 84 86 87 89 91 92 "
    "93 94 95 96".split()
)
"""2-digit codes of the 63 provinces before 1 July 2025, as used inside CCCD numbers."""

_CENTURY_BASE = {1900: 0, 2000: 2, 2100: 4}
_BHYT = re.compile(r"[A-Z]{2}[1-5]\d{2}\d{10}")
_DIGITS12 = re.compile(r"\d{12}")


def cccd_century_sex_digit(sex: str, birth_year: int) -> int:
    """The 4th CCCD digit: 0/1 male/female born 1900–1999, 2/3 for 2000–2099, 4/5 2100–2199."""
    century = birth_year // 100 * 100
    if century not in _CENTURY_BASE:
        raise ValueError(f"birth year {birth_year} outside 1900–2199")
    if sex not in ("male", "female"):
        raise ValueError(f"sex must be 'male' or 'female', not {sex!r}")
    return _CENTURY_BASE[century] + (1 if sex == "female" else 0)


def make_cccd(province_code3: str, sex: str, birth_year: int, serial6: int) -> str:
    """Build a 12-digit CCCD number from its parts."""
    if len(province_code3) != 3 or province_code3[1:] not in OLD_PROVINCE_CODES:
        raise ValueError(f"not a CCCD province code: {province_code3!r}")
    if not 0 <= serial6 <= 999_999:
        raise ValueError(f"serial must have 6 digits: {serial6}")
    digit = cccd_century_sex_digit(sex, birth_year)
    return f"{province_code3}{digit}{birth_year % 100:02d}{serial6:06d}"


def validate_cccd(value: str) -> str:
    """Normalise (drop spaces) and check a CCCD number; ValueError explains what is wrong."""
    if not isinstance(value, str):
        raise ValueError("CCCD must be a string")
    norm = re.sub(r"\s+", "", value)
    if not _DIGITS12.fullmatch(norm):
        raise InvalidValue(
            Message("CCCD must be exactly 12 digits, got %(value)s", value=repr(value))
        )
    if norm[0] != "0" or norm[1:3] not in OLD_PROVINCE_CODES:
        raise InvalidValue(
            Message(
                "CCCD %(number)s starts with an unknown province code %(code)s",
                number=norm,
                code=repr(norm[:3]),
            )
        )
    if norm[3] not in "012345":
        raise InvalidValue(
            Message(
                "CCCD %(number)s has an invalid sex/century digit %(digit)s",
                number=norm,
                digit=repr(norm[3]),
            )
        )
    return norm


def cccd_sex_and_year(value: str) -> tuple[str, int]:
    """Decode (sex, birth year) from a valid CCCD number."""
    norm = validate_cccd(value)
    digit = int(norm[3])
    return ("female" if digit % 2 else "male"), 1900 + 100 * (digit // 2) + int(norm[4:6])


def validate_bhyt(value: str) -> str:
    """Normalise (strip, upper-case) and check a 15-character BHYT card number."""
    if not isinstance(value, str):
        raise ValueError("BHYT card number must be a string")
    norm = value.strip().upper()
    if not _BHYT.fullmatch(norm):
        raise InvalidValue(
            Message(
                "BHYT card number must be 2 letters, a benefit digit 1–5, a 2-digit province "
                "code and 10 digits (15 characters), got %(value)s",
                value=repr(value),
            )
        )
    return norm


def bhxh_of_bhyt(card: str) -> str:
    """The 10-digit social-insurance number inside a (valid) BHYT card number."""
    return validate_bhyt(card)[5:]


def validate_cmnd(value: str) -> str:
    """Normalise and check an old 9-digit identity-card number (*chứng minh nhân dân*)."""
    norm = re.sub(r"\s+", "", value) if isinstance(value, str) else ""
    if not re.fullmatch(r"\d{9}", norm):
        raise InvalidValue(
            Message("CMND must be exactly 9 digits, got %(value)s", value=repr(value))
        )
    return norm


def validate_bhxh(value: str) -> str:
    """Normalise and check a 10-digit social-insurance number (*mã số BHXH*)."""
    norm = re.sub(r"\s+", "", value) if isinstance(value, str) else ""
    if not re.fullmatch(r"\d{10}", norm):
        raise InvalidValue(
            Message(
                "Social-insurance number must be exactly 10 digits, got %(value)s",
                value=repr(value),
            )
        )
    return norm


def validate_facility_code(value: str) -> str:
    """Normalise and check a 5-character insurance facility code (*mã CSKCB*, QĐ 384/2019)."""
    norm = value.strip().upper() if isinstance(value, str) else ""
    if not re.fullmatch(r"[0-9A-Z]{5}", norm):
        raise InvalidValue(
            Message("Facility code must be 5 letters or digits, got %(value)s", value=repr(value))
        )
    return norm
