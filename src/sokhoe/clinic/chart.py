"""The patient chart: banner, summary and timeline, from what the caller may see.

Every section is one search through the door, so a facility sees the history written elsewhere
only when the policy opens it (a record-level relationship, consent, proof of presence or
break-the-glass), and the chart says how many facilities the visible record comes from rather
than pretending to be complete. Nothing is filtered here: what the door answers is shown.
See: https://hl7.org/fhir/R4/patient.html (banner) and OpenMRS 3's patient chart (layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.scopes import scopes_allow
from sokhoe.clinic.records import condition_text, find, read, text_of
from sokhoe.clinic.signatures import signatures
from sokhoe.clinic.vitals import read_back
from sokhoe.fhir.references import codings, reference_id
from sokhoe.interop.claims.formats import identifiers, name_text
from sokhoe.mpi.identifiers import BHYT, CCCD
from sokhoe.portal.selfdeclared import verification

ACTIVE: Final = "active"


@dataclass(frozen=True)
class Card:
    """The health-insurance card as the banner shows it."""

    number: str
    valid_from: str | None
    valid_to: str | None

    def valid_on(self, day: date) -> bool:
        start, end = self.valid_from, self.valid_to
        return (start is None or start[:10] <= day.isoformat()) and (
            end is None or day.isoformat() <= end[:10]
        )


@dataclass(frozen=True)
class TimelineItem:
    encounter_id: str
    start: str | None
    facility: str
    own: bool
    """Written by the caller's facility."""
    status: str
    reason: str
    diagnoses: list[str]
    signed: bool = False


@dataclass
class Chart:
    patient_id: str
    patient: dict[str, Any] | None
    """None: the caller may not read the record (only what the desk registered)."""
    name: str = ""
    gender: str | None = None
    birth_date: str | None = None
    cccd: str | None = None
    card: Card | None = None
    allergies: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    declared_allergies: list[str] = field(default_factory=list)
    """What the person declared and no clinician checked yet: shown apart, never as a finding."""
    declared_problems: list[str] = field(default_factory=list)
    declared_immunizations: list[str] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)
    immunizations: list[str] = field(default_factory=list)
    appointments: list[dict[str, Any]] = field(default_factory=list)
    vitals: dict[str, Decimal] = field(default_factory=dict)
    vitals_when: str | None = None
    trend: list[tuple[str, Decimal, Decimal]] = field(default_factory=list)
    """(when, systolic, diastolic), oldest first: the blood-pressure trend."""
    timeline: list[TimelineItem] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    imaging: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    facilities: int = 0
    clinical: bool = True
    """False: the caller's role reads no clinical content (the desk): the chart shows who the
    person is and their visits, and says the rest is not shown rather than "none recorded"."""

    def age(self, today: date) -> int | None:
        if not self.birth_date or len(self.birth_date) < 4:
            return None
        born = date.fromisoformat(self.birth_date) if len(self.birth_date) == 10 else None
        if born is None:
            return today.year - int(self.birth_date[:4])
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def build(
    repo: GuardedRepository, patient_id: str, facility_org: str | None, lang: str = "vi"
) -> Chart:
    """The chart of ``patient_id`` as the caller may see it; ``facility_org`` is the caller's
    facility Organization id (to mark its own visits); diagnoses titled in ``lang``."""
    patient = read(repo, "Patient", patient_id)
    chart = Chart(patient_id, patient)
    if patient is None:
        return chart
    chart.name = name_text(patient)
    chart.gender = patient.get("gender")
    chart.birth_date = patient.get("birthDate")
    cccd = next(iter(identifiers(patient, CCCD)), None)
    chart.cccd = cccd.get("value") if cccd else None
    card = next(iter(identifiers(patient, BHYT)), None)
    if card:
        period = card.get("period") or {}
        chart.card = Card(str(card.get("value")), period.get("start"), period.get("end"))
    subject = [("patient", f"Patient/{patient_id}")]
    chart.clinical = all(scopes_allow(repo.principal.scopes, t, "search") for t in CLINICAL_TYPES)
    if not chart.clinical:
        _timeline(repo, chart, subject, facility_org, [], lang)
        chart.appointments = find(
            repo, "Appointment", [*subject, ("status", "booked"), ("_sort", "date")], 10
        )
        return chart
    for a in find(repo, "AllergyIntolerance", subject, 20):
        if _inactive(a.get("clinicalStatus")) or _refuted(a):
            continue
        shown = chart.declared_allergies if _unchecked(a) else chart.allergies
        shown.append(text_of(a.get("code")))
    conditions = find(repo, "Condition", [*subject, ("_sort", "-recorded-date")], 200)
    current = [c for c in conditions if not _inactive(c.get("clinicalStatus")) and not _refuted(c)]
    active = [condition_text(c, lang) for c in current if not _unchecked(c)]
    chart.problems = list(dict.fromkeys(active))[:30]  # each problem once, newest first
    declared = [condition_text(c, lang) for c in current if _unchecked(c)]
    chart.declared_problems = list(dict.fromkeys(declared))[:30]
    chart.medications = [
        text_of(m.get("medicationCodeableConcept"))
        for m in find(repo, "MedicationRequest", [*subject, ("status", "active")], 20)
    ]
    for i in find(repo, "Immunization", [*subject, ("_sort", "-date")], 20):
        if _refuted_declaration(i):
            continue
        shown = chart.declared_immunizations if _unchecked(i) else chart.immunizations
        shown.append(
            f"{text_of(i.get('vaccineCode'))} ({str(i.get('occurrenceDateTime', ''))[:10]})"
        )
    chart.appointments = find(
        repo, "Appointment", [*subject, ("status", "booked"), ("_sort", "date")], 10
    )
    _vitals(repo, chart, subject)
    _timeline(repo, chart, subject, facility_org, conditions, lang)
    chart.results = find(
        repo, "Observation", [*subject, ("category", "laboratory"), ("_sort", "-date")], 20
    )
    chart.imaging = find(repo, "ImagingStudy", [*subject, ("_sort", "-started")], 10)
    chart.documents = find(repo, "DocumentReference", [*subject, ("_sort", "-date")], 10)
    return chart


