"""The demo's facilities and practitioners, taken from the registries.

Why: the demo population must visit the same facilities, and be treated by the same licensed
workers, that the registry publishes, so a demo record's ``serviceProvider`` resolves to a real
registry Organization. This module only re-shapes :mod:`sokhoe.registry.facilities` and
:mod:`sokhoe.registry.practitioners` into the lookups the population generator needs (by province
and level; the doctors of each facility).

The demo writes (``with_locations=True``) the Organizations (authorities and facilities), each
facility's Location, and every worker's Practitioner and PractitionerRole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sokhoe.registry.facilities import FacilityRegistry, build_registry
from sokhoe.registry.practitioners import Workforce, build_workforce

LEVELS = ("central", "provincial", "regional", "commune", "private-clinic", "pharmacy")


@dataclass(slots=True)
class Facility:
    """A facility as the population generator sees it: where a visit happens, who may treat."""

    id: str
    code: str
    name: str
    level: str
    province: str
    practitioners: list[str] = field(default_factory=list)
    """Practitioner ids of the facility's doctors (the only ones who record a diagnosis)."""


@dataclass(slots=True)
class FacilityIndex:
    """All facilities, by province and level, for picking where a visit happens."""

    by_province: dict[str, dict[str, list[Facility]]]
    central: list[Facility]
    resources: list[dict[str, Any]]
    """Organization and Practitioner resources (and optionally more), in a stable order."""
    registry: FacilityRegistry | None = None
    workforce: Workforce | None = None


def build_facilities(seed: int, *, with_locations: bool = False) -> FacilityIndex:
    """Every facility and practitioner from the registries; deterministic in ``seed``."""
    registry = build_registry(seed)
    workforce = build_workforce(registry)
    doctors: dict[str, list[str]] = {}
    for w in workforce.workers:
        if w.role == "doctor":
            doctors.setdefault(w.facility_code, []).append(w.id)
    by_province: dict[str, dict[str, list[Facility]]] = {}
    central: list[Facility] = []
    for f in registry.facilities:
        demo = Facility(f.id, f.code, f.name, f.level, f.province_code, doctors.get(f.code, []))
        if f.level == "central":
            central.append(demo)
        else:
            by_province.setdefault(f.province_code, {}).setdefault(f.level, []).append(demo)
    keep = {"Organization", "Practitioner"}
    if with_locations:
        keep |= {"Location", "PractitionerRole"}
    resources = [
        r for r in [*registry.resources(), *workforce.resources()] if r["resourceType"] in keep
    ]
    return FacilityIndex(by_province, central, resources, registry, workforce)
