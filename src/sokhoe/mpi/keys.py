"""Blocking keys: each of the patient index's blocking rules as one indexed value per Patient.

The matcher used to find candidates with ordinary searches that combine two or three
criteria (a given name *and* a birth month, a family name *and* a ward *and* a birth year). At
a million people each criterion alone is thousands of rows (the given name Hùng 8,577, a
month of births 1,349, a ward 1,400, Nguyễn a third of everyone), so the store looked up one
criterion's thousands and checked the others one by one: ``$match`` p95 was 1.6 s.

As Splink's blocking rules are equality on a few columns, each rule here is one string made of
those columns (``nm/1990-04/hung``), written with the Patient as the string parameter
``match-key``. A rule is then one index look-up that returns the few people who share the whole
key, and it is confined, paged and counted like any other search. Both sides are built from
:func:`sokhoe.mpi.features.name_columns` and the same folding, so a stored key and a query's
key agree exactly when the columns do. A name is the key's last part: a string search matches
by prefix, so a name typed short (``joe`` for Joel, ``stanbur``) still finds its person, as the
separate name criterion did (11 of FEBRL 4's 5,000 copies are found only so).

A key is written only when its columns are all known: a query that lacks one (a birth date
without its month, no ward) keeps the older search of separate criteria.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sokhoe.mpi.features import name_columns, place_columns
from sokhoe.mpi.normalise import (
    BirthDate,
    parse_birth_date,
    split_human_name,
    swapped_date,
)

PARAM = "match-key"
"""The Patient search parameter the keys are written to (``fhir/platform_searchparams.py``)."""


def name_month(name: str, birth: BirthDate) -> str | None:
    """A name part (given or family, folded) with the birth month, when the month is known
    (not a 1 January placeholder)."""
    if birth.month is None:
        return None
    return f"nm/{birth.year:04d}-{birth.month:02d}/{name}"


def name_day(name: str, day: str) -> str:
    """A name part with the birth date (``YYYY-MM-DD``)."""
    return f"nd/{day}/{name}"


def full_year(full: str, birth: BirthDate) -> str:
    """The whole folded name (family middle given) with the birth year."""
    return f"fy/{birth.year:04d}/{full}"


def day_place(day: str, place: str) -> str:
    """The birth date with a place (:func:`postcode_place` or :func:`commune_place`)."""
    return f"dp/{day}/{place}"


def name_postcode(name: str, postcode: str) -> str:
    """A name part with the postal code."""
    return f"np/{postcode}/{name}"


def family_given_commune(family: str, given: str, commune: str) -> str:
    """Family and given name in a commune (ward)."""
    return f"gc/{commune}/{family}/{given}"


def family_commune_year(family: str, commune: str, birth: BirthDate) -> str:
    """Family name in a commune with the birth year."""
    return f"fc/{commune}/{birth.year:04d}/{family}"


def postcode_place(postcode: str) -> str:
    return f"p:{postcode}"


def commune_place(commune: str) -> str:
    return f"c:{commune}"


def full_name(family: str | None, middle: str | None, given: str | None) -> str:
    return " ".join(p for p in (family, middle, given) if p)


def birth_days(birth: BirthDate) -> list[str]:
    """The birth date and, when it is one, the date with day and month exchanged."""
    return [d for d in (birth.iso(), swapped_date(birth)) if d]


def _places(patient: dict[str, Any]) -> Iterator[tuple[str | None, str | None]]:
    """(commune, postcode) of each address, as ``features.patient_row`` has the first's."""
    for address in patient.get("address") or []:
        if isinstance(address, dict):
            yield place_columns(address)


def match_keys(patient: dict[str, Any]) -> list[str]:
    """Every blocking key of a stored Patient: each of its names with its birth date and each
    of its addresses, so that a query built from any one of them finds it."""
    birth = parse_birth_date(patient.get("birthDate"))
    days = birth_days(birth) if birth else []
    places = list(_places(patient))
    keys: dict[str, None] = {}
    for raw in patient.get("name") or []:
        if not isinstance(raw, dict):
            continue
        cols = name_columns(split_human_name(raw))
        family, middle, given = cols["family_f"], cols["middle_f"], cols["given_f"]
        parts = [n for n in dict.fromkeys((given, family)) if n]
        for name in parts:
            if birth is not None and (key := name_month(name, birth)) is not None:
                keys[key] = None
            for day in days[:1]:  # a query asks for its date and its swap: stored once
                keys[name_day(name, day)] = None
            for _, postcode in places:
                if postcode:
                    keys[name_postcode(name, postcode)] = None
        full = full_name(family, middle, given)
        if birth is not None and full and full != given:
            keys[full_year(full, birth)] = None
        for commune, _ in places:
            if family and commune:
                if given:
                    keys[family_given_commune(family, given, commune)] = None
                if birth is not None:
                    keys[family_commune_year(family, commune, birth)] = None
    for day in days[:1]:
        for commune, postcode in places:
            if postcode:
                keys[day_place(day, postcode_place(postcode))] = None
            if commune:
                keys[day_place(day, commune_place(commune))] = None
    return list(keys)
