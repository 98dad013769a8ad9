"""Normalising the demographics that person matching compares: names, phones, birth dates.

Vietnamese names are compared twice: *folded* (no diacritics, as people type on keyboards
without a Vietnamese input method: ``Nguyen`` = ``Nguyễn``) and *accented* (``Nguyễn`` ≠
``Nguyên``), so that a full accented agreement is stronger evidence than a folded one.
A name is family + middle + given (*họ*, *tên đệm*, *tên*), family first.
See: https://hl7.org/fhir/R4/datatypes.html#HumanName
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sokhoe.mpi.identifiers import (
    BHXH,
    BHYT,
    CCCD,
    MRN_PREFIX,
    validate_bhxh,
    validate_bhyt,
    validate_cccd,
)
from sokhoe.search.index import normalize_string

_USE_RANK = {"official": 0, "usual": 1, None: 2, "nickname": 3, "maiden": 4, "old": 5}
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def accented(text: str) -> str:
    """Lower-case NFC text with single spaces, diacritics kept (``Nguyễn`` ≠ ``Nguyên``)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def fold(text: str) -> str:
    """Diacritics and case dropped, ``đ`` → ``d``: the search index's own folding."""
    return normalize_string(text)


@dataclass(frozen=True)
class NameParts:
    """A Vietnamese name split into family / middle / given, each accented (lower-case)."""

    family: str | None
    middle: str | None
    given: str | None

    def folded(self) -> NameParts:
        return NameParts(*(fold(p) if p else None for p in (self.family, self.middle, self.given)))

    def swapped(self) -> NameParts:
        """Family and given exchanged: the Western order some facility systems store."""
        return NameParts(self.given, self.middle, self.family)


def split_words(words: list[str]) -> NameParts:
    """Vietnamese order: the first word is the family name, the last the given name."""
    words = [w for w in words if w]
    if not words:
        return NameParts(None, None, None)
    if len(words) == 1:
        return NameParts(None, None, words[0])
    middle = " ".join(words[1:-1]) or None
    return NameParts(words[0], middle, words[-1])


def _best_name(patient: dict[str, Any]) -> dict[str, Any] | None:
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    if not names:
        return None
    return min(names, key=lambda n: _USE_RANK.get(n.get("use"), 2))


def split_human_name(name: dict[str, Any] | str | None) -> NameParts:
    """Split a HumanName (or a whole name in one string) into family / middle / given.

    FHIR ``family`` plus a ``given`` list whose last item is the given name and earlier items
    the middle names; a name given only as ``text``, or crammed into one ``family`` or one
    ``given`` string, is split by words in Vietnamese order.
    """
    if name is None:
        return NameParts(None, None, None)
    if isinstance(name, str):
        return split_words(accented(name).split())
    family = accented(name.get("family") or "")
    given_items = [accented(g) for g in name.get("given") or [] if isinstance(g, str)]
    given_words = " ".join(given_items).split()
    if family and given_words:
        middle = " ".join(given_words[:-1]) or None
        return NameParts(family, middle, given_words[-1])
    if family or given_words:
        return split_words(family.split() + given_words)
    return split_words(accented(name.get("text") or "").split())


def patient_name(patient: dict[str, Any]) -> NameParts:
    """The name parts of a Patient's preferred (official, else usual, else first) name."""
    return split_human_name(_best_name(patient))


def normalise_phone(value: str | None) -> str | None:
    """Digits only, the country code +84 / 84 / 0084 written as the trunk ``0``.

    Returns None for anything too short to be a Vietnamese subscriber number (9–10 digits
    after the leading 0).
    """
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    elif not digits.startswith("0") and len(digits) in (9, 10):
        digits = "0" + digits
    return digits if 10 <= len(digits) <= 11 else None


def patient_phones(patient: dict[str, Any]) -> list[str]:
    out = []
    for t in patient.get("telecom") or []:
        if isinstance(t, dict) and t.get("system") in ("phone", "sms", None):
            p = normalise_phone(t.get("value"))
            if p and p not in out:
                out.append(p)
    return out


@dataclass(frozen=True)
class BirthDate:
    """A birth date that may be partial: year only, or a 01/01 placeholder (day/month unknown).

    Registrations without a known birthday often record 1 January; such a date says no more
    than the year, so ``month`` and ``day`` are None and ``placeholder`` is True.
    """

    year: int
    month: int | None = None
    day: int | None = None
    placeholder: bool = False

    @property
    def full(self) -> bool:
        return self.month is not None and self.day is not None

    def iso(self) -> str | None:
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}" if self.full else None