CLINICAL_TYPES: Final = (
    "AllergyIntolerance",
    "Condition",
    "MedicationRequest",
    "Immunization",
    "Observation",
    "ImagingStudy",
    "DocumentReference",
)
"""What the chart's clinical sections read: a role without all of them (the desk) sees none."""


def _refuted(resource: dict[str, Any]) -> bool:
    """Found not to be so (by a clinician, or the station checking a declaration)."""
    refuted = ("refuted", "entered-in-error")
    return any(c.get("code") in refuted for c in codings(resource.get("verificationStatus")))


def _refuted_declaration(resource: dict[str, Any]) -> bool:
    return verification(resource) == "refuted"


def _unchecked(resource: dict[str, Any]) -> bool:
    """The person's own word, not yet checked by a clinician (``portal/selfdeclared.py``)."""
    return verification(resource) == "unconfirmed"


def _inactive(status: Any) -> bool:
    return any(c.get("code") in ("inactive", "resolved", "remission") for c in codings(status))


def _vitals(repo: GuardedRepository, chart: Chart, subject: list[tuple[str, str]]) -> None:
    found = find(
        repo, "Observation", [*subject, ("category", "vital-signs"), ("_sort", "-date")], 100
    )
    for obs in found:
        when = obs.get("effectiveDateTime")
        values = read_back(obs)
        if chart.vitals_when is None:
            chart.vitals_when = when
        if when == chart.vitals_when:
            chart.vitals.update(values)
        if "systolic" in values and "diastolic" in values and when:
            chart.trend.append((str(when), values["systolic"], values["diastolic"]))
    chart.trend.reverse()
    chart.trend = chart.trend[-12:]


def _timeline(
    repo: GuardedRepository,
    chart: Chart,
    subject: list[tuple[str, str]],
    facility_org: str | None,
    found: list[dict[str, Any]],
    lang: str,
) -> None:
    """The visits, newest first, with the diagnoses among ``found`` (the chart's Conditions)."""
    encounters = find(repo, "Encounter", [*subject, ("_sort", "-date")], 100)
    conditions = {str(c["id"]): condition_text(c, lang) for c in found}
    signed = signatures(repo, [str(e["id"]) for e in encounters if e.get("status") == "finished"])
    providers: set[str] = set()
    for enc in encounters:
        org = reference_id(enc.get("serviceProvider"), "Organization")
        providers.add(org or "")
        chart.timeline.append(
            TimelineItem(
                encounter_id=str(enc["id"]),
                start=(enc.get("period") or {}).get("start"),
                facility=str((enc.get("serviceProvider") or {}).get("display") or ""),
                own=org is not None and org == facility_org,
                status=str(enc.get("status", "")),
                reason=text_of((enc.get("reasonCode") or [{}])[0]),
                diagnoses=[
                    conditions.get(reference_id(d.get("condition"), "Condition") or "", "")
                    for d in enc.get("diagnosis", [])
                ],
                signed=str(enc["id"]) in signed,
            )
        )
    chart.facilities = len(providers - {""})


__all__ = ["Card", "Chart", "TimelineItem", "build"]
