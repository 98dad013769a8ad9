"""A small world for the clinic pages' tests: a commune station (A), two hospitals (B, C) with
rooms and staff, and a person with a blood glucose measured at B nine days ago; C has never
seen them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
from fastapi import FastAPI

from sokhoe.access.accounts import enable_totp
from sokhoe.access.guard import GuardedRepository
from sokhoe.access.passwords import password_hasher
from sokhoe.clinic.setup import add_rooms, add_staff, set_bank_account
from sokhoe.clinic.vietqr import BankAccount
from sokhoe.config import Settings
from sokhoe.fhir.resources import format_instant
from sokhoe.mpi.identifiers import CCCD, FACILITY
from sokhoe.store.sql import SqlStore
from sokhoe.web.app import create_app
from tests.conftest import FAST_PASSWORDS
from tests.prepared import prepared

A, B, C = "01001", "01002", "01003"
PASSWORD = "clinic-test-pass-1"
CCCD_NUMBER = "001085012345"
QR = (
    f"{CCCD_NUMBER}|012345678|Nguyễn Văn An|15031985|Nam|"
    "Số 12, Phường Hoàn Kiếm, Thành phố Hà Nội|01022021"
)
PHONE = "0912345678"
BANK = BankAccount("970415", "113366668888")


@dataclass
class World:
    app: FastAPI
    settings: Settings
    patient_id: str
    rooms: list[str]
    totp_secret: str
    """bs.an's authenticator secret (doctors sign with it)."""

    @property
    def platform(self) -> GuardedRepository:
        repo: GuardedRepository = self.app.state.repository
        return repo


def _org(code: str, name: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"org-{code}",
        "identifier": [{"system": FACILITY, "value": code}],
        "name": name,
    }


def _settings(folder: Path, base_url: str) -> Settings:
    return Settings(
        **FAST_PASSWORDS,
        base_url=base_url,
        database_url=f"sqlite:///{folder / 'clinic.db'}",
        var_dir=folder,
        facility_dir=folder / "facilities",
    )


def make_world(folder: Path, base_url: str, store: SqlStore | None = None) -> World:
    """The world on a SQLite file in ``folder``, or on ``store`` (PostgreSQL).

    On SQLite the world is built once per test process and each call gets a copy of its
    folder (``tests/prepared.py``): the same database as a build, in milliseconds."""
    settings = _settings(folder, base_url)
    if store is not None:
        app = create_app(settings, store)
        rooms, secret = _populate(app, settings)
        return World(app, settings, "p-an", rooms, secret)
    rooms, secret = prepared(("clinic", base_url), folder, lambda t: _build(t, base_url))
    return open_world(folder, base_url, rooms, secret)


def open_world(folder: Path, base_url: str, rooms: list[str], secret: str) -> World:
    """The app over a world already written in ``folder`` (a copy of a prepared one)."""
    settings = _settings(folder, base_url)
    app = create_app(settings, SqlStore(settings.database_url, migrate_schema=False))
    return World(app, settings, "p-an", rooms, secret)


def _build(folder: Path, base_url: str) -> tuple[list[str], str]:
    """The world written into ``folder``, its store closed; (rooms at A, bs.an's secret)."""
    settings = _settings(folder, base_url)
    store = SqlStore(settings.database_url)
    try:
        return _populate(create_app(settings, store), settings)
    finally:
        store.close()


def _populate(app: FastAPI, settings: Settings) -> tuple[list[str], str]:
    """Writes the world through ``app``; (rooms at A, bs.an's authenticator secret)."""
    repo: GuardedRepository = app.state.repository
    for code, name in (
        (A, "Trạm Y tế Phường Hoàn Kiếm"),
        (B, "Bệnh viện Đa khoa Đống Đa"),
        (C, "Bệnh viện Tim Hà Nội"),
    ):
        repo.update(_org(code, name), "Organization", f"org-{code}")
    rooms = add_rooms(repo, A, ["Phòng khám 1", "Phòng khám 2"])
    add_rooms(repo, B, ["Phòng khám B"])
    add_rooms(repo, C, ["Phòng khám Tim mạch"])
    engine = app.state.tokens.engine
    hasher = password_hasher(settings)
    add_staff(
        engine,
        A,
        PASSWORD,
        [("bs.an", "doctor", "BS. Trần Thị Bình"), ("tieptan", "receptionist", "Lê Văn Cường")],
        hasher=hasher,
    )
    add_staff(engine, B, PASSWORD, [("bs.b", "doctor", "BS. Phạm Văn Dũng")], hasher=hasher)
    add_staff(engine, C, PASSWORD, [("bs.c", "doctor", "BS. Hoàng Thị Em")], hasher=hasher)
    secret = pyotp.parse_uri(enable_totp(engine, "bs.an")).secret
    set_bank_account(repo, A, BANK)
    # the person, known at B, with a glucose there nine days ago
    patient = {
        "resourceType": "Patient",
        "id": "p-an",
        "identifier": [{"system": CCCD, "value": CCCD_NUMBER}],
        "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}],
        "gender": "male",
        "birthDate": "1985-03-15",
        "telecom": [{"system": "phone", "value": PHONE, "use": "mobile"}],
    }
    repo.update(patient, "Patient", "p-an")
    then = datetime.now(UTC) - timedelta(days=9)
    enc = {
        "resourceType": "Encounter",
        "id": "enc-b",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/p-an"},
        "period": {"start": format_instant(then), "end": format_instant(then)},
        "serviceProvider": {
            "reference": f"Organization/org-{B}",
            "display": "Bệnh viện Đa khoa Đống Đa",
        },
    }
    repo.update(enc, "Encounter", "enc-b")
    glucose = {
        "resourceType": "Observation",
        "id": "glu-b",
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
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]
        },
        "subject": {"reference": "Patient/p-an"},
        "encounter": {"reference": "Encounter/enc-b"},
        "effectiveDateTime": format_instant(then),
        "valueQuantity": {"value": 7.8, "unit": "mmol/L"},
    }
    repo.update(glucose, "Observation", "glu-b")
    return rooms, secret
