"""My health book (*sổ sức khỏe của tôi*): the record of the profile shown, as its owner reads it.

First a summary — allergies, problems (active conditions), current medicines from any facility,
blood group, the latest of each vital sign — then the visits at every facility, the
prescriptions with their code (the pharmacy scans it), imaging studies and follow-up
appointments. Every line names where it comes from (``portal/sources.py``): a facility, or the
citizen with the station's check of what they declared.

The whole record is read once through the citizen's door (``portal/record.py``): the door
confines it to the citizen's own records and their confirmed children's, and audits the read.
Nothing here filters what the door answered by who may see it; it only chooses what a summary
shows (active, current, latest).
See: https://hl7.org/fhir/R4/patient-operation-everything.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.signed import is_signature
from sokhoe.clinic.records import condition_text, text_of
from sokhoe.clinic.vitals import BLOOD_PRESSURE, BMI, BY_KEY
from sokhoe.fhir.references import codings, reference_id
from sokhoe.fhir.resources import parse_instant
from sokhoe.interop.claims.formats import name_text
from sokhoe.portal.prescriptions import Prescription, prescriptions
from sokhoe.portal.record import Record, read_record
from sokhoe.portal.results import GLUCOSE_CODES, Result, explain, loinc_codes
from sokhoe.portal.selfdeclared import verification
from sokhoe.portal.sources import Source
from sokhoe.portal.words import FOLLOW_UP, MODALITIES, N_, VISIT_KINDS
from sokhoe.prescribing.dispensing_state import line_of, validity_end
from sokhoe.store.ports import StoredResource

VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")
VITALS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("blood-pressure", (BLOOD_PRESSURE[0],)),
    ("pulse", (BY_KEY["pulse"].loinc,)),
    ("temperature", (BY_KEY["temperature"].loinc,)),
    ("weight", (BY_KEY["weight"].loinc,)),
    ("height", (BY_KEY["height"].loinc,)),
    ("bmi", (BMI[0],)),
    ("glucose", GLUCOSE_CODES),
)
"""The summary's vital signs, in the order shown, with the LOINC codes the clinic writes
(``clinic/vitals.py``) and the glucose codes laboratories and meters send."""
BLOOD_GROUP: Final = "882-1"
"""ABO and Rh group [Type] in Blood: one Observation, its value the group ("O Rh+")."""
ABO, RH = "883-9", "10331-7"
"""ABO group and Rh type as two Observations (older laboratory systems)."""
CLOSED: Final = frozenset({"entered-in-error", "cancelled"})
INACTIVE: Final = frozenset({"inactive", "resolved", "remission"})
UPCOMING: Final = frozenset({"proposed", "pending", "booked"})
SUPPLY_DAYS: Final = 30
"""A fully bought line whose prescription names no supply duration counts as current this long
after it was prescribed."""
_ORDER: Final = {None: 0, "confirmed": 1, "unconfirmed": 2, "refuted": 3}
"""Facility records first, then what the station confirmed, what waits, what it refuted."""


@dataclass(frozen=True)
class Entry:
    """One line of the book: what it is, where it comes from."""

    text: str
    source: Source
    detail: str = ""
    when: str | None = None
    reference: str = ""


@dataclass(frozen=True)
class VisitRow:
    id: str
    start: str | None
    facility: str | None
    kind: str
    """A message id of :data:`~sokhoe.portal.words.VISIT_KINDS`, or the record's words."""
    reason: str
    diagnoses: tuple[str, ...]
    signed: bool
    status: str


@dataclass
class Book:
    """The health book of one profile."""

    patient_id: str
    name: str
    record: Record
    allergies: list[Entry] = field(default_factory=list)
    problems: list[Entry] = field(default_factory=list)
    medicines: list[Entry] = field(default_factory=list)
    blood_group: Entry | None = None
    vitals: list[Result] = field(default_factory=list)
    visits: list[VisitRow] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    imaging: list[Entry] = field(default_factory=list)
    follow_ups: list[Entry] = field(default_factory=list)
    vaccinations: list[Entry] = field(default_factory=list)


