"""A caller's :class:`~sokhoe.store.ports.Confinement` as a Python test on one resource.

The reference statement of ``store/sql/confine.py`` for the memory store: each branch mirrors
one clause of the SQL, so the contract tests can hold both to the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sokhoe.store.ports import CareRow, Confinement, Restriction, StoredResource


def current(row: CareRow, access: Confinement) -> bool:
    return row.since <= access.now and (row.until is None or row.until > access.now)


@dataclass(frozen=True)
class Judge:
    """Decides visibility for one caller over one snapshot of the care index."""

    access: Confinement
    care: Mapping[str, Sequence[CareRow]]
    """patient id -> its rows."""
    restrictions: Mapping[str, Sequence[Restriction]]

    def _granted(self, patient: str) -> bool:
        grantees = set(self.access.grantees)
        return any(
            r.grantee in grantees and r.level == "record" and current(r, self.access)
            for r in self.care.get(patient, ())
        )

    def _hidden(self, res: StoredResource, patient: str) -> bool:
        if not res.labels:
            return False
        labels = set(res.labels.split(","))
        rows = self.restrictions.get(patient, ())
        restricted = {x.label for x in rows if x.facility == "" and x.label in labels}
        if self.access.facility:
            restricted -= {x.label for x in rows if x.facility == self.access.facility}
        if not restricted:
            return False
        grantees = set(self.access.grantees)
        glass = any(
            r.grantee in grantees and r.all_labels and current(r, self.access)
            for r in self.care.get(patient, ())
        )
        return not glass

    def __call__(self, res: StoredResource) -> bool:
        access = self.access
        if access.readable is not None and res.resource_type not in access.readable:
            return False
        patient = res.patient_id
        if patient is None:
            return access.shared
        seen = (
            access.all_patients
            or patient in access.patients
            or (bool(access.grantees) and self._granted(patient))
        )
        if access.types is not None:
            seen = seen and res.resource_type in access.types
        if access.restrictions and seen:
            hidden = self._hidden(res, patient) and patient not in access.patients
            seen = not hidden
        if access.owner and res.owner == access.owner:
            return True
        return seen
