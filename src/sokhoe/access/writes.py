"""Deciding one write on what it writes: the new version and the version it replaces.

Every write path (REST, bundle entry, operation, HL7, import, sync, page) ends in
``StoreSession.write(items)`` on a session the door opened, after references were resolved and
versions numbered; the door's session calls :func:`authorise` there for each item. So the
decision is taken on the resource as it will be stored — its patient compartment, and the
compartment and owner of the version it replaces (a deleted one too) — never on URLs or
``fullUrl``s a client chose.

Some content belongs to the server and is written only by the operation that owns it (an
operation session names what it owns): privacy Consents (the consent operations), the links
between merged records and the patient index's Provenance (``$merge``, ``$unmerge``), the
patient index's review Tasks (decided by ``$resolve-review``), Subscriptions (their
registration, which keeps the owner and checks the endpoint), AuditEvents (the audit log is
not a resource anyone writes) and signature Provenances (the signing operations; the versions
they sign are frozen, ``access/signed.py``) and the drug catalogue (its Medications and the
value sets that version it: published at start-up and by ``sokhoe catalogue import``, so that
no client can quietly change what a prescription's drug code means) and prescriptions (a
``MedicationRequest`` carrying a prescription code, and the checks' ``DetectedIssue``s: only
``$prescribe`` issues them, so a code always stands for a checked prescription), what a
pharmacy handed over against one (every ``MedicationDispense``: only ``$dispense`` writes it,
in the transaction that counts it against the prescription, so no dispense exists that the
prescription's remaining quantity does not know about), and the Tasks the national
prescription outbox leaves when the national system refuses a prescription
(``prescribing/national/outbox.py``), and a citizen's concern about an access to their record
(a review ``Task`` only ``$report-concern`` opens, addressed to the facility that made the
access: that facility may then change its state, and nothing else of it). The
shared registries (facilities, places, practitioners, code systems, catalogues) are written by
registry administrators only: a facility that could edit another's Organization could claim its
patients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sokhoe.access.care import RECORD, Standing
from sokhoe.access.principal import Principal
from sokhoe.access.rights import NO_RECORD_ROLES, is_platform, keeps_registries
from sokhoe.access.scopes import scopes_allow
from sokhoe.access.signed import is_signature
from sokhoe.errors import Forbidden
from sokhoe.fhir.patient_links import MERGE_LINKS
from sokhoe.fhir.references import codings
from sokhoe.store.ports import StoredResource, WriteItem

REGISTRY_TYPES = frozenset(
    {
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "NamingSystem",
        "CodeSystem",
        "ValueSet",
        "ConceptMap",
        "StructureDefinition",
        "SearchParameter",
        "OperationDefinition",
        "CapabilityStatement",
        "ImplementationGuide",
        "Medication",
        "MedicationKnowledge",
        "ActivityDefinition",
        "PlanDefinition",
        "ChargeItemDefinition",
        "ObservationDefinition",
        "SpecimenDefinition",
        "Questionnaire",
        "Library",
        "Measure",
    }
)
"""Shared registries and catalogues: one copy for every facility, kept by the registry."""

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
MPI_TASKS = "https://fhir.sokhoe.vn/CodeSystem/mpi-task"
MPI_ACTIVITY = "https://fhir.sokhoe.vn/CodeSystem/mpi-activity"
DRUG_CATALOGUE_TAG = "https://fhir.sokhoe.vn/CodeSystem/drug-catalogue"
"""``meta.tag`` of the drug catalogue's resources (code: the catalogue's source)."""
DRUG_CODES = "https://fhir.sokhoe.vn/CodeSystem/drug"
"""The catalogue's code systems: this one (the reference list) and ``DRUG_CODES/<source>``."""

PRESCRIPTION_CODES = "https://fhir.sokhoe.vn/sid/ma-don-thuoc"
"""``MedicationRequest.groupIdentifier`` system of an issued prescription (``prescribing/code``)."""
PRESCRIBING_CHECKS = "https://fhir.sokhoe.vn/CodeSystem/prescribing-check"
"""``DetectedIssue.code`` system of the prescribing checks' findings (``prescribing/issue``)."""
NATIONAL_RX_TASKS = "https://fhir.sokhoe.vn/CodeSystem/national-rx-task"
ACCESS_CONCERNS = "https://fhir.sokhoe.vn/CodeSystem/access-concern"
"""``Task.code`` system of a citizen's concern about an access to their record."""
CONCERN_STATE = frozenset(
    {"status", "statusReason", "businessStatus", "note", "output", "lastModified", "meta"}
)
"""What of a concern Task the facility it is addressed to may change: how far its review got."""

