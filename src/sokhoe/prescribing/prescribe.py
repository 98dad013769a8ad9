"""Issuing a prescription: check every line, then write it whole or not at all.

A prescription is written inside a visit (the ``Encounter`` of the prescriber's facility) for
its patient. Each line names a catalogue medicine, its dose per intake, intakes per day and
days; the quantity is what the prescriber gives, or dose × intakes × days. The checks
(``checks.py``) run against the record as the prescriber may read it; a blocking finding, or a
warning without the prescriber's reason to override it, refuses the whole prescription with
every problem listed. Otherwise one transaction writes one ``MedicationRequest`` per line
sharing the new code (``groupIdentifier``), valid for 5 days from issue, and a
``DetectedIssue`` per finding linked from the lines it concerns. Prescriptions are the
platform's own content: only this operation writes them (``access/writes.py``).
See: https://hl7.org/fhir/R4/medicationrequest.html
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.access.accounts import practitioner_of
from sokhoe.access.guard import GuardedRepository
from sokhoe.errors import FhirError, Forbidden, InvalidRequest, Issue, NotFound
from sokhoe.fhir.references import codings, reference_id
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.interop.claims.sources import find_facility
from sokhoe.prescribing.cancel import OWNS, cancel_lines
from sokhoe.prescribing.catalogue import ATC_SYSTEM
from sokhoe.prescribing.checks import Finding, Findings, Line, check, kind_of
from sokhoe.prescribing.code import CODE_SYSTEM, Kind, new_code, normalise
from sokhoe.prescribing.context import (
    FACILITY_EXTENSION,
    CatalogueIndex,
    Medicine,
    catalogue_index,
    gather,
    medicine,
    visit_diagnoses,
)
from sokhoe.prescribing.issue import detected_issue
from sokhoe.prescribing.national.mapping import PrescriptionSources
from sokhoe.prescribing.national.outbox import enqueue, prescription_message
from sokhoe.prescribing.rules import rules_on
from sokhoe.registry.facilities import LEVEL_SYSTEM

log = logging.getLogger("sokhoe.prescribing")
PRESCRIBER_ROLES: Final = frozenset({"doctor", "system"})
"""Who issues prescriptions: doctors, and a facility's connected system (which names the
prescriber in each line's ``requester``)."""
WITH_BEDS: Final = frozenset({"central", "provincial", "regional"})
"""Facility levels with inpatient beds (narcotics may be prescribed there only)."""
BEDS_EXTENSION: Final = "https://fhir.sokhoe.vn/StructureDefinition/inpatient-beds"
"""An Organization's number of inpatient beds, when the registry knows it (wins over level)."""
UCUM: Final = "http://unitsofmeasure.org"
AGENT_TYPES: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
CLIENT_SYSTEM: Final = "https://fhir.sokhoe.vn/sid/client"
"""Identifier system of connected systems (their OAuth client id)."""
_CODE_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class Ordered:
    """One line as asked: the MedicationRequest given, its medicine, its numbers."""

    index: int
    request: dict[str, Any]
    medicine: Medicine
    per_dose: Decimal | None
    per_day: Decimal | None
    days: int
    quantity: Decimal
    override: str = ""

    def line(self) -> Line:
        unit = _dose(self.request)[1]
        return Line(
            self.index,
            self.medicine.drug,
            self.days,
            self.per_dose,
            self.per_day,
            unit,
            self.override,
        )


@dataclass
class Issued:
    code: str
    kind: Kind
    requests: list[dict[str, Any]]
    issues: list[dict[str, Any]] = field(default_factory=list)


class PrescriptionRefused(FhirError):
    """422: a blocking rule, or warnings the prescriber has not answered; every one listed."""

    def __init__(self, findings: list[Finding], unanswered: list[Finding]) -> None:
        issues = [
            Issue(
                code="business-rule",
                diagnostics=f.en,
                expression=_where(f),
                severity="error",
            )
            for f in findings
        ] + [
            Issue(
                code="business-rule",
                diagnostics=f"{f.en} (give a reason to override it)",
                expression=_where(f),
                severity="warning",
            )
            for f in unanswered
        ]
        super().__init__(422, issues)
        self.findings = findings
        self.unanswered = unanswered


def _where(finding: Finding) -> str:
    return f"Parameters.parameter.where(name = 'line')[{finding.lines[0]}]" if finding.lines else ""


def _decimal(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"{where} must be a number", where) from None
    if number <= 0:
        raise InvalidRequest(f"{where} must be more than 0", where)
    return number