def parse_birth_date(value: str | None) -> BirthDate | None:
    """Parse a FHIR ``date`` (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``); None if absent or bad."""
    if not value or not isinstance(value, str):
        return None
    m = _DATE.fullmatch(value.strip())
    if not m:
        return None
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    if month is not None and not 1 <= month <= 12:
        return BirthDate(year)
    if month == 1 and day == 1:
        return BirthDate(year, placeholder=True)
    if day is None:
        return BirthDate(year, month)
    return BirthDate(year, month, day)


def day_month_swapped(a: BirthDate, b: BirthDate) -> bool:
    """Same year, and a's day/month are b's month/day (``03/05`` typed as ``05/03``)."""
    return (
        a.full
        and b.full
        and a.year == b.year
        and a.day != a.month
        and a.month == b.day
        and a.day == b.month
    )


def swapped_date(d: BirthDate) -> str | None:
    """The ISO date with day and month exchanged, when that is a valid date."""
    if not d.full or d.day is None or d.month is None or d.day > 12 or d.day == d.month:
        return None
    return f"{d.year:04d}-{d.day:02d}-{d.month:02d}"


def _active(ident: dict[str, Any]) -> bool:
    return ident.get("use") != "old" and not (ident.get("period") or {}).get("end", "9") < "2000"


def identifier_values(patient: dict[str, Any], system: str) -> list[str]:
    """The current (not ``use: old``) values of ``system`` on a Patient, as written."""
    out = []
    for ident in patient.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == system and _active(ident):
            value = ident.get("value")
            if isinstance(value, str) and value not in out:
                out.append(value)
    return out


def valid_cccds(patient: dict[str, Any]) -> frozenset[str]:
    """Current, structurally valid 12-digit personal IDs (CCCD), normalised."""
    out = set()
    for v in identifier_values(patient, CCCD):
        try:
            out.add(validate_cccd(v))
        except ValueError:
            continue
    return frozenset(out)


def bhyt_social_numbers(patient: dict[str, Any]) -> frozenset[str]:
    """The 10-digit social-insurance numbers: BHXH identifiers and the tails of valid BHYT cards.

    The group code, benefit level and province prefix change when a person changes job or
    moves; the last 10 digits (*mã số BHXH*) stay with the person for life.
    """
    out = set()
    for v in identifier_values(patient, BHYT):
        try:
            out.add(validate_bhyt(v)[-10:])
        except ValueError:
            continue
    for v in identifier_values(patient, BHXH):
        try:
            out.add(validate_bhxh(v))
        except ValueError:
            continue
    return frozenset(out)


RULE_SYSTEMS = frozenset({CCCD, BHYT, BHXH})
"""Identifier systems the matcher decides on by rule (``same-cccd``, ``same-bhyt``…), not by
the model's identifier comparison."""
_MR = "MR"
"""``Identifier.type`` code of a medical record number (HL7 v2 table 0203)."""


def _record_number(ident: dict[str, Any], system: str) -> bool:
    """A facility's record number: one person may hold several in one system (registered twice
    at the same hospital), so a different value there says nothing against a match."""
    if system.startswith(MRN_PREFIX):
        return True
    codings = ((ident.get("type") or {}).get("coding")) or []
    return any(isinstance(c, dict) and c.get("code") == _MR for c in codings)


def linkable_identifiers(patient: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Current identifiers other than the rule systems, as ``system|value`` keys (value without
    spaces, upper-case): (all of them, the person-level ones).

    Person-level identifiers (a passport, an old CMND, another country's social security or
    health number) are held once per person in their system, so a different value in the same
    system counts against a match, and a value one keystroke away (a typo) counts for it.
    Record numbers (see :func:`_record_number`) count only when they agree.
    """
    every: list[str] = []
    person: list[str] = []
    for ident in patient.get("identifier") or []:
        if not isinstance(ident, dict) or not _active(ident):
            continue
        system, value = ident.get("system"), ident.get("value")
        if not isinstance(system, str) or not isinstance(value, str) or system in RULE_SYSTEMS:
            continue
        value = "".join(value.split()).upper()
        if not system or not value:
            continue
        key = f"{system}|{value}"
        if key not in every:
            every.append(key)
            if not _record_number(ident, system):
                person.append(key)
    return sorted(every), sorted(person)


def other_identifiers(patient: dict[str, Any]) -> list[tuple[str, str]]:
    """(system, value as written) of the current identifiers outside the rule systems: the
    keys the matcher searches for (the index holds values as written)."""
    out: list[tuple[str, str]] = []
    for ident in patient.get("identifier") or []:
        if not isinstance(ident, dict) or not _active(ident):
            continue
        system, value = ident.get("system"), ident.get("value")
        if isinstance(system, str) and system and system not in RULE_SYSTEMS:
            if isinstance(value, str) and value.strip() and (system, value) not in out:
                out.append((system, value))
    return out
