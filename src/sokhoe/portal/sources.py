"""Where each item of the health book comes from: the facility that recorded it, or the citizen.

A resident must be able to tell what a doctor found from what they declared themselves, so
every line of the book carries a :class:`Source`: a self-declared item says so with how far the
station's check went (``selfdeclared.verification``), a facility's record names the facility.

The facility of a resource is, in order: the facility whose caller created it (the door stamps
``owner``, the insurance code), the visit it belongs to (``encounter``: that visit's
``serviceProvider``), the facility part of a prescription code. A record loaded by the platform
with none of these says the source is unknown rather than guessing.
See: https://hl7.org/fhir/R4/encounter-definitions.html#Encounter.serviceProvider
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import find
from sokhoe.fhir.references import reference_id
from sokhoe.mpi.identifiers import BHYT, FACILITY
from sokhoe.portal.selfdeclared import Verification, verification
from sokhoe.prescribing.code import CODE_SYSTEM as PRESCRIPTION_CODES
from sokhoe.store.ports import StoredResource


@dataclass(frozen=True)
class Source:
    """Who recorded one item: a facility (by name), or the citizen (with the check's state)."""

    facility: str | None = None
    """The facility's name; None when self-declared or unknown."""
    declared: Verification | None = None
    """The station's check of a self-declared item; None for a facility's record."""

    @property
    def self_declared(self) -> bool:
        return self.declared is not None


@dataclass
class Facilities:
    """The names of the facilities a record mentions (by Organization id and insurance code),
    read with one or two searches, and each visit's facility."""

    by_id: dict[str, dict[str, Any]]
    by_code: dict[str, dict[str, Any]]
    visits: dict[str, str | None]
    """Encounter id → the facility's name."""

    def name_of_id(self, org_id: str | None) -> str | None:
        org = self.by_id.get(org_id or "")
        return str(org["name"]) if org and org.get("name") else None

    def name_of_code(self, code: str | None) -> str | None:
        org = self.by_code.get(code or "")
        return str(org["name"]) if org and org.get("name") else None

    def visit_facility(self, encounter: dict[str, Any]) -> str | None:
        provider = encounter.get("serviceProvider") or {}
        return self.name_of_id(reference_id(provider, "Organization")) or (
            str(provider["display"]) if provider.get("display") else None
        )

    def source(self, stored: StoredResource) -> Source:
        """Where ``stored`` comes from (see the module's docstring)."""
        content = stored.content or {}
        state = verification(content)
        if state is not None:
            return Source(None, state)
        if stored.resource_type == "Encounter":
            return Source(self.visit_facility(content) or self.name_of_code(stored.owner))
        name = self.name_of_code(stored.owner)
        if name is None:
            visit = reference_id(content.get("encounter") or content.get("context"), "Encounter")
            name = self.visits.get(visit or "")
        if name is None:
            code = prescription_code(content)
            name = self.name_of_code(code[:5]) if code else None
        return Source(name)


def prescription_code(request: dict[str, Any]) -> str | None:
    """The prescription code (*mã đơn thuốc*) a MedicationRequest line carries, if any."""
    group = request.get("groupIdentifier") or {}
    if group.get("system") == PRESCRIPTION_CODES and group.get("value"):
        return str(group["value"])
    return None


def _wanted(resources: Iterable[StoredResource]) -> tuple[set[str], set[str]]:
    """(Organization ids, facility codes) the resources mention."""
    ids: set[str] = set()
    codes: set[str] = set()
    for stored in resources:
        content = stored.content or {}
        if stored.owner:
            codes.add(stored.owner)
        if stored.resource_type == "Encounter":
            org = reference_id(content.get("serviceProvider"), "Organization")
            if org:
                ids.add(org)
        elif stored.resource_type == "Patient":
            for ident in content.get("identifier", []):
                if ident.get("system") == BHYT:
                    org = reference_id(ident.get("assigner"), "Organization")
                    if org:
                        ids.add(org)
        elif stored.resource_type == "MedicationRequest":
            code = prescription_code(content)
            if code:
                codes.add(code[:5])
    return ids, codes


def facilities(repo: GuardedRepository, resources: list[StoredResource]) -> Facilities:
    """The facilities ``resources`` mention, read through the door: one search by id, one by
    insurance code for the codes those did not answer (registries are shared: a citizen may
    read them)."""
    ids, codes = _wanted(resources)
    by_id: dict[str, dict[str, Any]] = {}
    by_code: dict[str, dict[str, Any]] = {}

    def keep(found: list[dict[str, Any]]) -> None:
        for org in found:
            by_id[str(org["id"])] = org
            for ident in org.get("identifier", []):
                if ident.get("system") == FACILITY and ident.get("value"):
                    by_code[str(ident["value"])] = org

    if ids:
        keep(find(repo, "Organization", [("_id", ",".join(sorted(ids)))], len(ids)))
    missing = sorted(codes - set(by_code))
    if missing:
        wanted = ",".join(f"{FACILITY}|{code}" for code in missing)
        keep(find(repo, "Organization", [("identifier", wanted)], 2 * len(missing)))
    known = Facilities(by_id, by_code, {})
    for stored in resources:
        if stored.resource_type == "Encounter" and stored.content is not None:
            name = known.visit_facility(stored.content) or known.name_of_code(stored.owner)
            known.visits[stored.id] = name
    return known


__all__ = ["Facilities", "Source", "facilities", "prescription_code"]
