"""The whole record of the profile shown, read the way ``Patient/$everything`` reads it.

The health book shows a summary drawn from every part of the record (allergies, problems,
medicines, the latest of each vital sign, every visit, prescription and study). Reading it
section by section costs a search and an audit row each; the record of one person is a few
hundred resources, so the book reads it whole, with the door's ``everything`` (the patient's
compartment and every record merged with it, confined to what the caller may see, audited as
one access), page by page, and then the facilities it names with one or two searches. No read
per item.
See: https://hl7.org/fhir/R4/patient-operation-everything.html
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.portal.sources import Facilities, facilities
from sokhoe.store.ports import StoredResource

PAGE: Final = 1000
"""Resources per page of ``everything`` (the repository's largest page)."""


@dataclass
class Record:
    """The record of one person as the caller may see it."""

    patient_id: str
    resources: list[StoredResource]
    total: int
    facilities: Facilities
    _by_type: dict[str, list[StoredResource]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[StoredResource]] = defaultdict(list)
        for stored in self.resources:
            if stored.content is not None:
                grouped[stored.resource_type].append(stored)
        self._by_type = dict(grouped)

    def of(self, resource_type: str) -> list[StoredResource]:
        return self._by_type.get(resource_type, [])

    @property
    def patient(self) -> dict[str, Any] | None:
        own = [p for p in self.of("Patient") if p.id == self.patient_id]
        return own[0].content if own else None


BOOK_TYPES: Final = (
    "Patient",
    "AllergyIntolerance",
    "Condition",
    "MedicationRequest",
    "Observation",
    "Encounter",
    "ImagingStudy",
    "Immunization",
    "Appointment",
    "Provenance",
)
"""What the book shows (Provenance: which visits are signed). Visit summaries, questionnaire
answers and the rest are read by the pages that show them."""


def everything(
    repo: GuardedRepository, patient_id: str, types: Sequence[str] | None = None
) -> list[StoredResource]:
    """Every resource of ``patient_id``'s record the caller may see (of ``types``), all pages
    of ``$everything``. :class:`~sokhoe.errors.NotFound` when there is no such record,
    :class:`~sokhoe.errors.Forbidden` when it is not the caller's to see (the door decides)."""
    wanted = list(types) if types else None
    found, total = repo.everything(patient_id, since=None, types=wanted, count=PAGE, offset=0)
    resources = list(found)
    while len(found) == PAGE and len(resources) < total:
        found, total = repo.everything(
            patient_id, since=None, types=wanted, count=PAGE, offset=len(resources)
        )
        resources.extend(found)
    return resources


def read_record(
    repo: GuardedRepository, patient_id: str, types: Sequence[str] | None = BOOK_TYPES
) -> Record:
    """The record of ``patient_id`` (:func:`everything`) with the facilities it names."""
    resources = everything(repo, patient_id, types)
    return Record(patient_id, resources, len(resources), facilities(repo, resources))


__all__ = ["BOOK_TYPES", "PAGE", "Record", "everything", "read_record"]