OWNERS = {
    "privacy-consent": "the consent operations ($share, $redeem-share, $restrict)",
    "patient-link": "$merge and $unmerge",
    "mpi-provenance": "the patient index ($merge, $unmerge, $resolve-review)",
    "review-task": "the patient index ($check-in, HL7, matching; decided by $resolve-review)",
    "subscription": "Subscription registration (POST/PUT /fhir/Subscription)",
    "audit-event": "the audit log itself (read it with $access-log)",
    "signature": "the signing operations (Encounter/$sign, amendments)",
    "drug-catalogue": "the drug catalogue's publication (at start-up, sokhoe catalogue import)",
    "prescription": "MedicationRequest/$prescribe (and its cancel-and-replace, and $dispense)",
    "dispensing": "MedicationDispense/$dispense",
    "national-rx-task": "the national prescription outbox (a refusal by the national system)",
    "access-concern": "$report-concern (the facility it names changes only its state)",
}
"""Server-owned content -> what alone writes it (said in the refusal)."""


def _kind_of(rtype: str, content: dict[str, Any] | None) -> str | None:
    if content is None:
        return None
    if rtype == "Consent":
        if any(c.get("system") == CONSENT_SCOPE for c in codings(content.get("scope"))):
            if any(c.get("code") == "patient-privacy" for c in codings(content.get("scope"))):
                return "privacy-consent"
        if any(c.get("code") == "59284-0" for c in codings(content.get("category"))):
            return "privacy-consent"
    if rtype == "Task":  # the sync's conflict Tasks are decided by people: not in here
        if any(c.get("system") == MPI_TASKS for c in codings(content.get("code"))):
            return "review-task"
        if any(c.get("system") == NATIONAL_RX_TASKS for c in codings(content.get("code"))):
            return "national-rx-task"
        if any(c.get("system") == ACCESS_CONCERNS for c in codings(content.get("code"))):
            return "access-concern"
    if rtype == "Provenance":
        if any(c.get("system") == MPI_ACTIVITY for c in codings(content.get("activity"))):
            return "mpi-provenance"
        if is_signature(content):
            return "signature"
    if rtype == "Subscription":
        return "subscription"
    if rtype == "AuditEvent":
        return "audit-event"
    if rtype in ("Medication", "ValueSet") and _in_drug_catalogue(content):
        return "drug-catalogue"
    if (
        rtype == "MedicationRequest"
        and (content.get("groupIdentifier") or {}).get("system") == PRESCRIPTION_CODES
    ):
        return "prescription"
    if rtype == "MedicationDispense":
        return "dispensing"
    if rtype == "DetectedIssue" and any(
        c.get("system") == PRESCRIBING_CHECKS for c in codings(content.get("code"))
    ):
        return "prescription"
    return None


def _in_drug_catalogue(content: dict[str, Any]) -> bool:
    """Tagged as the catalogue's, or (a Medication) coded in one of its code systems."""
    if any(
        t.get("system") == DRUG_CATALOGUE_TAG for t in (content.get("meta") or {}).get("tag", [])
    ):
        return True
    return content.get("resourceType") == "Medication" and any(
        c.get("system") == DRUG_CODES or str(c.get("system", "")).startswith(DRUG_CODES + "/")
        for c in codings(content.get("code"))
    )


def _links(content: dict[str, Any] | None) -> list[tuple[str, str]]:
    return sorted(
        (str(link.get("type")), str((link.get("other") or {}).get("reference", "")))
        for link in (content or {}).get("link", [])
        if isinstance(link, dict) and link.get("type") in MERGE_LINKS
    )


def server_owned(item: WriteItem, current: StoredResource | None) -> str | None:
    """The kind of server-owned content this write creates, changes or removes, if any."""
    previous = current.content if current is not None and not current.deleted else None
    for content in (item.content, previous):
        kind = _kind_of(item.resource_type, content)
        if kind is not None:
            return kind
    if item.resource_type == "Patient" and _links(item.content) != _links(previous):
        return "patient-link"
    return None


def interaction_of(item: WriteItem, current: StoredResource | None) -> str:
    if item.content is None:
        return "delete"
    if current is None or current.deleted:
        return "create"
    return "update"


@dataclass
class Rules:
    """What one session may write."""

    principal: Principal
    standing: Callable[[str], Standing | None]
    """The caller's standing on a patient (from the care index, before this transaction)."""
    owns: frozenset[str] = frozenset()
    """Server-owned kinds this session's operation writes."""
    operation: str | None = None
    """An operation session: its code decided which patients it touches (the operation was
    authorised as a whole first), so only scopes... are not checked per item again."""
    created: set[str] = field(default_factory=set)
    """Patients created in this transaction by this caller."""


