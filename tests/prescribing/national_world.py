"""A facility, a pharmacy, a doctor and a patient, prescriptions written by hand (``$prescribe``
does not exist yet), and the outbox wired to a stand-in national system."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from sokhoe.access.accounts import ROLE_SCOPES, create_user
from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.kek import KeyEncryptionKey
from sokhoe.access.principal import Principal, system_principal
from sokhoe.config import NationalLogin
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.mpi.identifiers import BHYT, CCCD, FACILITY, PRACTITIONER
from sokhoe.prescribing.cancel import OWNS
from sokhoe.prescribing.national import (
    PRESCRIPTION_CODE_SYSTEM,
    Backoff,
    Deliverer,
    DispensingSources,
    NationalClient,
    PrescriptionSources,
    TokenCache,
    dispensing_message,
    enqueue,
    prescription_message,
)
from sokhoe.store import FhirStore
from tests.conftest import BASE, FAST_HASHER
from tests.prescribing.national_standin import APP_KEY, APP_NAME, Account, NationalStandIn

A, B, PHARMACY = "79001", "01002", "79P01"
CCHN = "000123/HCM-CCHN"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
DRUG = "https://fhir.sokhoe.vn/CodeSystem/ma-thuoc"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SECRET = "mật-khẩu-dài-2026"


class Clock:
    """A clock a test moves by hand (starting now: the stand-in's tokens use real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    store: FhirStore
    engine: Engine
    platform: GuardedRepository
    system_a: GuardedRepository
    standin: NationalStandIn
    clock: Clock
    kek: KeyEncryptionKey
    ids: dict[str, str]
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def client(self) -> NationalClient:
        """A client as another process would make one: only the database is shared."""
        return NationalClient(
            self.standin.url,
            TokenCache(self.engine, self.kek),
            facilities={A: NationalLogin(code="LT-79001", password=SECRET)},
            doctors={CCHN: NationalLogin(code="BS-0001", password=SECRET)},
            app_name=APP_NAME,
            app_key=APP_KEY,
            timeout=2.0,
            clock=self.clock,
        )

    def deliverer(
        self, client: NationalClient | None = None, *, batch: int = 50, worker: str | None = None
    ) -> Deliverer:
        return Deliverer(
            self.platform,
            self.engine,
            client or self.client(),
            backoff=Backoff(30.0, 3600.0),
            lease=timedelta(minutes=2),
            clock=self.clock,
            rng=random.Random(7),
            batch=batch,
            worker=worker,
        )

    def staff(self, username: str, facility: str) -> GuardedRepository:
        create_user(
            self.engine, username, SECRET, "doctor", f"BS. {username}", facility, hasher=FAST_HASHER
        )
        principal = Principal(
            "staff", username, f"BS. {username}", "doctor", facility, scopes=ROLE_SCOPES["doctor"]
        )
        return self.platform.for_caller(principal)

    def issue(
        self, lines: int = 2, *, fail: Callable[[], None] | None = None
    ) -> tuple[str, list[str]]:
        """Write one prescription (``lines`` MedicationRequests, one code) as facility A's
        system and queue it in the same transaction; returns the code and the request ids."""
        rng = random.SystemRandom()
        code = A + "".join(rng.choice(string.digits + string.ascii_lowercase) for _ in range(7))
        code += "-C"
        requests = [self._request(code, n) for n in range(lines)]
        sources = PrescriptionSources(
            requests,
            self.resources["patient"],
            self.resources["practitioner"],
            self.resources["org_a"],
            self.resources["encounter"],
            [self.resources["condition"]],
            weight_kg=52.5,
        )
        message = prescription_message(sources, self.ids["patient"])
        with self.system_a.operation(
            "prescribe",
            resource_type="MedicationRequest",
            patients=[self.ids["patient"]],
            owns=OWNS,
        ) as tx:  # as $prescribe does (its checks are tested in test_prescribe.py)
            for request in requests:
                self.system_a.update(request, "MedicationRequest", request["id"], tx=tx)
            enqueue(tx, message, self.clock())
            if fail is not None:
                fail()
        return code, [r["id"] for r in requests]

    def _request(self, code: str, n: int) -> dict[str, Any]:
        drugs = [
            ("40.17", "Paracetamol", "Panadol 500 mg", "viên", 20),
            ("40.152", "Amoxicilin", "Amoxicillin 500 mg Domesco", "viên", 15),
        ]
        drug, ingredient, brand, unit, quantity = drugs[n % len(drugs)]
        return {
            "resourceType": "MedicationRequest",
            "id": new_id(),
            "status": "active",
            "intent": "order",
            "groupIdentifier": {"system": PRESCRIPTION_CODE_SYSTEM, "value": code},
            "medicationCodeableConcept": {
                "coding": [{"system": DRUG, "code": drug, "display": ingredient}],
                "text": brand,
            },
            "subject": {"reference": f"Patient/{self.ids['patient']}"},
            "encounter": {"reference": f"Encounter/{self.ids['encounter']}"},
            "authoredOn": format_instant(self.clock()),
            "requester": {"reference": f"Practitioner/{self.ids['practitioner']}"},
            "dosageInstruction": [
                {
                    "text": "Uống 1 viên x 3 lần/ngày, sau ăn",
                    "patientInstruction": "Uống nhiều nước",
                }
            ],
            "dispenseRequest": {
                "validityPeriod": {"start": format_instant(self.clock())},
                "quantity": {"value": quantity, "unit": unit},
                "expectedSupplyDuration": {"value": 5, "unit": "d", "code": "d"},
            },
        }

    def dispense(self, code: str, request_ids: list[str], invoice: str) -> None:
        """The pharmacy sells the first line in part and substitutes the second, queued in the
        transaction of the MedicationDispenses (written by the platform: ``$dispense`` does
        not exist yet)."""
        with self.platform.snapshot() as tx:
            requests = {
                rid: dict(tx.read("MedicationRequest", rid).content or {}) for rid in request_ids
            }  # type: ignore[union-attr]
        dispenses = []
        for n, rid in enumerate(request_ids):
            dispense: dict[str, Any] = {
                "resourceType": "MedicationDispense",
                "id": new_id(),
                "status": "completed",
                "subject": {"reference": f"Patient/{self.ids['patient']}"},
                "authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}],
                "medicationCodeableConcept": requests[rid]["medicationCodeableConcept"],
                "quantity": {"value": 10, "unit": "viên"},
                "performer": [{"actor": {"reference": f"Organization/{self.ids['pharmacy']}"}}],
            }
            if n == 1:
                dispense["medicationCodeableConcept"] = {
                    "coding": [{"system": DRUG, "code": "40.152.2", "display": "Amoxicilin"}],
                    "text": "Amoxicillin 500 mg Imexpharm",
                }
                dispense["substitution"] = {
                    "wasSubstituted": True,
                    "reason": [{"text": "Hết biệt dược đã kê, cùng hoạt chất và hàm lượng"}],
                }
            dispenses.append(dispense)
        sources = DispensingSources(code, invoice, dispenses, requests, self.resources["pharmacy"])
        message = dispensing_message(
            sources, PHARMACY, f"MedicationRequest/{request_ids[0]}", self.ids["patient"]
        )
        with self.platform.operation(
            "dispense",
            resource_type="MedicationDispense",
            patients=[self.ids["patient"]],
            owns=frozenset({"dispensing"}),
        ) as tx:  # as $dispense does
            for dispense in dispenses:
                self.platform.update(dispense, "MedicationDispense", dispense["id"], tx=tx)
            enqueue(tx, message, self.clock())


def make_world(store: FhirStore) -> World:
    clock = Clock()
    platform = platform_repository(store, f"{BASE}/fhir")
    resources: dict[str, dict[str, Any]] = {}
    ids: dict[str, str] = {}
    for key, code, name in (
        (("org_a", A, "Trạm Y tế Phường Bến Nghé")),
        ("org_b", B, "Bệnh viện Đa khoa Hà Nội"),
        ("pharmacy", PHARMACY, "Nhà thuốc Minh Châu"),
    ):
        org = {
            "resourceType": "Organization",
            "identifier": [{"system": FACILITY, "value": code}],
            "name": name,
            "telecom": [{"system": "phone", "value": "0283822" + "1234"}],
            "address": [{"text": "12 Lê Lợi, Phường Bến Nghé, TP. Hồ Chí Minh"}],
        }
        stored = platform.create(org, "Organization").resource
        resources[key], ids[key] = dict(stored.content or {}), stored.id
    practitioner = {
        "resourceType": "Practitioner",
        "identifier": [{"system": PRACTITIONER, "value": CCHN}],
        "name": [{"text": "Nguyễn Văn An"}],
    }
    stored = platform.create(practitioner, "Practitioner").resource
    resources["practitioner"], ids["practitioner"] = dict(stored.content or {}), stored.id
    system_a = platform.for_caller(
        system_principal("his-a", "HIS A", frozenset({"system/*.cruds"}), A)
    )
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": CCCD, "value": "079190001234"},
            {"system": BHYT, "value": "DN4797912345678"},
        ],
        "name": [{"family": "Trần", "given": ["Thị", "Bình"], "text": "Trần Thị Bình"}],
        "gender": "female",
        "birthDate": "1990-03-07",
        "telecom": [{"system": "phone", "value": "0901234567"}],
        "address": [{"text": "45 Nguyễn Huệ, Phường Sài Gòn, TP. Hồ Chí Minh"}],
    }
    stored = system_a.create(patient, "Patient").resource
    resources["patient"], ids["patient"] = dict(stored.content or {}), stored.id
    subject = {"reference": f"Patient/{stored.id}"}
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT, "code": "AMB"},
        "subject": subject,
        "serviceProvider": {"reference": f"Organization/{ids['org_a']}"},
    }
    stored = system_a.create(encounter, "Encounter").resource
    resources["encounter"], ids["encounter"] = dict(stored.content or {}), stored.id
    condition = {
        "resourceType": "Condition",
        "code": {
            "coding": [{"system": ICD10, "code": "J06.9", "display": "Nhiễm trùng hô hấp trên cấp"}]
        },
        "subject": subject,
        "encounter": {"reference": f"Encounter/{ids['encounter']}"},
    }
    stored = system_a.create(condition, "Condition").resource
    resources["condition"], ids["condition"] = dict(stored.content or {}), stored.id
    standin = NationalStandIn(
        facilities={A: Account("LT-79001", SECRET, insurance_code=A)},
        doctors={"BS-0001": (Account("BS-0001", SECRET), "LT-79001")},
    )
    standin.start()
    return World(
        store,
        access_engine(store),
        platform,
        system_a,
        standin,
        clock,
        KeyEncryptionKey.generate(),
        ids,
        resources,
    )
