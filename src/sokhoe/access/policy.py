"""Who may see a patient's record: the rules in one place.

Every stored row carries the Patient whose compartment it belongs to (``patient_id``), so one
question decides any resource: may this caller see this patient? Shared resources (facilities,
practitioners, code systems: no patient) are visible to anyone signed in with the scope.

- The platform itself (a system client or administrator without a facility) sees everything.
- A citizen sees their own record and those of the children they are guardian of.
- A facility's staff and systems see a patient while the patient has a current relationship
  with the facility: registered there (the facility's record number is on the Patient), seen
  there (an Encounter at the facility) within :data:`RELATIONSHIP_WINDOW`, or granted access
  by the patient with a share code (an active Consent naming the facility).
- A clinician may open any record in an emergency by giving a reason (break-the-glass): it is
  allowed, and audited as such.
- Analysts see no identifiable record (only warehouse aggregates).
- A commune health worker sees the residents of their commune (home address).
Sensitive categories and guardianship build on this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sokhoe.access.consent import consent_grants
from sokhoe.access.principal import Principal
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.searchparams import registry
from sokhoe.mpi.identifiers import FACILITY, mrn_system
from sokhoe.registry.places import find_ward, resolve_province
from sokhoe.search.parse import SearchParser
from sokhoe.store.ports import FhirStore

RELATIONSHIP_WINDOW = timedelta(days=365)
"""How long after a visit the facility keeps access (configurable per deployment later)."""
BREAK_GLASS_ROLES = frozenset({"doctor", "nurse"})
NO_RECORD_ROLES = frozenset({"analyst", "insurance-appraiser"})
"""Roles with no access to clinical records (appraisers' claims access is in the guard)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    break_glass: bool = False


def is_platform(principal: Principal) -> bool:
    """Callers acting for the whole platform rather than one facility or person."""
    if principal.kind == "client":
        return principal.facility is None
    return principal.kind == "staff" and principal.role == "system-admin"


class Policy:
    """Decides patient access against the record store (relationships are data)."""

    def __init__(self, store: FhirStore, window: timedelta = RELATIONSHIP_WINDOW) -> None:
        self.store = store
        self.window = window

    def patient(
        self, principal: Principal, patient_id: str, break_glass: str | None = None
    ) -> Decision:
        """May ``principal`` see the record of ``patient_id``?"""
        if is_platform(principal):
            return Decision(True, "platform access")
        if principal.role in NO_RECORD_ROLES:
            return Decision(False, f"the {principal.role} role sees aggregates only")
        if principal.kind == "citizen":
            with self.store.begin() as tx:
                people = set(linked_patient_ids(tx, patient_id))
            if people & set(principal.patient_ids):
                return Decision(True, "own record or a ward's")
            return Decision(False, "a citizen sees only their own record and their children's")
        if principal.facility and self._related(principal.facility, patient_id):
            return Decision(True, f"patient of facility {principal.facility}")
        if principal.role == "commune-health-worker" and principal.commune:
            if self._resident(principal.commune, patient_id):
                return Decision(True, f"resident of commune {principal.commune}")
        if break_glass and break_glass.strip() and principal.role in BREAK_GLASS_ROLES:
            return Decision(True, f"break-the-glass: {break_glass.strip()}", break_glass=True)
        if break_glass and principal.role not in BREAK_GLASS_ROLES:
            return Decision(False, f"the {principal.role} role cannot break the glass")
        return Decision(
            False,
            f"Patient/{patient_id} has no current relationship with "
            f"{'facility ' + principal.facility if principal.facility else 'the caller'}; "
            "a clinician may break the glass with a reason",
        )

    def _resident(self, commune: str, patient_id: str) -> bool:
        """The patient's current home address is in ``commune`` (a ward/commune code)."""
        with self.store.begin() as tx:
            patient = tx.read("Patient", patient_id)
        for address in (patient.content or {}).get("address", []) if patient else []:
            if address.get("use") not in (None, "home") or "end" in address.get("period", {}):
                continue
            province = resolve_province(str(address.get("state", "")))
            ward = find_ward(province, str(address.get("city", ""))) if province else None
            if ward is not None and ward.code == commune:
                return True
        return False

    def _related(self, facility: str, patient_id: str) -> bool:
        since = datetime.now(UTC) - self.window
        with self.store.begin() as tx:
            people = linked_patient_ids(tx, patient_id)
            system = mrn_system(facility)
            for person in tx.read_many([("Patient", p) for p in people]):
                for ident in (person.content or {}).get("identifier", []):
                    if ident.get("system") == system and ident.get("use") != "old":
                        return True
            parser = SearchParser(registry(), "", strict=True)
            if consent_grants(parser, tx, people, facility, datetime.now(UTC)):
                return True
            query = parser.parse(
                "Encounter",
                [
                    ("service-provider:Organization.identifier", f"{FACILITY}|{facility}"),
                    ("date", f"ge{since.date().isoformat()}"),
                ],
            )
            query.patient_ids = people
            return bool(tx.search_ids(query, limit=1))
