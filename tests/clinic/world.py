"""A small clinic for the signing tests: facility A's visit (an Encounter, an Observation and a
Condition written by A's system) for one patient, A's doctor with an authenticator app and a
development certificate, and a doctor of facility B."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import Engine, select, update

from sokhoe.access.accounts import ROLE_SCOPES, create_user, enable_totp
from sokhoe.access.db import access_engine
from sokhoe.access.guard import GuardedRepository, platform_repository
from sokhoe.access.principal import Principal, system_principal
from sokhoe.clinic.signing import Pkcs12Signer, TotpConfirmation
from sokhoe.mpi.identifiers import FACILITY
from sokhoe.store import FhirStore, MemoryStore
from sokhoe.store.sql import SqlStore
from sokhoe.store.sql.schema import resource, resource_history
from tests.conftest import BASE, FAST_HASHER

A, B = "79001", "01002"
PASSWORD = "mật-khẩu-dài-2026"
P12_PASSWORD = "mật-khẩu-chứng-thư"
DOCTOR_A, DOCTOR_B = "bs.an", "bs.binh"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@dataclass
class Clinic:
    store: FhirStore
    engine: Engine
    platform: GuardedRepository
    system_a: GuardedRepository
    doctor_a: GuardedRepository
    doctor_b: GuardedRepository
    secret: str
    p12: Path
    ids: dict[str, str]

    def code(self, offset: int = 0) -> str:
        """Doctor A's authenticator code of the current time step (+ ``offset`` steps)."""
        totp = pyotp.TOTP(self.secret)
        return totp.at(self.platform.clock().timestamp() + offset * totp.interval)

    def totp(self, offset: int = 0, code: str | None = None) -> TotpConfirmation:
        """Doctor A's confirmation with ``code``, or the code of the step (+ ``offset``)."""
        return TotpConfirmation(self.engine, DOCTOR_A, code or self.code(offset))

    def pkcs12(self, account: str = DOCTOR_A) -> Pkcs12Signer:
        return Pkcs12Signer.from_file(self.p12, P12_PASSWORD, account=account)

    def snapshot(self) -> tuple[int, list[tuple[str, str, int]]]:
        """Every version of every resource: a refused write changes nothing here."""
        with self.store.begin() as tx:
            found, total = tx.history(None, None, None, 100_000, 0)
        return total, sorted((r.resource_type, r.id, r.version_id) for r in found)

    def content(self, rtype: str, rid: str) -> dict[str, Any]:
        with self.store.begin() as tx:
            found = tx.read(rtype, rid)
        assert found is not None and found.content is not None
        return found.content


def staff(engine: Engine, username: str, role: str, facility: str) -> Principal:
    create_user(engine, username, PASSWORD, role, f"BS. {username}", facility, hasher=FAST_HASHER)
    return Principal("staff", username, f"BS. {username}", role, facility, scopes=ROLE_SCOPES[role])


def _visit(a: GuardedRepository, org_a: str) -> dict[str, str]:
    patient = a.create(
        {
            "resourceType": "Patient",
            "identifier": [{"system": f"https://fhir.sokhoe.vn/sid/mrn/{A}", "value": "BN001"}],
            "name": [{"family": "Trần", "given": ["Thị Bình"]}],
        },
        "Patient",
    ).resource.id
    subject = {"reference": f"Patient/{patient}"}
    encounter = a.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": ACT, "code": "AMB"},
            "subject": subject,
            "serviceProvider": {"reference": f"Organization/{org_a}"},
        },
        "Encounter",
    ).resource.id
    visit = {"reference": f"Encounter/{encounter}"}
    obs = a.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": subject,
            "encounter": visit,
            "valueQuantity": {"value": 72.5, "unit": "/min"},
        },
        "Observation",
    ).resource.id
    condition = a.create(
        {
            "resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J06.9"}]},
            "subject": subject,
            "encounter": visit,
        },
        "Condition",
    ).resource.id
    return {"patient": patient, "encounter": encounter, "obs": obs, "condition": condition}


def make_clinic(store: FhirStore, p12: Path) -> Clinic:
    platform = platform_repository(store, f"{BASE}/fhir")
    orgs = {}
    for code, name in ((A, "Bệnh viện A"), (B, "Bệnh viện B")):
        org = {
            "resourceType": "Organization",
            "identifier": [{"system": FACILITY, "value": code}],
            "name": name,
        }
        orgs[code] = platform.create(org, "Organization").resource.id
    system_a = platform.for_caller(
        system_principal("his-a", "HIS A", frozenset({"system/*.cruds"}), A)
    )
    ids = _visit(system_a, orgs[A])
    ids["org_a"] = orgs[A]
    engine = access_engine(store)
    doctor_a = platform.for_caller(staff(engine, DOCTOR_A, "doctor", A))
    doctor_b = platform.for_caller(staff(engine, DOCTOR_B, "doctor", B))
    secret = pyotp.parse_uri(enable_totp(engine, DOCTOR_A)).secret
    return Clinic(store, engine, platform, system_a, doctor_a, doctor_b, secret, p12, ids)


def tamper(store: FhirStore, rtype: str, rid: str, version: int, change: dict[str, Any]) -> None:
    """Change a stored version in place, behind the door's back (as someone with the database
    would): only a signature can tell."""
    if isinstance(store, MemoryStore):
        table = store._tables[rtype]
        versions = list(table.versions[rid])
        for i, v in enumerate(versions):
            if v.version_id == version:
                versions[i] = replace(v, content={**(v.content or {}), **change})
                if table.current[rid].version_id == version:
                    table.current[rid] = versions[i]
        table.versions[rid] = tuple(versions)
        return
    assert isinstance(store, SqlStore)
    with store.writer.begin() as conn:
        for table in (resource_history, resource):
            where = [table.c.resource_type == rtype, table.c.id == rid]
            where.append(table.c.version_id == version)
            row = conn.execute(select(table.c.content).where(*where)).first()
            if row is not None and row.content is not None:  # the current JSON: resource only
                content = {**row.content, **change}
                conn.execute(update(table).where(*where).values(content=content))
