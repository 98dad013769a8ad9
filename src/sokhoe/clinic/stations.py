"""Which ward a facility serves as its commune health station, read from the registry at
sign-in.

A commune station's doctors and nurses keep the health records of the ward's residents, as the
commune health worker does: their session carries the ward (``Principal.commune``), and the
door lets the care index's home-address rows (``commune:<ward>``) speak for them
(``access/rights.py``). It is the registry's Organization that says so — its level and its
address (:func:`~sokhoe.registry.facilities.served_ward`) — never an account setting, so a
hospital's doctor cannot be made a ward's station by editing their account.
"""

from __future__ import annotations

from dataclasses import replace

from sokhoe.access.principal import Principal
from sokhoe.fhir.repository import FhirRepository
from sokhoe.interop.claims.sources import search_all
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.registry.facilities import served_ward

STATION_ROLES = frozenset({"doctor", "nurse"})
"""The station staff who read and verify the ward's records (``access/rights.py`` agrees)."""


def station_ward(repo: FhirRepository, facility: str) -> str | None:
    """The ward the facility with code ``facility`` serves as its commune station, if any."""
    found = next(
        iter(search_all(repo, "Organization", [("identifier", f"{FACILITY}|{facility}")])), None
    )
    return served_ward(found)


def with_station(repo: FhirRepository, who: Principal) -> Principal:
    """``who`` (staff acting for a facility) with the ward their facility serves, when they are
    one of its clinicians; any other staff member's ``commune`` is cleared."""
    if who.kind != "staff" or who.role == "commune-health-worker":
        return who
    ward = (
        station_ward(repo, who.facility)
        if who.facility is not None and who.role in STATION_ROLES
        else None
    )
    return replace(who, commune=ward)


__all__ = ["STATION_ROLES", "station_ward", "with_station"]
