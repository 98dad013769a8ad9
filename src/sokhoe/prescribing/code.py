"""The prescription code (*mã đơn thuốc*) of Circular 26/2025/TT-BYT.

Fourteen characters: the prescribing facility's 5-character insurance code (``MA_CSKCB``), 7
random characters from ``0-9a-z`` (random, not sequential: a code must not reveal how many
prescriptions a facility writes, nor let anyone guess the next one), a dash, and the type:
``C`` ordinary, ``N`` narcotic, ``H`` psychotropic or precursor (``T`` decoctions, Circular
55/2025, is not issued here). The older Decision 808/QĐ-BYT API text writes the type in lower
case (``c/n/h``): codes are matched case-insensitively and kept in one canonical form — the
type upper case, the random part lower case.

The code travels as ``MedicationRequest.groupIdentifier`` (every line of one prescription
shares it) in the system :data:`CODE_SYSTEM`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Final, Literal

from sokhoe.errors import InvalidRequest

Kind = Literal["C", "N", "H"]
KINDS: Final[tuple[Kind, ...]] = ("C", "N", "H")
KIND_NAMES: Final[dict[Kind, str]] = {
    "C": "Đơn thuốc thông thường",
    "N": "Đơn thuốc gây nghiện",
    "H": "Đơn thuốc hướng thần, tiền chất",
}
CODE_SYSTEM: Final = "https://fhir.sokhoe.vn/sid/ma-don-thuoc"
ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_CODE: Final = re.compile(r"(\d{5})([0-9A-Za-z]{7})-([CNHcnh])")
_FACILITY: Final = re.compile(r"\d{5}")
"""Insurance facility codes (``MA_CSKCB``, QĐ 384/QĐ-BYT 2019) are five digits: the province
and a number within it."""


def new_code(facility_code: str, kind: Kind, choice: Callable[[str], str] = secrets.choice) -> str:
    """A fresh code for a prescription of ``kind`` at ``facility_code`` (uniqueness is the
    caller's to check, with a retry: 36⁷ ≈ 7.8 × 10¹⁰ codes per facility and type)."""
    if not _FACILITY.fullmatch(facility_code):
        raise InvalidRequest(
            f"A prescription code needs the 5-character facility code, got '{facility_code}'"
        )
    if kind not in KINDS:
        raise InvalidRequest(f"Unknown prescription type '{kind}'")
    tail = "".join(choice(ALPHABET) for _ in range(7))
    return f"{facility_code}{tail}-{kind}"


def normalise(text: str) -> str:
    """The canonical form of a typed or scanned code; :class:`InvalidRequest` if it is not one.

    ``01001ABC1234-c`` → ``01001abc1234-C``; surrounding spaces are ignored.
    """
    found = _CODE.fullmatch(text.strip())
    if found is None:
        raise InvalidRequest(
            "A prescription code has 14 characters: 5 of the facility, 7 letters or digits, "
            f"a dash and C, N or H (got '{text.strip()[:40]}')",
            "code",
        )
    facility, tail, kind = found.groups()
    return f"{facility}{tail.lower()}-{kind.upper()}"


def kind_of(code: str) -> Kind:
    kind = normalise(code)[-1]
    if kind == "N":
        return "N"
    return "H" if kind == "H" else "C"


def facility_of(code: str) -> str:
    return normalise(code)[:5]


def national_form(code: str) -> str:
    """The code as Decision 808/QĐ-BYT's API writes it: the type letter in lower case
    (unconfirmed whether the current national system still expects it)."""
    canonical = normalise(code)
    return canonical[:-1] + canonical[-1].lower()


__all__ = [
    "ALPHABET",
    "CODE_SYSTEM",
    "KINDS",
    "KIND_NAMES",
    "Kind",
    "facility_of",
    "kind_of",
    "national_form",
    "new_code",
    "normalise",
]
