"""The prescribing tests' world: the clinic world (station A without beds, hospitals B and C)
with C registered as a provincial hospital (inpatient beds), part of the drug catalogue, two
pharmacies (P and Q, each with its national pharmacy code and a pharmacist who can sign in),
and a way to make a person with a visit at a facility."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.principal import Principal
from sokhoe.clinic.setup import add_staff
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.prescribing import import_catalogue, reference_entries
from sokhoe.prescribing.catalogue import DRUG_SYSTEM, REFERENCE_SOURCE
from sokhoe.prescribing.pharmacy import pharmacy_organization
from sokhoe.registry.facilities import LEVEL_SYSTEM
from sokhoe.store.sql import SqlStore
from tests.clinic.clinic_world import PASSWORD, A, B, C, World, make_world, open_world
from tests.conftest import FAST_HASHER
from tests.prepared import prepared

P, Q = "01901", "01902"
"""Two pharmacies (their platform facility codes)."""
PHARMACIES = {
    P: ("Nhà thuốc Minh Châu", "HNI-NT-000123", "ds.chau"),
    Q: ("Nhà thuốc Hồng Phúc", "HNI-NT-000456", "ds.phuc"),
}
"""Facility code -> (name, national pharmacy code, its pharmacist's username)."""

CODES = (
    "PARACETAMOL-500",
    "AMLODIPIN-5",
    "ENALAPRIL-5",
    "SPIRONOLACTON-25",
    "WARFARIN-5",
    "IBUPROFEN-400",
    "MORPHIN-10",
    "DIAZEPAM-5",
    "CLARITHROMYCIN-500",
    "SIMVASTATIN-20",
)
"""The catalogue entries the tests prescribe (publishing all 348 costs seconds per world)."""


@dataclass
class RxWorld:
    world: World

    @property
    def platform(self) -> GuardedRepository:
        return self.world.platform

    def doctor(self, username: str, facility: str, role: str = "doctor") -> GuardedRepository:
        who = Principal(
            "staff", username, f"BS. {username}", role, facility, scopes=ROLE_SCOPES[role]
        )
        return self.platform.for_caller(who)

    def pharmacist(
        self, username: str, facility: str, role: str = "pharmacist"
    ) -> GuardedRepository:
        """A pharmacist (or another role) at ``facility``, as a signed-in account acts."""
        who = Principal(
            "staff", username, f"DS. {username}", role, facility, scopes=ROLE_SCOPES[role]
        )
        return self.platform.for_caller(who)

    def allergy(self, pid: str, text: str, **code: Any) -> str:
        """An active allergy of the person, recorded by the platform (any facility)."""
        aid = new_id()
        concept: dict[str, Any] = {"text": text, **({"coding": [code]} if code else {})}
        self.platform.update(
            {
                "resourceType": "AllergyIntolerance",
                "id": aid,
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/"
                            "allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": concept,
                "patient": {"reference": f"Patient/{pid}"},
            },
            "AllergyIntolerance",
            aid,
        )
        return aid

    def person(
        self, facility: str, name: str, born: str = "1970-05-01", **extra: Any
    ) -> tuple[str, str]:
        """A person known at ``facility`` (platform data: a proven relationship) with a visit
        there today; (Patient id, Encounter id)."""
        pid, eid = new_id(), new_id()
        self.platform.update(
            {
                "resourceType": "Patient",
                "id": pid,
                "name": [{"text": name}],
                "gender": "female",
                "birthDate": born,
                **extra,
            },
            "Patient",
            pid,
        )
        self.platform.update(self.visit(pid, eid, facility), "Encounter", eid)
        return pid, eid

    def visit(self, pid: str, eid: str, facility: str) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": eid,
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"},
            "period": {"start": format_instant(datetime.now(UTC))},
            "serviceProvider": {"reference": f"Organization/org-{facility}"},
        }

    def diagnose(self, pid: str, eid: str, icd10: str) -> None:
        cid = new_id()
        self.platform.update(
            {
                "resourceType": "Condition",
                "id": cid,
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": icd10}]},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/{eid}"},
            },
            "Condition",
            cid,
        )
        enc = dict(self.platform.read("Encounter", eid).content or {})
        enc["diagnosis"] = [
            *enc.get("diagnosis", []),
            {"condition": {"reference": f"Condition/{cid}"}},
        ]
        self.platform.update(enc, "Encounter", eid)