def _live(stored: StoredResource) -> bool:
    content = stored.content or {}
    status = content.get("status")
    verification = [c.get("code") for c in codings(content.get("verificationStatus"))]
    return status not in CLOSED and "entered-in-error" not in verification


def _active(content: dict[str, Any]) -> bool:
    return not any(c.get("code") in INACTIVE for c in codings(content.get("clinicalStatus")))


def _sorted(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (_ORDER.get(e.source.declared, 0), e.text.lower()))


def read_book(repo: GuardedRepository, patient_id: str, lang: str = "vi") -> Book:
    """The health book of ``patient_id`` (diagnoses titled in ``lang``), read through the
    caller's door (see the module's docstring)."""
    return build(read_record(repo, patient_id), repo.clock(), lang)


def build(record: Record, now: datetime, lang: str = "vi") -> Book:
    """The book of an already read record (``now`` decides what is current)."""
    source = record.facilities.source
    patient = record.patient or {}
    book = Book(record.patient_id, name_text(patient), record)
    live = {t: [s for s in record.of(t) if _live(s)] for t in _TYPES}
    book.allergies = _sorted(
        [
            Entry(text_of(s.content.get("code")), source(s), _reaction(s.content), None, _ref(s))
            for s in live["AllergyIntolerance"]
            if s.content and _active(s.content)
        ]
    )
    book.problems = _problems(live["Condition"], record, lang)
    book.medicines = _medicines(live["MedicationRequest"], record, now)
    by_code = _by_code(live["Observation"])
    book.blood_group = _blood_group(by_code, record)
    book.vitals = _vitals(by_code, record)
    book.visits = _visits(live["Encounter"], live["Condition"], record, lang)
    book.prescriptions = prescriptions(record, now)
    book.imaging = sorted(
        (_study(s, record) for s in live["ImagingStudy"]),
        key=lambda e: e.when or "",
        reverse=True,
    )
    book.follow_ups = _follow_ups(record.of("Appointment"), record, now)
    book.vaccinations = sorted(
        (
            Entry(
                text_of(s.content.get("vaccineCode")),
                source(s),
                "",
                s.content.get("occurrenceDateTime"),
                _ref(s),
            )
            for s in live["Immunization"]
            if s.content and s.content.get("status") != "not-done"
        ),
        key=lambda e: e.when or "",
        reverse=True,
    )
    return book


_TYPES: Final = (
    "AllergyIntolerance",
    "Condition",
    "MedicationRequest",
    "Observation",
    "Encounter",
    "ImagingStudy",
    "Immunization",
)


def _ref(stored: StoredResource) -> str:
    return f"{stored.resource_type}/{stored.id}"


def _reaction(allergy: dict[str, Any]) -> str:
    found = [
        text_of(m)
        for reaction in allergy.get("reaction", [])
        for m in reaction.get("manifestation", [])
    ]
    return ", ".join(t for t in found if t)


def _recorded(content: dict[str, Any]) -> str:
    return str(
        content.get("recordedDate")
        or content.get("onsetDateTime")
        or (content.get("meta") or {}).get("lastUpdated")
        or ""
    )


def _problems(conditions: list[StoredResource], record: Record, lang: str) -> list[Entry]:
    """Active conditions, each once (the newest record of it), facility and self-declared
    ones apart even when they name the same disease."""
    newest = sorted(conditions, key=lambda s: _recorded(s.content or {}), reverse=True)
    seen: set[tuple[str, bool]] = set()
    found: list[Entry] = []
    for stored in newest:
        content = stored.content or {}
        if not _active(content):
            continue
        text = condition_text(content, lang)
        src = record.facilities.source(stored)
        key = (text, src.self_declared)
        if not text or key in seen:
            continue
        seen.add(key)
        found.append(Entry(text, src, "", _recorded(content) or None, _ref(stored)))
    return sorted(found, key=lambda e: _ORDER.get(e.source.declared, 0))


