"""The platform's own code systems as FHIR CodeSystem and ValueSet resources.

Built from the tables the platform writes with (the facility registry's levels, the
practitioner roles, the drug list of ``registry.terminology_local``; the 54 ethnic groups of the
self-declaration; the 34 provinces and their wards of ``registry.places``; the visit's payer and
the insurance routes of the claims rules), so the package and the records cannot disagree. Code
systems that are not ours (ICD-10, LOINC, CVX) are left to their owners. Each ValueSet includes
its whole code system, at ``https://fhir.sokhoe.vn/ValueSet/<name>``, the URL the server's
``$expand`` answers for.
See: https://hl7.org/fhir/R4/codesystem.html and https://hl7.org/fhir/R4/valueset.html
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final, get_args

from sokhoe import __version__
from sokhoe.fhir.narrative import narrative
from sokhoe.registry.naming import DATE, PUBLISHER

BASE: Final = "https://fhir.sokhoe.vn"
PAYER_SYSTEM: Final = f"{BASE}/CodeSystem/encounter-payer"
ROUTE_SYSTEM: Final = f"{BASE}/CodeSystem/insurance-route"
_JURISDICTION: Final = [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "VN"}]}]


@dataclass(frozen=True)
class OwnCodeSystem:
    """One of the platform's code systems: its URL, name (the ValueSet's last segment), title,
    what it is, and its (code, display) pairs in order."""

    url: str
    name: str
    title: str
    description: str
    concepts: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def value_set(self) -> str:
        return f"{BASE}/ValueSet/{self.name}"


@cache
def own_code_systems() -> tuple[OwnCodeSystem, ...]:
    """Every code system of ``https://fhir.sokhoe.vn``, sorted by URL."""
    from sokhoe.clinic.visits import Payer
    from sokhoe.interop.claims.benefit import Route
    from sokhoe.portal.codes import ETHNIC_GROUPS, ETHNICITY
    from sokhoe.registry.addresses import PROVINCE_SYSTEM, WARD_SYSTEM
    from sokhoe.registry.places import provinces
    from sokhoe.registry.terminology_local import LOCAL_SYSTEMS

    found = [
        OwnCodeSystem(
            cs.url,
            cs.name,
            cs.title,
            f"{cs.title}: the codes sokhoe writes.",
            tuple((c.code, c.display_vi or c.display) for c in cs.concepts.values()),
        )
        for cs in LOCAL_SYSTEMS
        if cs.url.startswith(BASE)
    ]
    found += [
        OwnCodeSystem(
            ETHNICITY,
            "ethnicity",
            "Dân tộc (the 54 ethnic groups)",
            "The 54 ethnic groups of Vietnam with the statistics office's two-digit codes, as in "
            "the insurance field MA_DANTOC (order of decision 121-TCTK/PPCĐ, 1979).",
            tuple((o.code, o.display) for o in ETHNIC_GROUPS),
        ),
        OwnCodeSystem(
            PROVINCE_SYSTEM,
            "province",
            "Tỉnh, thành phố (the 34 provinces since 1 July 2025)",
            "Two-digit statistics-office codes of the 34 provinces and centrally governed cities "
            "(Resolution 202/2025/QH15).",
            tuple((p.code, p.name) for p in provinces()),
        ),
        OwnCodeSystem(
            WARD_SYSTEM,
            "ward",
            "Xã, phường, đặc khu (communes and wards since 1 July 2025)",
            "Five-digit statistics-office codes of the communes, wards and special zones.",
            tuple(sorted((w.code, w.name) for p in provinces() for w in p.wards)),
        ),
        OwnCodeSystem(
            PAYER_SYSTEM,
            "encounter-payer",
            "Đối tượng thanh toán (who pays for the visit)",
            "Whether the visit is paid by health insurance (BHYT) or by the patient.",
            tuple(
                (code, {"insurance": "Bảo hiểm y tế", "self-pay": "Tự chi trả"}[code])
                for code in get_args(Payer)
            ),
        ),
        OwnCodeSystem(
            ROUTE_SYSTEM,
            "insurance-route",
            "Tuyến khám bệnh (insurance route)",
            "How the patient came to the facility, as far as it changes the insurance share.",
            tuple((str(r.value), _ROUTE_DISPLAY[r.value]) for r in Route),
        ),
    ]
    return tuple(sorted(found, key=lambda cs: cs.url))


_ROUTE_DISPLAY: Final = {
    "right-route": "Đúng tuyến",
    "referred": "Chuyển tuyến",
    "emergency": "Cấp cứu",
    "wrong-route-provincial": "Trái tuyến, bệnh viện tỉnh",
    "wrong-route-central": "Trái tuyến, bệnh viện trung ương",
}


def code_system(cs: OwnCodeSystem) -> dict[str, Any]:
    """The complete CodeSystem resource (``content: complete``)."""
    return {
        "resourceType": "CodeSystem",
        "id": cs.id,
        "text": narrative(cs.title, cs.description),
        "url": cs.url,
        "version": __version__,
        "name": _token(cs.name),
        "title": cs.title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": cs.description,
        "jurisdiction": _JURISDICTION,
        "caseSensitive": True,
        "valueSet": cs.value_set,
        "content": "complete",
        "count": len(cs.concepts),
        "concept": [{"code": code, "display": display} for code, display in cs.concepts],
    }


def value_set(cs: OwnCodeSystem) -> dict[str, Any]:
    """The ValueSet of every code of ``cs``."""
    return {
        "resourceType": "ValueSet",
        "id": cs.id,
        "text": narrative(cs.title, f"Every code of {cs.url}."),
        "url": cs.value_set,
        "version": __version__,
        "name": _token(cs.name),
        "title": cs.title,
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": PUBLISHER,
        "description": f"Every code of {cs.url}.",
        "jurisdiction": _JURISDICTION,
        "compose": {"include": [{"system": cs.url}]},
    }


def _token(name: str) -> str:
    """A computer-friendly name (``facility-level`` -> ``FacilityLevel``), as R4's inv-0 wants."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


@cache
def value_set_codes() -> dict[str, frozenset[tuple[str, str]]]:
    """ValueSet URL -> its (system, code) pairs, for the profile checker's bindings."""
    return {
        cs.value_set: frozenset((cs.url, code) for code, _ in cs.concepts)
        for cs in own_code_systems()
    }
