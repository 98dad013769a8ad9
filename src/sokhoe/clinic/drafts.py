"""Drafts of a visit: saved as the clinician types, part of the record only once signed.

A draft belongs to the facility whose visit it is (the Encounter's ``serviceProvider``), and
only that facility's staff read or write it. The check goes through the door: the caller must
be able to read the Encounter (the door confines reads), and the Encounter must be their
facility's — so another facility's doctor who knows an encounter id gets the same "not found"
as for an id that does not exist, and no draft is ever listed across facilities (every query
here is keyed by the caller's facility).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import read
from sokhoe.errors import NotFound
from sokhoe.fhir.references import reference_id
from sokhoe.interop.claims.sources import find_facility
from sokhoe.messages import Message
from sokhoe.store.sql.clinic_schema import clinic_draft


@dataclass(frozen=True)
class Visit:
    """An Encounter of the caller's facility, as the door let the caller read it."""

    encounter: dict[str, Any]
    patient_id: str
    facility: str

    @property
    def id(self) -> str:
        return str(self.encounter["id"])


def _not_ours(encounter_id: str) -> Message:
    return Message("Encounter/%(id)s is not a visit of your facility", id=encounter_id)


def own_visit(repo: GuardedRepository, encounter_id: str) -> Visit:
    """The caller's facility's visit ``encounter_id``; :class:`NotFound` otherwise (whether
    it does not exist, is not visible or is another facility's)."""
    facility = repo.principal.facility
    enc = read(repo, "Encounter", encounter_id)
    if enc is None or facility is None:
        raise NotFound(_not_ours(encounter_id))
    org = find_facility(repo, facility)
    patient = reference_id(enc.get("subject"), "Patient")
    if reference_id(enc.get("serviceProvider"), "Organization") != org.id or patient is None:
        raise NotFound(_not_ours(encounter_id))
    return Visit(enc, patient, facility)


def load(engine: Engine, visit: Visit) -> dict[str, Any]:
    """The draft of ``visit`` (from :func:`own_visit`; empty when none was saved)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(clinic_draft.c.content).where(
                clinic_draft.c.encounter_id == visit.id,
                clinic_draft.c.facility == visit.facility,
            )
        ).first()
    return dict(row[0]) if row is not None else {}


def save(engine: Engine, visit: Visit, author: str, content: dict[str, Any], now: datetime) -> None:
    """Keep ``content`` as the draft of ``visit`` (from :func:`own_visit`), replacing the
    previous one."""
    values = {
        "encounter_id": visit.id,
        "facility": visit.facility,
        "patient_id": visit.patient_id,
        "author": author,
        "content": content,
        "updated": now,
    }
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    statement = insert(clinic_draft).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[clinic_draft.c.encounter_id],
        set_={k: statement.excluded[k] for k in ("author", "content", "updated")},
        where=clinic_draft.c.facility == visit.facility,
    )
    with engine.begin() as conn:
        conn.execute(statement)


def discard(engine: Engine, facility: str, encounter_id: str) -> None:
    """Drop the draft once its content is in the record."""
    with engine.begin() as conn:
        conn.execute(
            delete(clinic_draft).where(
                clinic_draft.c.encounter_id == encounter_id,
                clinic_draft.c.facility == facility,
            )
        )


def facility_drafts(engine: Engine, facility: str) -> set[str]:
    """The visits of ``facility`` with a draft (the queue's "to sign" count uses them)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(clinic_draft.c.encounter_id).where(clinic_draft.c.facility == facility)
        )
        return {str(r[0]) for r in rows}


__all__ = ["Visit", "discard", "facility_drafts", "load", "own_visit", "save"]