def _dose(request: dict[str, Any]) -> tuple[Any, str]:
    dosage = (request.get("dosageInstruction") or [{}])[0]
    dose = ((dosage.get("doseAndRate") or [{}])[0].get("doseQuantity")) or {}
    return dose.get("value"), str(dose.get("unit") or dose.get("code") or "")


def _per_day(request: dict[str, Any]) -> Any:
    dosage = (request.get("dosageInstruction") or [{}])[0]
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    if "frequency" not in repeat:
        return None
    period = Decimal(str(repeat.get("period", 1)))
    unit = repeat.get("periodUnit", "d")
    per = {"d": Decimal(1), "h": Decimal(1) / 24, "wk": Decimal(7)}.get(unit)
    if per is None or period <= 0:
        return None
    return Decimal(str(repeat["frequency"])) / (period * per)


def ordered(
    catalogue: CatalogueIndex, index: int, request: dict[str, Any], override: str
) -> Ordered:
    """Read one line: its medicine from the catalogue and its numbers, each checked."""
    where = f"line[{index}]"
    if request.get("resourceType") != "MedicationRequest":
        raise InvalidRequest(f"{where}: each line is a MedicationRequest", where)
    found = medicine(catalogue, request, where)
    per_dose = _decimal(_dose(request)[0], f"{where}.dosageInstruction.doseQuantity")
    per_day = _decimal(_per_day(request), f"{where}.dosageInstruction.timing")
    supply = ((request.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}).get(
        "value"
    )
    if supply is None:
        raise InvalidRequest(
            f"{where}: say for how many days (dispenseRequest.expectedSupplyDuration)",
            f"{where}.dispenseRequest.expectedSupplyDuration",
        )
    days_value = Decimal(str(supply))
    if days_value != days_value.to_integral_value():
        raise InvalidRequest(f"{where}: days must be a whole number", where)
    days = int(days_value)
    given = ((request.get("dispenseRequest") or {}).get("quantity") or {}).get("value")
    quantity = _decimal(given, f"{where}.dispenseRequest.quantity")
    if quantity is None:
        if per_dose is None or per_day is None:
            raise InvalidRequest(
                f"{where}: give the quantity, or the dose and how many times a day",
                f"{where}.dispenseRequest.quantity",
            )
        quantity = Decimal(math.ceil(per_dose * per_day * max(days, 0)))
    return Ordered(index, request, found, per_dose, per_day, days, quantity, override)


def has_inpatient_beds(organization: dict[str, Any]) -> bool:
    for ext in organization.get("extension", []):
        if ext.get("url") == BEDS_EXTENSION:
            return int(ext.get("valueInteger", 0)) > 0
    return any(
        c.get("system") == LEVEL_SYSTEM and c.get("code") in WITH_BEDS
        for t in organization.get("type", [])
        for c in codings(t)
    )


def _visit(
    repo: GuardedRepository, patient_id: str, encounter_id: str, facility_org: str | None
) -> dict[str, Any]:
    try:
        encounter = repo.read("Encounter", encounter_id).content or {}
    except (NotFound, Forbidden):
        raise NotFound(f"Encounter/{encounter_id} is not a visit you may prescribe in") from None
    if reference_id(encounter.get("subject"), "Patient") != patient_id:
        raise InvalidRequest("The visit is not the patient's", "encounter")
    provider = reference_id(encounter.get("serviceProvider"), "Organization")
    if facility_org is not None and provider != facility_org:
        raise NotFound(f"Encounter/{encounter_id} is not a visit of your facility")
    if encounter.get("status") in ("cancelled", "entered-in-error"):
        raise InvalidRequest(f"The visit is {encounter.get('status')}", "encounter")
    return encounter


def _requester(repo: GuardedRepository, lines: list[Ordered]) -> dict[str, Any]:
    """The prescriber: the signed-in doctor's Practitioner, or the one a connected system names
    (the same on every line)."""
    principal = repo.principal
    if principal.kind == "staff":
        practitioner = practitioner_of(repo.auditor.engine, principal.subject)
        who: dict[str, Any] = {"display": principal.display}
        if practitioner is not None:
            who["reference"] = f"Practitioner/{practitioner}"
        return who
    named = {str((o.request.get("requester") or {}).get("reference", "")) for o in lines}
    if len(named) != 1 or not next(iter(named)).startswith("Practitioner/"):
        raise InvalidRequest(
            "A connected system names the prescribing Practitioner in every line's requester",
            "line.requester",
        )
    ref = next(iter(named))
    if repo.read("Practitioner", ref.split("/", 1)[1]) is None:  # pragma: no cover - read raises
        raise NotFound(ref)
    display = (lines[0].request.get("requester") or {}).get("display")
    return {"reference": ref, **({"display": display} if display else {})}