def _supply_end(request: dict[str, Any]) -> datetime | None:
    authored = request.get("authoredOn")
    if not authored:
        return None
    supply = (request.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}
    days = supply.get("value") if supply.get("code", "d") == "d" else None
    return parse_instant(str(authored)) + timedelta(days=float(days or SUPPLY_DAYS))


def _never_bought(request: dict[str, Any], now: datetime) -> bool:
    """A prescription line whose buying period ended with nothing bought: not a medicine the
    person takes."""
    line = line_of(request, 0)
    end = validity_end([line])
    return end is not None and end < now and line.dispensed == 0


def _medicines(requests: list[StoredResource], record: Record, now: datetime) -> list[Entry]:
    """What the person takes now: every active line from any facility (but a prescription
    never bought in its buying period), and the lines bought in full whose supply still lasts
    (a line is ``completed`` once handed over, not once taken)."""
    found = []
    for stored in requests:
        content = stored.content or {}
        status = content.get("status")
        end = _supply_end(content) if status == "completed" else None
        if status == "active" and _never_bought(content, now):
            continue
        if status != "active" and (end is None or end < now):
            continue
        dosage = str(((content.get("dosageInstruction") or [{}])[0]).get("text", ""))
        found.append(
            Entry(
                text_of(content.get("medicationCodeableConcept")),
                record.facilities.source(stored),
                dosage,
                content.get("authoredOn"),
                _ref(stored),
            )
        )
    return sorted(found, key=lambda e: e.when or "", reverse=True)


def _effective(content: dict[str, Any]) -> str:
    return str(
        content.get("effectiveDateTime")
        or (content.get("effectivePeriod") or {}).get("start")
        or content.get("issued")
        or ""
    )


def _latest(
    by_code: dict[str, list[StoredResource]], codes: tuple[str, ...]
) -> StoredResource | None:
    matching = [s for code in codes for s in by_code.get(code, [])]
    return max(matching, key=lambda s: _effective(s.content or {}), default=None)


def _by_code(observations: list[StoredResource]) -> dict[str, list[StoredResource]]:
    """Observations by LOINC code (each looked at once, however many signs are asked for)."""
    found: dict[str, list[StoredResource]] = {}
    for stored in observations:
        for code in set(loinc_codes(stored.content or {})):
            found.setdefault(code, []).append(stored)
    return found


def _blood_group(observations: dict[str, list[StoredResource]], record: Record) -> Entry | None:
    """The blood group a laboratory typed before one the citizen declared (the latest of the
    most trusted kind); one ABO/Rh Observation, else the ABO and Rh ones together."""
    whole = _trusted(observations, (BLOOD_GROUP,))
    if whole is not None and whole.content:
        result = explain(whole.content, record.facilities.source(whole))
        if result is not None:
            return Entry(result.text, result.source, "", result.when, _ref(whole))
    abo, rh = _trusted(observations, (ABO,)), _trusted(observations, (RH,))
    if abo is None or abo.content is None:
        return None
    parts = [explain(s.content, record.facilities.source(s)) for s in (abo, rh) if s and s.content]
    text = " ".join(p.text for p in parts if p is not None and p.text)
    return Entry(text, record.facilities.source(abo), "", abo.content.get("effectiveDateTime"))


def _trusted(
    by_code: dict[str, list[StoredResource]], codes: tuple[str, ...]
) -> StoredResource | None:
    matching = [s for code in codes for s in by_code.get(code, [])]
    return max(
        matching,
        key=lambda s: (
            -_ORDER.get(verification(s.content or {}), 0),
            _effective(s.content or {}),
        ),
        default=None,
    )


def _vitals(observations: dict[str, list[StoredResource]], record: Record) -> list[Result]:
    found = []
    for key, codes in VITALS:
        latest = _latest(observations, codes)
        if latest is None or latest.content is None:
            continue
        result = explain(
            latest.content,
            record.facilities.source(latest),
            vital=key != "glucose",
            reference=_ref(latest),
        )
        if result is not None:
            found.append(result)
    return found


