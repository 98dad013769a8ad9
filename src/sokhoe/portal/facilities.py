"""Facilities and people as a citizen reads them: by name, not by code or id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sokhoe.access.care import facility_code
from sokhoe.access.guard import GuardedRepository
from sokhoe.interop.claims.formats import name_text
from sokhoe.mpi.identifiers import FACILITY


@dataclass(frozen=True)
class Facility:
    code: str
    name: str
    """The registry's name, or the code when the registry does not know it."""
    organization_id: str | None


def facilities(repo: GuardedRepository, codes: Iterable[str]) -> dict[str, Facility]:
    """The registry's Organizations of these insurance codes, one search (shared registry
    entries: every caller sees them), keyed by code; an unknown code keeps its code as name."""
    wanted = sorted({c for c in codes if c})
    found = {c: Facility(c, c, None) for c in wanted}
    if not wanted:
        return found
    value = ",".join(f"{FACILITY}|{c}" for c in wanted)
    query = repo.parse_query(
        "Organization", [("identifier", value), ("_count", str(len(wanted) * 2))]
    )
    for match in repo.search(query).matches:
        content = match.content or {}
        code = facility_code(content)
        if code in found and content.get("name"):
            found[code] = Facility(code, str(content["name"]), match.id)
    return found


def display_name(patient: dict[str, Any]) -> str:
    """A person's name as Vietnamese write it, family name first (the official one)."""
    return name_text(patient) if patient.get("name") else ""


__all__ = ["Facility", "display_name", "facilities"]