def _medication_concept(item: Ordered) -> dict[str, Any]:
    medication = item.medicine.medication
    coding = [dict(c) for c in (medication.get("code") or {}).get("coding", [])]
    if item.medicine.entry.atc and not any(c.get("system") == ATC_SYSTEM for c in coding):
        coding.append({"system": ATC_SYSTEM, "code": item.medicine.entry.atc})
    return {"coding": coding, "text": item.medicine.entry.name}


def _unique_code(repo: GuardedRepository, tx: Any, facility: str, kind: Kind) -> str:
    for _ in range(_CODE_ATTEMPTS):
        code = new_code(facility, kind)
        query = repo.parse_query(
            "MedicationRequest", [("group-identifier", f"{CODE_SYSTEM}|{code}"), ("_count", "1")]
        )
        if not tx.search(query).matches:
            return code
    raise FhirError(500, [Issue("exception", "Could not draw a free prescription code")])


def prescribe(
    repo: GuardedRepository,
    *,
    patient_id: str,
    encounter_id: str,
    lines: list[tuple[dict[str, Any], str]],
    now: datetime,
    long_term: bool = False,
    weight_kg: Decimal | None = None,
    note: str = "",
    replaces: str | None = None,
    replace_reason: str = "",
) -> Issued:
    """Check and issue one prescription; ``lines`` are (MedicationRequest, override reason).

    ``replaces``: the code of an active prescription of the same patient and facility that this
    one corrects; it is cancelled (with ``replace_reason``) in the same transaction and the new
    lines name it in ``priorPrescription`` (``cancel.py``)."""
    if replaces is not None:
        replaces = normalise(replaces)
        if not replace_reason.strip():
            raise InvalidRequest("Say why the prescription is replaced", "reason")
    if not lines:
        raise InvalidRequest("A prescription needs at least one line", "line")
    facility_code = repo.principal.facility
    if facility_code is None:
        raise Forbidden("Prescriptions are issued by a facility's doctor or system")
    facility = find_facility(repo, facility_code)
    organization = repo.read("Organization", facility.id).content or {}
    repo.authorise_operation(
        "prescribe", "MedicationRequest", ["create"], [patient_id], PRESCRIBER_ROLES
    )
    encounter = _visit(repo, patient_id, encounter_id, facility.id)
    patient = repo.read("Patient", patient_id).content or {}
    catalogue = catalogue_index(repo)
    items = [
        ordered(catalogue, i, request, override) for i, (request, override) in enumerate(lines)
    ]
    requester = _requester(repo, items)
    rules = rules_on(now.date())
    context = gather(
        repo,
        catalogue,
        rules,
        patient,
        now=now,
        diagnoses=visit_diagnoses(repo, encounter),
        inpatient_beds=has_inpatient_beds(organization),
        long_term=long_term,
        weight_kg=weight_kg,
        replacing=replaces,
    )
    plain = [item.line() for item in items]
    findings: Findings = check(plain, context)
    if findings.blocking or findings.unanswered(plain):
        raise PrescriptionRefused(findings.blocking, findings.unanswered(plain))
    kind = kind_of(plain)
    when = format_instant(now)
    with repo.operation(
        "prescribe",
        resource_type="MedicationRequest",
        interactions=["create"],
        patients=[patient_id],
        roles=PRESCRIBER_ROLES,
        owns=OWNS,
    ) as tx:
        prior: list[dict[str, Any]] = []
        if replaces is not None:
            prior = cancel_lines(
                repo, tx, replaces, replace_reason, facility_org=facility.id, patient_id=patient_id
            )
        code = _unique_code(repo, tx, facility_code, kind)
        ids = {item.index: new_id() for item in items}
        refs = {i: f"MedicationRequest/{rid}" for i, rid in ids.items()}
        issues = [
            detected_issue(
                f,
                patient_id=patient_id,
                line_refs=refs,
                author=requester,
                when=when,
                rules=rules,
                override=next((o.override for o in items if o.index in f.lines), ""),
            )
            for f in findings.items
        ]
        requests = []
        for item in items:
            request = _request(
                item,
                ids[item.index],
                code,
                patient_id,
                encounter,
                requester,
                facility,
                when,
                now + rules.fill_within,
                note,
            )
            linked = [
                {"reference": f"DetectedIssue/{d['id']}"}
                for d, f in zip(issues, findings.items, strict=True)
                if item.index in f.lines
            ]
            if linked:
                request["detectedIssue"] = linked
            if prior:
                replaced = prior[min(item.index, len(prior) - 1)]
                request["priorPrescription"] = {"reference": f"MedicationRequest/{replaced['id']}"}
            requests.append(request)
        for issue in issues:  # ids chosen here, so the lines and their issues link
            repo.update(issue, "DetectedIssue", issue["id"], tx=tx)
        stored = [
            repo.update(r, "MedicationRequest", r["id"], tx=tx).resource.content or {}
            for r in requests
        ]
        if repo.principal.kind != "staff":  # a connected system: say which, and for whom
            provenance = system_provenance(repo, stored, requester, when)
            repo.update(provenance, "Provenance", provenance["id"], tx=tx)
        _to_national(repo, tx, stored, patient, organization, encounter, requester, now)
    return Issued(code, kind, stored, issues)