def visit_kind(encounter: dict[str, Any]) -> str:
    visit_class = encounter.get("class") or {}
    code = str(visit_class.get("code") or "")
    return VISIT_KINDS.get(code) or str(visit_class.get("display") or code)


def signed_visits(record: Record) -> dict[str, list[dict[str, Any]]]:
    """Encounter id → its signature Provenances, oldest first (they are in the record: a
    signature names the patient's resources, so it is in the patient's compartment)."""
    found: dict[str, list[dict[str, Any]]] = {}
    provenances = sorted(
        (s.content for s in record.of("Provenance") if is_signature(s.content)),
        key=lambda p: str((p or {}).get("recorded", "")),
    )
    for provenance in provenances:
        for target in (provenance or {}).get("target", []):
            eid = reference_id(target, "Encounter")
            if eid and provenance is not None:
                found.setdefault(eid, []).append(provenance)
    return found


def diagnoses_of(
    encounter: dict[str, Any], conditions: dict[str, dict[str, Any]], lang: str
) -> tuple[str, ...]:
    """The visit's diagnoses, the main one first, ICD-10 titled in ``lang`` (the Ministry's
    Vietnamese title for vi); conditions naming the visit when it lists none."""
    ranked = sorted(encounter.get("diagnosis", []), key=lambda d: d.get("rank", 99))
    named = [conditions.get(reference_id(d.get("condition"), "Condition") or "") for d in ranked]
    if not ranked:
        named = [
            c
            for c in conditions.values()
            if reference_id(c.get("encounter"), "Encounter") == encounter.get("id")
        ]
    texts = [condition_text(c, lang) for c in named if c]
    return tuple(dict.fromkeys(t for t in texts if t))


def _visits(
    encounters: list[StoredResource],
    conditions: list[StoredResource],
    record: Record,
    lang: str,
) -> list[VisitRow]:
    by_id = {s.id: s.content for s in conditions if s.content}
    signed = signed_visits(record)
    rows = []
    for stored in encounters:
        enc = stored.content or {}
        rows.append(
            VisitRow(
                id=stored.id,
                start=(enc.get("period") or {}).get("start"),
                facility=record.facilities.visits.get(stored.id),
                kind=visit_kind(enc),
                reason=text_of((enc.get("reasonCode") or [{}])[0]),
                diagnoses=diagnoses_of(enc, by_id, lang),
                signed=stored.id in signed,
                status=str(enc.get("status", "")),
            )
        )
    return sorted(rows, key=lambda r: r.start or "", reverse=True)


def _study(stored: StoredResource, record: Record) -> Entry:
    content = stored.content or {}
    kinds = [
        MODALITIES.get(str(c.get("code")), str(c.get("code"))) for c in content.get("modality", [])
    ]
    kind = kinds[0] if kinds else N_("Imaging study")
    return Entry(
        str(content.get("description") or kind),
        record.facilities.source(stored),
        kind if content.get("description") else "",
        content.get("started"),
        _ref(stored),
    )


def _follow_ups(appointments: list[StoredResource], record: Record, now: datetime) -> list[Entry]:
    """Appointments still ahead (from today on in Vietnam), soonest first."""
    today = now.astimezone(VIETNAM).date().isoformat()
    found = []
    for stored in appointments:
        content = stored.content or {}
        start = str(content.get("start") or "")
        if content.get("status") not in UPCOMING or not start or start[:10] < today:
            continue
        visit = next(
            (
                reference_id(s, "Encounter")
                for s in content.get("supportingInformation", [])
                if reference_id(s, "Encounter")
            ),
            None,
        )
        src = record.facilities.source(stored)
        if src.facility is None and visit:
            src = Source(record.facilities.visits.get(visit))
        text = str(content.get("description") or text_of((content.get("serviceType") or [{}])[0]))
        found.append(Entry(text or FOLLOW_UP, src, "", start, _ref(stored)))
    return sorted(found, key=lambda e: e.when or "")


__all__ = [
    "Book",
    "Entry",
    "VisitRow",
    "build",
    "diagnoses_of",
    "read_book",
    "signed_visits",
    "visit_kind",
]
