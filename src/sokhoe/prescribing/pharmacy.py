"""Pharmacies (*nhà thuốc*, *quầy thuốc*) and the dispensary of a facility: who may dispense.

A pharmacy is a registry ``Organization`` like every facility (``registry/facilities.py``: level
``pharmacy``), with its 5-character platform facility code (what its staff accounts and
connected systems act for) and its national pharmacy code, the code the national prescription
system knows it by when it reports a sale (:data:`PHARMACY_CODE`; the establishment code of the
national pharmaceutical database — its exact format is unconfirmed, so it is kept as given).
A facility's own dispensary (*khoa dược*, a hospital pharmacy counter) fills the prescriptions
its own doctors issued: there the facility is the pharmacy and no national pharmacy code is
needed. Everyone else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sokhoe.access.accounts import practitioner_of
from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import Forbidden, NotFound
from sokhoe.fhir.references import codings
from sokhoe.interop.claims.sources import find_facility
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.registry.facilities import LEVEL_SYSTEM, LEVELS, PHARMACY_CODE


@dataclass(frozen=True)
class Pharmacy:
    """Where a dispense happens and who hands it over."""

    organization_id: str
    facility_code: str
    name: str
    national_code: str | None
    """None for a facility's own dispensary."""
    pharmacist: dict[str, Any]
    """The ``performer.actor`` Reference of the person (or system) handing over."""
    kinds: frozenset[str] = frozenset({"C"})
    """The prescription types it may fill: ``C``, and ``N`` or ``H`` with a licence for
    controlled medicines (a facility's own dispensary fills every type it prescribes)."""

    @property
    def organization(self) -> dict[str, str]:
        return {"reference": f"Organization/{self.organization_id}", "display": self.name}


def is_pharmacy(organization: dict[str, Any]) -> bool:
    return any(
        c.get("system") == LEVEL_SYSTEM and c.get("code") == "pharmacy"
        for t in organization.get("type", [])
        for c in codings(t)
    )


def national_code(organization: dict[str, Any]) -> str | None:
    for ident in organization.get("identifier", []):
        if ident.get("system") == PHARMACY_CODE and ident.get("value"):
            return str(ident["value"])
    return None


CONTROLLED_LICENCE = "https://fhir.sokhoe.vn/StructureDefinition/controlled-medicines-licence"
"""An Organization's licence to dispense controlled medicines: ``valueCode`` ``N`` (narcotics)
or ``H`` (psychotropics and precursors), one extension each. Unconfirmed: the licence's official
name and scope (Law on Pharmacy 2016 and its decrees: a pharmacy trades in medicines under
special control only with that scope on its certificate)."""


def licensed_kinds(organization: dict[str, Any]) -> frozenset[str]:
    """The prescription types a pharmacy may fill: ordinary ones, and those it is licensed for."""
    licensed = {
        str(e.get("valueCode"))
        for e in organization.get("extension", [])
        if e.get("url") == CONTROLLED_LICENCE and e.get("valueCode") in ("N", "H")
    }
    return frozenset({"C", *licensed})


def pharmacy_organization(
    oid: str,
    facility_code: str,
    name: str,
    national: str,
    licences: tuple[str, ...] = (),
    **more: Any,
) -> dict[str, Any]:
    """The registry Organization of a pharmacy (written by the registry, like every facility);
    ``licences``: the controlled-medicine types (``N``, ``H``) it may dispense."""
    extensions = [{"url": CONTROLLED_LICENCE, "valueCode": kind} for kind in licences]
    return {
        **({"extension": extensions} if extensions else {}),
        "resourceType": "Organization",
        "id": oid,
        "identifier": [
            {"use": "official", "system": FACILITY, "value": facility_code},
            {"system": PHARMACY_CODE, "value": national},
        ],
        "active": True,
        "type": [
            {
                "coding": [
                    {"system": LEVEL_SYSTEM, "code": "pharmacy", "display": LEVELS["pharmacy"]}
                ],
                "text": LEVELS["pharmacy"],
            }
        ],
        "name": name,
        **more,
    }


def _actor(repo: GuardedRepository) -> dict[str, Any]:
    principal = repo.principal
    who: dict[str, Any] = {"display": principal.display}
    if principal.kind == "staff":
        practitioner = practitioner_of(repo.auditor.engine, principal.subject)
        if practitioner is not None:
            who["reference"] = f"Practitioner/{practitioner}"
    return who


def pharmacy_of(repo: GuardedRepository, prescribing_facility: str) -> Pharmacy:
    """The caller's pharmacy, if it may fill a prescription issued at ``prescribing_facility``
    (a registered pharmacy with its national code, or that facility's own dispensary)."""
    code = repo.principal.facility
    if code is None:
        raise Forbidden(Message("Prescriptions are dispensed by a pharmacy's pharmacist or system"))
    try:
        facility = find_facility(repo, code)
    except NotFound:
        raise Forbidden(Message("Facility %(code)s is not in the registry", code=code)) from None
    organization = repo.read("Organization", facility.id).content or {}
    if is_pharmacy(organization):
        national = national_code(organization)
        if national is None:
            raise Forbidden(
                Message(
                    "%(name)s is registered without its national pharmacy code (%(system)s); "
                    "ask the registry to add it",
                    name=facility.name,
                    system=PHARMACY_CODE,
                )
            )
        return Pharmacy(
            facility.id, code, facility.name, national, _actor(repo), licensed_kinds(organization)
        )
    if code == prescribing_facility:
        every = frozenset({"C", "N", "H"})
        return Pharmacy(facility.id, code, facility.name, None, _actor(repo), every)
    raise Forbidden(
        Message(
            "%(name)s is not registered as a pharmacy: it dispenses only its own prescriptions",
            name=facility.name,
        )
    )


__all__ = [
    "CONTROLLED_LICENCE",
    "PHARMACY_CODE",
    "Pharmacy",
    "is_pharmacy",
    "licensed_kinds",
    "national_code",
    "pharmacy_of",
    "pharmacy_organization",
]
