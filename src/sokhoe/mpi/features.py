"""The comparison columns of one Patient: what Splink trains on and the online scorer compares.

One function builds them for both, so the offline model and the online matcher can never
disagree about what "family name" or "birth month" means.
"""

from __future__ import annotations

from typing import Any

from sokhoe.mpi.normalise import (
    NameParts,
    fold,
    linkable_identifiers,
    parse_birth_date,
    patient_name,
    patient_phones,
    valid_cccds,
)

NAME_PARTS = ("family", "middle", "given")
COLUMNS = (
    "unique_id",
    "family",
    "family_f",
    "middle",
    "middle_f",
    "given",
    "given_f",
    "dob_year",
    "dob_month",
    "dob_day",
    "sex",
    "phone",
    "commune",
    "province",
    "cccd",
    "postcode",
    "ids",
    "pids",
    "psys",
)
"""Columns of the Splink input table, in order."""


def place_columns(address: dict[str, Any]) -> tuple[str | None, str | None]:
    """(commune, postal code) of an address: the city folded, the code without spaces and in
    capitals; None where absent."""
    city, postcode = address.get("city"), address.get("postalCode")
    commune = fold(city) if isinstance(city, str) and city.strip() else None
    code = "".join(postcode.split()).upper() if isinstance(postcode, str) else ""
    return commune, code or None


def name_columns(parts: NameParts) -> dict[str, str | None]:
    """Accented and folded columns of each name part."""
    out: dict[str, str | None] = {}
    for key in NAME_PARTS:
        value = getattr(parts, key)
        out[key] = value
        out[f"{key}_f"] = fold(value) if value else None
    return out


def patient_row(patient: dict[str, Any]) -> dict[str, Any]:
    """The comparison columns of a Patient (None where unknown)."""
    row: dict[str, Any] = {"unique_id": patient.get("id")}
    row.update(name_columns(patient_name(patient)))
    birth = parse_birth_date(patient.get("birthDate"))
    row["dob_year"] = birth.year if birth else None
    row["dob_month"] = birth.month if birth and birth.full else None
    row["dob_day"] = birth.day if birth and birth.full else None
    gender = patient.get("gender")
    row["sex"] = gender if gender in ("male", "female") else None
    phones = patient_phones(patient)
    row["phone"] = phones[0] if phones else None
    address = next((a for a in patient.get("address") or [] if isinstance(a, dict)), {})
    row["commune"], row["postcode"] = place_columns(address)
    state = address.get("state")
    row["province"] = fold(state) if isinstance(state, str) and state.strip() else None
    cccds = sorted(valid_cccds(patient))
    row["cccd"] = cccds[0] if cccds else None
    every, person = linkable_identifiers(patient)
    row["ids"] = every or None
    row["pids"] = person or None
    row["psys"] = sorted({key.rsplit("|", 1)[0] for key in person}) or None
    return row