def system_provenance(
    repo: GuardedRepository,
    requests: list[dict[str, Any]],
    requester: dict[str, Any],
    when: str,
) -> dict[str, Any]:
    """Who wrote a prescription a connected system sent: the prescriber it names is the
    author, the system (its client id and facility) entered it.
    See: https://hl7.org/fhir/R4/provenance.html"""
    principal = repo.principal
    system = {
        "display": principal.display,
        "identifier": {"system": CLIENT_SYSTEM, "value": principal.subject},
    }
    return {
        "resourceType": "Provenance",
        "id": new_id(),
        "target": [
            {"reference": f"MedicationRequest/{r['id']}/_history/{r['meta']['versionId']}"}
            for r in requests
        ],
        "recorded": when,
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE",
                }
            ]
        },
        "agent": [
            {"type": {"coding": [{"system": AGENT_TYPES, "code": "author"}]}, "who": requester},
            {"type": {"coding": [{"system": AGENT_TYPES, "code": "enterer"}]}, "who": system},
        ],
    }


def _to_national(
    repo: GuardedRepository,
    tx: Any,
    requests: list[dict[str, Any]],
    patient: dict[str, Any],
    organization: dict[str, Any],
    encounter: dict[str, Any],
    requester: dict[str, Any],
    now: datetime,
) -> None:
    """Queue the prescription for the national prescription system in this transaction: it
    is sent if and only if it was issued (``national/outbox.py``). A prescriber without a
    practising-certificate number on their Practitioner cannot be sent under their name; that
    is logged, and the prescription stays valid here."""
    ref = reference_id(requester, "Practitioner")
    practitioner = (tx.read("Practitioner", ref).content or {}) if ref else {}
    conditions = [
        tx.read("Condition", cid).content or {}
        for d in encounter.get("diagnosis", [])
        if (cid := reference_id(d.get("condition"), "Condition"))
    ]
    sources = PrescriptionSources(
        requests, patient, practitioner, organization, encounter, conditions
    )
    try:
        message = prescription_message(sources, str(patient["id"]))
    except ValueError as exc:
        log.warning(
            "prescription %s not queued for the national system: %s",
            requests[0]["groupIdentifier"]["value"],
            exc,
        )
        return
    enqueue(tx, message, now)


def _request(
    item: Ordered,
    rid: str,
    code: str,
    patient_id: str,
    encounter: dict[str, Any],
    requester: dict[str, Any],
    facility: Any,
    when: str,
    valid_until: datetime,
    note: str,
) -> dict[str, Any]:
    given = item.request
    request: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "extension": [
            {
                "url": FACILITY_EXTENSION,
                "valueReference": {
                    "reference": f"Organization/{facility.id}",
                    "display": facility.name,
                },
            }
        ],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": _medication_concept(item),
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter['id']}"},
        "authoredOn": when,
        "requester": requester,
        "groupIdentifier": {"system": CODE_SYSTEM, "value": code},
        "dosageInstruction": given.get("dosageInstruction", []),
        "dispenseRequest": {
            "validityPeriod": {"start": when, "end": format_instant(valid_until)},
            "quantity": {
                "value": float(item.quantity) if item.quantity % 1 else int(item.quantity),
                "unit": item.medicine.entry.unit,
            },
            "expectedSupplyDuration": {
                "value": item.days,
                "unit": "ngày",
                "system": UCUM,
                "code": "d",
            },
        },
        "substitution": given.get("substitution", {"allowedBoolean": True}),
    }
    if note.strip():
        request["note"] = [{"text": note.strip()}]
    return request


__all__ = [
    "PRESCRIBER_ROLES",
    "Issued",
    "Ordered",
    "PrescriptionRefused",
    "has_inpatient_beds",
    "ordered",
    "prescribe",
]
