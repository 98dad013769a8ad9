"""The world of the clinic pages' bench, built through the platform's own services and door:
a facility (*trạm y tế*) with a room and a doctor's account, one patient with many finished
visits spread over ten years, and a visit open today.

Each past visit is what the pages would have written: started at the desk
(:func:`sokhoe.clinic.visits.start_visit`), closed with vital signs, an ICD-10 diagnosis and the
visit summary (:func:`sokhoe.clinic.visit.close`), then its lab results as the lab's system
would send them (Observations of category ``laboratory``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from tqdm import tqdm

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic import visit as closing
from sokhoe.clinic.drafts import Visit
from sokhoe.clinic.setup import add_rooms, add_staff
from sokhoe.clinic.visits import start_visit
from sokhoe.config import Settings
from sokhoe.mpi.identifiers import BHYT, CCCD, FACILITY, mrn_system
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from sokhoe.web.pages.clinic.base import VIETNAM

FACILITY_CODE: Final = "01001"
DOCTOR: Final = "bs.bench"
PASSWORD: Final = "clinic-bench-pass-1"  # noqa: S105 - a throwaway account in a scratch database
PATIENT: Final = "p-bench"
YEARS: Final = 10
DIAGNOSES: Final = ("I10", "E11.9", "J06.9", "K29.7", "M54.5", "J20.9", "E78.5", "K21.9")
REASONS: Final = ("Khám định kỳ", "Đau đầu", "Ho, sốt", "Đau thượng vị", "Đau lưng", "Mệt mỏi")
LABS: Final = (
    ("2345-7", "Glucose", "mmol/L", 4.5, 9.0),
    ("2093-3", "Cholesterol", "mmol/L", 3.5, 7.0),
    ("2160-0", "Creatinine", "umol/L", 60.0, 120.0),
    ("4548-4", "Hemoglobin A1c", "%", 5.0, 9.0),
)


@dataclass(frozen=True)
class BenchWorld:
    """The seeded record and the app over it."""

    app: FastAPI
    store: SqlStore
    database: Path
    patient_id: str
    open_visit: str
    resources: int


def _organization() -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"org-{FACILITY_CODE}",
        "identifier": [{"system": FACILITY, "value": FACILITY_CODE}],
        "name": "Trạm Y tế Phường Hoàn Kiếm",
    }


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": PATIENT,
        "identifier": [
            {"system": CCCD, "value": "001058012345"},
            {
                "system": BHYT,
                "value": "HT2010123456789",
                "period": {"start": "2026-01-01", "end": "2030-12-31"},
            },
            {"system": mrn_system(FACILITY_CODE), "value": "BN-000001"},
        ],
        "name": [{"family": "Nguyễn", "given": ["Thị", "Hoa"]}],
        "gender": "female",
        "birthDate": "1958-07-21",
        "telecom": [{"system": "phone", "value": "0912345678", "use": "mobile"}],
    }


def _draft(rng: random.Random) -> dict[str, Any]:
    """What a doctor typed for one visit (always acceptable, so closing writes it all)."""
    systolic = rng.randint(110, 170)
    return {
        "reason": rng.choice(REASONS),
        "vitals": {
            "systolic": str(systolic),
            "diastolic": str(rng.randint(65, min(100, systolic - 20))),
            "pulse": str(rng.randint(60, 100)),
            "temperature": f"{rng.uniform(36.2, 37.6):.1f}",
            "spo2": str(rng.randint(95, 99)),
            "height": "155.0",
            "weight": f"{rng.uniform(50, 62):.1f}",
        },
        "confirmed": True,
        "notes": "Tỉnh, tiếp xúc tốt. Tim đều, phổi không ran.",
        "diagnoses": [rng.choice(DIAGNOSES)],
        "follow_up": "",
        "summary": {
            "history": "Tăng huyết áp nhiều năm, điều trị đều.",
            "results": "",
            "treatment": "Tiếp tục thuốc cũ.",
            "next_steps": "Tái khám sau 1 tháng.",
        },
    }


def _lab(
    rng: random.Random, lab: tuple[str, str, str, float, float], enc: str, when: str
) -> dict[str, Any]:
    code, display, unit, low, high = lab
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "encounter": {"reference": f"Encounter/{enc}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit},
    }


def build_world(
    folder: Path, base_url: str, visits: int, labs: int = 2, seed: int = 1, progress: bool = True
) -> BenchWorld:
    """Seed the record through the platform's services and door; see the module's docstring."""
    database = folder / "clinic-bench.db"
    url = f"sqlite:///{database}"
    store = SqlStore(url)
    app = create_app(Settings(base_url=base_url, database_url=url, var_dir=folder), store)
    repo: GuardedRepository = app.state.repository
    repo.update(_organization(), "Organization", f"org-{FACILITY_CODE}")
    room = add_rooms(repo, FACILITY_CODE, ["Phòng khám 1"])[0]
    add_staff(app.state.tokens.engine, FACILITY_CODE, PASSWORD, [(DOCTOR, "doctor", "BS. Lê An")])
    repo.update(_patient(), "Patient", PATIENT)
    rng = random.Random(seed)
    today = repo.clock().astimezone(VIETNAM)
    first = today - timedelta(days=365 * YEARS)
    author = {"display": "BS. Lê An", "identifier": {"value": DOCTOR}}
    written = 3
    with tqdm(
        total=visits, unit=" visits", desc="seeding", disable=None if progress else True
    ) as bar:
        for n in range(visits):
            day = first + timedelta(days=(365 * YEARS - 1) * n / max(visits, 1))
            started = day.replace(hour=rng.randint(7, 15), minute=rng.randrange(60), second=0)
            written += _one_visit(repo, rng, room, started, author, labs)
            bar.update()
    opened = start_visit(
        repo,
        facility_code=FACILITY_CODE,
        patient_id=PATIENT,
        patient_name="Nguyễn Thị Hoa",
        room_id=room,
        payer="insurance",
        now=today,
    )
    return BenchWorld(app, store, database, PATIENT, str(opened["id"]), written + 1)


def _one_visit(
    repo: GuardedRepository,
    rng: random.Random,
    room: str,
    started: datetime,
    author: dict[str, Any],
    labs: int,
) -> int:
    """A visit started at the desk and closed by the doctor, then its lab results; how many
    resources it wrote."""
    enc = start_visit(
        repo,
        facility_code=FACILITY_CODE,
        patient_id=PATIENT,
        patient_name="Nguyễn Thị Hoa",
        room_id=room,
        payer="insurance",
        now=started,
    )
    visit = Visit(enc, PATIENT, FACILITY_CODE)
    draft = _draft(rng)
    checked = closing.check(draft)
    ended = started + timedelta(minutes=15)
    written = closing.close(repo, visit, draft, checked, ended, author)
    when = ended.isoformat(timespec="seconds")
    with repo.transaction() as tx:
        for lab in rng.sample(LABS, min(labs, len(LABS))):
            repo.create(_lab(rng, lab, visit.id, when), "Observation", tx=tx)
    return len(written) + min(labs, len(LABS))


__all__ = ["DOCTOR", "PASSWORD", "BenchWorld", "build_world"]
