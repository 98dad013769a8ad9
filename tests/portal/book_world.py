"""The health book's test world: the prescribing world (station A, hospitals B and C, part of the
drug catalogue, pharmacies) where the person ``p-an`` has, besides the glucose at B:

- a visit at station A closed by bs.an through the clinic's own services (vital signs, I10, the
  visit summary, a follow-up in 30 days) and signed with bs.an's authenticator code;
- a prescription of amlodipine issued at B (``$prescribe``), not yet bought;
- an X-ray (ImagingStudy) at B, and an allergy B recorded;
- declarations the citizen made themselves: an allergy waiting for the station and a chronic
  disease the station confirmed (``selfdeclared.mark``);
- a blood group B recorded (ABO/Rh, LOINC 882-1), and a different one the citizen declared
  later.

A second person, ``p-binh`` (phone :data:`OTHER_PHONE`), has a visit, a prescription and a
self-declared item of their own: what the first person must never see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyotp

from sokhoe.access.accounts import ROLE_SCOPES
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import link_citizen
from sokhoe.access.principal import Principal
from sokhoe.clinic import visit as closing
from sokhoe.clinic.drafts import Visit
from sokhoe.clinic.signing import TotpConfirmation, sign_visit
from sokhoe.clinic.visits import start_visit
from sokhoe.fhir.resources import format_instant
from sokhoe.operations.check_in import check_in
from sokhoe.operations.prescribe import run_prescribe
from sokhoe.portal.selfdeclared import mark
from sokhoe.store.sql import SqlStore
from tests.clinic.clinic_world import PHONE, QR, World
from tests.prescribing.rx_world import A, B, RxWorld, line, make_rx_world, parameters

OTHER_PHONE: Final = "0987654321"
LOINC: Final = "http://loinc.org"
CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"


@dataclass
class BookWorld:
    rx: RxWorld
    signed_visit: str
    """The visit at A, signed."""
    code: str
    """The prescription code issued at B."""
    other_visit: str
    other_code: str
    other_patient: str = "p-binh"

    @property
    def world(self) -> World:
        return self.rx.world

    @property
    def platform(self) -> GuardedRepository:
        return self.rx.platform


NAMES = {"bs.an": "BS. Trần Thị Bình", "bs.b": "BS. Phạm Văn Dũng", "bs.c": "BS. Hoàng Thị Em"}
"""The clinic world's doctors by the names their accounts carry (the book shows the signer)."""


def doctor_at(world: World, username: str, facility: str) -> GuardedRepository:
    name = NAMES.get(username, f"BS. {username}")
    who = Principal("staff", username, name, "doctor", facility, scopes=ROLE_SCOPES["doctor"])
    return world.platform.for_caller(who)


def _signed_visit(world: World, now: datetime) -> str:
    """A visit at station A, closed and signed by bs.an (owner A on everything it wrote)."""
    doctor = doctor_at(world, "bs.an", A)
    check_in(
        doctor, {"resourceType": "Parameters", "parameter": [{"name": "qr", "valueString": QR}]}
    )
    started = now - timedelta(days=2, hours=1)
    enc = start_visit(
        doctor,
        facility_code=A,
        patient_id=world.patient_id,
        patient_name="Nguyễn Văn An",
        room_id=world.rooms[0],
        payer="self-pay",
        now=started,
    )
    draft: dict[str, Any] = {
        "reason": "Đau đầu, chóng mặt",
        "vitals": {
            "systolic": "150",
            "diastolic": "95",
            "pulse": "82",
            "temperature": "36.8",
            "height": "168",
            "weight": "70.5",
        },
        "diagnoses": ["I10"],
        "follow_up": (now + timedelta(days=30)).date().isoformat(),
        "summary": {
            "history": "Đau đầu từ 3 ngày nay.",
            "treatment": "Amlodipin 5 mg mỗi sáng.",
            "next_steps": "Ăn nhạt, tái khám sau 1 tháng.",
        },
    }
    visit = Visit(enc, world.patient_id, A)
    checked = closing.check(draft)
    author = {"display": "BS. Trần Thị Bình", "identifier": {"value": "bs.an"}}
    closing.close(doctor, visit, draft, checked, started + timedelta(minutes=20), author)
    totp = pyotp.TOTP(world.totp_secret)
    confirm = TotpConfirmation(world.app.state.tokens.engine, "bs.an", totp.now())
    sign_visit(doctor, str(enc["id"]), confirm)
    return str(enc["id"])


def _lab(pid: str, eid: str, code: str, text: str, value: float, unit: str, **more: Any) -> Any:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": text}]},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "effectiveDateTime": format_instant(datetime.now(UTC) - timedelta(days=9)),
        "valueQuantity": {"value": value, "unit": unit},
        **more,
    }