def authorise(item: WriteItem, current: StoredResource | None, rules: Rules) -> None:
    """Raise :class:`Forbidden` unless ``rules`` allow writing ``item`` over ``current``."""
    principal = rules.principal
    rtype, where = item.resource_type, f"{item.resource_type}/{item.id}"
    interaction = interaction_of(item, current)
    kind = server_owned(item, current)
    if kind == "access-concern" and kind not in rules.owns and _answers(item, current, rules):
        if not scopes_allow(principal.scopes, rtype, interaction):
            raise Forbidden(f"The token's scopes do not allow {interaction} on {rtype}")
        return  # the facility the concern is addressed to records how its review went
    if kind is not None and kind not in rules.owns:
        raise Forbidden(f"{where}: {_what(kind)} is written only by {OWNERS[kind]}")
    if rtype in REGISTRY_TYPES and not keeps_registries(principal):
        raise Forbidden(
            f"{where}: {rtype} is a shared registry, written only by registry administrators"
        )
    if rules.operation is None and not scopes_allow(principal.scopes, rtype, interaction):
        raise Forbidden(
            f"The token's scopes do not allow {interaction} on {rtype} "
            f"(granted: {' '.join(sorted(principal.scopes)) or 'none'})"
        )
    if is_platform(principal) or rules.operation is not None:
        if item.patient_id is not None and principal.role in NO_RECORD_ROLES:
            raise Forbidden(f"The {principal.role} role does not write patient records")
        if rtype == "Patient" and current is None and item.content is not None:
            rules.created.add(item.id)
        return
    if principal.role in NO_RECORD_ROLES and (
        item.patient_id is not None or (current is not None and current.patient_id is not None)
    ):
        raise Forbidden(f"The {principal.role} role does not write patient records")
    if principal.kind == "citizen":
        _citizen(item, current, principal, where)
        return
    _facility(item, current, rules, where)


def _answers(item: WriteItem, current: StoredResource | None, rules: Rules) -> bool:
    """Whether ``item`` is the facility a concern is addressed to changing only its state."""
    principal = rules.principal
    if current is None or current.deleted or current.content is None or item.content is None:
        return False
    if principal.kind == "citizen" or not principal.facility:
        return False
    if current.owner != principal.facility or item.patient_id != current.patient_id:
        return False

    def kept(content: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in content.items() if k not in CONCERN_STATE}

    return kept(item.content) == kept(current.content)


def _what(kind: str) -> str:
    return {
        "privacy-consent": "A privacy Consent",
        "patient-link": "Patient.link (merged records)",
        "mpi-provenance": "A patient-index Provenance",
        "review-task": "A review Task",
        "subscription": "A Subscription",
        "audit-event": "An AuditEvent",
        "signature": "A signature Provenance",
        "drug-catalogue": "The drug catalogue",
        "prescription": "A prescription (coded MedicationRequest) or its checks",
        "dispensing": "A MedicationDispense",
        "national-rx-task": "A national prescription system Task",
        "access-concern": "A citizen's concern about an access",
    }[kind]


def _citizen(
    item: WriteItem, current: StoredResource | None, principal: Principal, where: str
) -> None:
    own = set(principal.patient_ids)
    for patient in (item.patient_id, current.patient_id if current else None):
        if patient is not None and patient not in own:
            raise Forbidden(f"{where}: a citizen writes only into their own record")
    if item.patient_id is None and (current is None or current.patient_id is None):
        raise Forbidden(f"{where}: a citizen writes only into their own record")


def _facility(item: WriteItem, current: StoredResource | None, rules: Rules, where: str) -> None:
    principal = rules.principal
    facility = principal.facility
    if current is not None:
        old = current.patient_id
        if old is None:
            if facility is None or current.owner != facility:
                owner = f"facility {current.owner}" if current.owner else "the platform"
                raise Forbidden(f"{where} belongs to {owner}; only it may change it")
        elif item.resource_type == "Patient":
            found = rules.standing(old)
            if found is None or found.level != RECORD:
                raise Forbidden(
                    f"{where}: changing a person's record needs a current relationship with "
                    f"them (their consent, their presence or your own record of them)"
                )
        elif current.owner is not None:
            if current.owner != facility:
                raise Forbidden(
                    f"{where} was written by facility {current.owner}; only it may change it"
                )
        else:
            found = rules.standing(old)
            if found is None or found.level != RECORD:
                raise Forbidden(f"Patient/{old} has no current relationship with {_who(facility)}")
    patient = item.patient_id
    if patient is None:
        return
    if item.resource_type == "Patient" and current is None:
        rules.created.add(item.id)
        return
    if patient in rules.created:
        return
    if rules.standing(patient) is None:
        raise Forbidden(
            f"Patient/{patient} has no current relationship with {_who(facility)}; "
            "check them in, or ask for their consent"
        )


def _who(facility: str | None) -> str:
    return f"facility {facility}" if facility else "the caller"