def line(
    code: str, per_dose: float = 1, per_day: int = 3, days: int = 5, **extra: Any
) -> dict[str, Any]:
    """A prescription line as a connected system writes it."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/x"},
        "medicationCodeableConcept": {"coding": [{"system": DRUG_SYSTEM, "code": code}]},
        "dosageInstruction": [
            {
                "text": f"Uống {per_dose} viên/lần, {per_day} lần/ngày",
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": per_dose, "unit": "viên"}}],
            }
        ],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "ngày"}},
        **extra,
    }


def parameters(
    pid: str,
    eid: str,
    lines: list[dict[str, Any]],
    overrides: dict[int, str] | None = None,
    **more: Any,
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}},
        {"name": "encounter", "valueReference": {"reference": f"Encounter/{eid}"}},
    ]
    for n, item in enumerate(lines):
        parts: list[dict[str, Any]] = [{"name": "resource", "resource": item}]
        if overrides and n in overrides:
            parts.append({"name": "override", "valueString": overrides[n]})
        params.append({"name": "line", "part": parts})
    for name, value in more.items():
        params.append({"name": name.replace("_", "-"), **value})
    return {"resourceType": "Parameters", "parameter": params}


def make_rx_world(folder: Path, base_url: str, store: SqlStore | None = None) -> RxWorld:
    """The world on a SQLite file in ``folder`` (built once per test process, then copied:
    ``tests/prepared.py``), or on ``store`` (PostgreSQL)."""
    if store is not None:
        world = make_world(folder, base_url, store)
        _add_prescribing(world)
        return RxWorld(world)
    rooms, secret = prepared(("rx", base_url), folder, lambda t: _build(t, base_url))
    return RxWorld(open_world(folder, base_url, rooms, secret))


def _build(folder: Path, base_url: str) -> tuple[list[str], str]:
    world = make_world(folder, base_url)
    try:
        _add_prescribing(world)
    finally:
        world.app.state.store.close()
    return world.rooms, world.totp_secret


def _add_prescribing(world: World) -> None:
    repo = world.platform
    entries = [e for e in reference_entries() if e.code in CODES]
    assert len(entries) == len(CODES)
    import_catalogue(repo, REFERENCE_SOURCE, entries, label="test subset")
    hospital = dict(repo.read("Organization", f"org-{C}").content or {})
    hospital["type"] = [{"coding": [{"system": LEVEL_SYSTEM, "code": "provincial"}]}]
    repo.update(hospital, "Organization", f"org-{C}")
    for code, (name, national, username) in PHARMACIES.items():
        repo.update(
            pharmacy_organization(f"org-{code}", code, name, national),
            "Organization",
            f"org-{code}",
        )
        add_staff(
            world.app.state.tokens.engine,
            code,
            PASSWORD,
            [(username, "pharmacist", f"DS. {name}")],
            hasher=FAST_HASHER,
        )
    add_staff(
        world.app.state.tokens.engine,
        B,
        PASSWORD,
        [("ds.b", "pharmacist", "DS. Bệnh viện B")],
        hasher=FAST_HASHER,
    )


def years_ago(years: int, days: int = 0) -> str:
    today = date.today()
    return (today.replace(year=today.year - years) - timedelta(days=days)).isoformat()


__all__ = [
    "CODES",
    "PASSWORD",
    "PHARMACIES",
    "A",
    "B",
    "C",
    "Decimal",
    "P",
    "Q",
    "RxWorld",
    "line",
    "make_rx_world",
    "parameters",
]
