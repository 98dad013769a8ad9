"""The front desk's one input: whatever the receptionist types or the scanner sends.

A USB scanner reading the QR on the chip ID card types its text (``ID|old ID|NAME|…``) followed
by Enter into whatever field has focus; receptionists also type the 12-digit ID, the 15-character
health-insurance card number, or a name with a birth year for people without papers. One box
takes all four, so the desk never has to choose a field first.

Numbers go to ``Patient/$check-in`` (found, or registered from the QR; the door decides what a
facility without a relationship is shown). A name is searched only among the people the
facility may see (accent-insensitive, as Vietnamese names are often typed without diacritics),
and several results are shown side by side to pick from — or to spot a duplicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import find
from sokhoe.errors import InvalidRequest
from sokhoe.messages import Message
from sokhoe.mpi.matching import Matcher
from sokhoe.operations.check_in import check_in

Kind = Literal["qr", "cccd", "bhyt", "name"]
_CCCD: Final = re.compile(r"\d{12}")
_BHYT: Final = re.compile(r"[A-Z]{2}[1-5]\d{12}")
_YEAR: Final = re.compile(r"(?:19|20)\d{2}")


def classify(text: str) -> Kind:
    """What the desk typed: the QR text (has ``|``), an ID, a card number, or a name."""
    cleaned = text.strip()
    if "|" in cleaned:
        return "qr"
    compact = cleaned.replace(" ", "").upper()
    if _CCCD.fullmatch(compact):
        return "cccd"
    if _BHYT.fullmatch(compact):
        return "bhyt"
    return "name"


@dataclass
class Intake:
    """What the desk's input found."""

    kind: Kind
    patient: dict[str, Any] | None = None
    """The Patient as the caller may see it (the desk view when not ``disclosed``)."""
    registered: bool = False
    disclosed: bool = True
    """False: the facility has no relationship with the person yet; their history opens
    with proof of presence (see ``operations/presence.py``)."""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    """People matching a typed name (several: the desk picks, or spots a duplicate)."""


def split_name_year(text: str) -> tuple[str, str | None]:
    """``nguyen van an 1985`` → (``nguyen van an``, ``1985``)."""
    words = text.split()
    year = next((w for w in reversed(words) if _YEAR.fullmatch(w)), None)
    name = " ".join(w for w in words if w != year)
    return name, year


def take(repo: GuardedRepository, text: str, matcher: Matcher | None = None) -> Intake:
    """Find or register the person ``text`` names, as the caller may."""
    kind = classify(text)
    if kind == "name":
        name, year = split_name_year(text)
        if len(name) < 2:
            raise InvalidRequest(
                Message("Type a name (and a birth year), an ID number or scan the card")
            )
        params = [("name", name), ("_sort", "family")]
        if year is not None:
            params.append(("birthdate", year))
        return Intake(kind, candidates=find(repo, "Patient", params, 20))
    value = text.strip() if kind == "qr" else text.replace(" ", "").upper()
    body = {"resourceType": "Parameters", "parameter": [{"name": kind, "valueString": value}]}
    result = check_in(repo, body, matcher)
    patient = result.patient.content if result.disclosed else result.view
    return Intake(kind, dict(patient or {}), result.registered, result.disclosed)


__all__ = ["Intake", "Kind", "classify", "split_name_year", "take"]