def _at_b(rx: RxWorld, now: datetime) -> str:
    """What hospital B's system recorded besides the glucose: a cholesterol with the lab's
    own range, an allergy, an X-ray, a blood group; and the amlodipine prescription."""
    world = rx.world
    b = world.platform.for_caller(
        Principal("client", "his-b", "HIS B", "system", B, scopes=frozenset({"system/*.cruds"}))
    )
    pid = world.patient_id
    b.create(
        _lab(
            pid,
            "enc-b",
            "2093-3",
            "Cholesterol",
            4.1,
            "mmol/L",
            referenceRange=[{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 5.2}}],
        ),
        "Observation",
    )
    b.create(
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/"
                        "allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {"text": "Penicilin"},
            "reaction": [{"manifestation": [{"text": "Nổi mày đay"}]}],
            "patient": {"reference": f"Patient/{pid}"},
        },
        "AllergyIntolerance",
    )
    b.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": "882-1", "display": "ABO and Rh group"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "valueCodeableConcept": {"text": "O Rh+"},
        },
        "Observation",
    )
    b.create(
        {
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": "Encounter/enc-b"},
            "started": format_instant(now - timedelta(days=9)),
            "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "DX"}],
            "description": "X-quang ngực thẳng",
            "numberOfSeries": 1,
            "numberOfInstances": 2,
        },
        "ImagingStudy",
    )
    issued = run_prescribe(
        rx.doctor("bs.b", B),
        parameters(pid, "enc-b", [line("AMLODIPIN-5", per_day=1, days=30)]),
        now,
    )
    return issued.code


def _declared(world: World, pid: str) -> None:
    """The citizen's own declarations: an allergy waiting, a chronic disease confirmed."""
    me = {"reference": f"Patient/{pid}"}
    waiting = mark(
        {
            "resourceType": "AllergyIntolerance",
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/"
                        "allergyintolerance-verification",
                        "code": "unconfirmed",
                    }
                ]
            },
            "code": {"text": "Hải sản (tôm, cua)"},
            "patient": me,
            "recorder": me,
        },
        "unconfirmed",
    )
    world.platform.create(waiting, "AllergyIntolerance")
    confirmed = mark(
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "code": {"coding": [{"system": ICD10, "code": "E11"}], "text": "Tiểu đường"},
            "subject": me,
            "recorder": me,
        },
        "confirmed",
    )
    world.platform.create(confirmed, "Condition")
    # a blood group declared after B's laboratory typed it: the laboratory's is the one shown
    declared_group = mark(
        {
            "resourceType": "Observation",
            "status": "preliminary",
            "code": {"coding": [{"system": LOINC, "code": "882-1"}]},
            "subject": me,
            "performer": [me],
            "effectiveDateTime": format_instant(datetime.now(UTC)),
            "valueCodeableConcept": {"text": "A Rh+"},
        },
        "unconfirmed",
    )
    world.platform.create(declared_group, "Observation")


def _other(rx: RxWorld, now: datetime) -> tuple[str, str]:
    """Another person (p-binh) with a visit at B, a prescription there and a declaration."""
    world = rx.world
    pid, eid = "p-binh", "enc-binh"
    world.platform.update(
        {
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": "Lê", "given": ["Thị", "Bình"]}],
            "gender": "female",
            "birthDate": "1990-01-02",
        },
        "Patient",
        pid,
    )
    world.platform.update(rx.visit(pid, eid, B), "Encounter", eid)
    rx.diagnose(pid, eid, "J45.9")
    world.platform.create(_lab(pid, eid, "2345-7", "Glucose", 12.3, "mmol/L"), "Observation")
    issued = run_prescribe(
        rx.doctor("bs.b", B),
        parameters(pid, eid, [line("PARACETAMOL-500", days=3)]),
        now,
    )
    secret = mark(
        {
            "resourceType": "AllergyIntolerance",
            "code": {"text": "Dị ứng bí mật của Bình"},
            "patient": {"reference": f"Patient/{pid}"},
        },
        "unconfirmed",
    )
    world.platform.create(secret, "AllergyIntolerance")
    link_citizen(world.app.state.tokens.engine, OTHER_PHONE, pid)
    return eid, issued.code


def make_book_world(folder: Path, base_url: str, store: SqlStore | None = None) -> BookWorld:
    rx = make_rx_world(folder, base_url, store)
    world = rx.world
    now = datetime.now(UTC)
    signed = _signed_visit(world, now)
    code = _at_b(rx, now)
    _declared(world, world.patient_id)
    other_visit, other_code = _other(rx, now)
    link_citizen(world.app.state.tokens.engine, PHONE, world.patient_id)
    return BookWorld(rx, signed, code, other_visit, other_code)


__all__ = ["OTHER_PHONE", "BookWorld", "doctor_at", "make_book_world"]
