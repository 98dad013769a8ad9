"""What the checks need, read from the record through the access door.

Medicines come from the drug catalogue (a prescription line names a catalogue ``Medication``,
by reference or by its catalogue code); allergies and the medicines a person takes now come from
every facility whose records the prescriber may read — the door confines those searches, so a
prescriber who has not yet opened the patient's history (proof of presence, a share, a
referral) is checked against what their own facility wrote, and the page says the history is
closed. The child's weight is the one typed in the visit, else the latest recorded in the last
30 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import find, read
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.references import codings, reference_id
from sokhoe.prescribing.catalogue import (
    ATC_SYSTEM,
    DRUG_SYSTEM,
    INGREDIENT_SYSTEM,
    REFERENCE_SOURCE,
    CatalogueEntry,
    ingredient_key,
)
from sokhoe.prescribing.catalogue_fhir import from_medication
from sokhoe.prescribing.catalogue_store import catalogue_state, current_medications
from sokhoe.prescribing.checks import Allergy, Context, Current, Drug
from sokhoe.prescribing.code import Kind
from sokhoe.prescribing.rules import RuleSet

WEIGHT_LOINC: Final = "29463-7"
WEIGHT_RECENT: Final = timedelta(days=30)
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
DEFAULT_SUPPLY_DAYS: Final = 30
"""How long a past prescription without a supply duration counts as taken."""
ALLERGY_CLASSES: Final[dict[str, tuple[str, ...]]] = {
    "penicilin": ("J01C",),
    "penicillin": ("J01C",),
    "cephalosporin": ("J01DB", "J01DC", "J01DD", "J01DE"),
    "sulfamid": ("J01E",),
    "sulfonamid": ("J01E",),
    "nsaid": ("M01A", "N02BA"),
    "khang-viem-khong-steroid": ("M01A", "N02BA"),
    "aspirin": ("N02BA01", "B01AC06"),
    "quinolon": ("J01MA",),
    "macrolid": ("J01FA",),
}
"""Allergies written as a class of medicines (free text, folded) → the ATC groups they cover."""


@dataclass(frozen=True)
class Medicine:
    """A prescription line's medicine: the catalogue entry and the Medication it came from."""

    entry: CatalogueEntry
    medication: dict[str, Any]
    source: str

    @property
    def drug(self) -> Drug:
        return drug_of(self.entry)

    @property
    def reference(self) -> str:
        return f"Medication/{self.medication['id']}"


def drug_of(entry: CatalogueEntry) -> Drug:
    kind: Kind = "N" if entry.narcotic else "H" if entry.psychotropic else "C"
    return Drug(entry.name, entry.atc, frozenset(i.key for i in entry.ingredients), kind)


def _source_of(system: str) -> str | None:
    if system == DRUG_SYSTEM:
        return REFERENCE_SOURCE
    if system.startswith(DRUG_SYSTEM + "/"):
        return system[len(DRUG_SYSTEM) + 1 :]
    return None


@dataclass(frozen=True)
class CatalogueIndex:
    """The current catalogue by (code system, code) and by Medication id."""

    state: tuple[tuple[str, int, str], ...]
    by_code: dict[tuple[str, str], Medicine]
    by_id: dict[str, Medicine]


_INDEX: dict[str, CatalogueIndex] = {}
"""The last index built, per process; rebuilt whenever the catalogue's stored state (one small
query each time) differs, so an import by another process is seen at once."""


def catalogue_index(repo: GuardedRepository) -> CatalogueIndex:
    """Every current catalogue medicine, read once per catalogue version rather than once per
    line and per past prescription (a history of 50 prescriptions is 50 look-ups)."""
    state = catalogue_state(repo)
    hit = _INDEX.get("current")
    if hit is not None and hit.state == state:
        return hit
    by_code: dict[tuple[str, str], Medicine] = {}
    by_id: dict[str, Medicine] = {}
    for medication in current_medications(repo):
        system = _first_system(medication)
        found = Medicine(from_medication(medication), medication, _source_of(system) or "")
        by_code[(system, found.entry.code)] = found
        by_id[str(medication["id"])] = found
    index = CatalogueIndex(state, by_code, by_id)
    _INDEX["current"] = index
    return index


def medicine(index: CatalogueIndex, request: dict[str, Any], where: str) -> Medicine:
    """The catalogue medicine a MedicationRequest line names; refused if it is not one."""
    ref = reference_id(request.get("medicationReference"), "Medication")
    found = index.by_id.get(ref) if ref is not None else None
    if ref is None:
        for coding in codings(request.get("medicationCodeableConcept")):
            key = (str(coding.get("system", "")), str(coding.get("code", "")))
            if key in index.by_code:
                found = index.by_code[key]
                break
    if found is None:
        raise InvalidRequest(
            f"{where}: the medicine must be a current entry of the drug catalogue "
            "(medicationReference to a catalogue Medication, or its catalogue code)",
            f"{where}.medication",
        )
    return found


def _first_system(medication: dict[str, Any]) -> str:
    return str(((medication.get("code") or {}).get("coding") or [{}])[0].get("system", ""))


def age_in_months(birth_date: str | None, today: date) -> int | None:
    if not birth_date or len(birth_date) < 10:
        return None
    born = date.fromisoformat(birth_date[:10])
    months = (today.year - born.year) * 12 + today.month - born.month
    return months - (today.day < born.day)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def latest_weight(repo: GuardedRepository, patient_id: str, now: datetime) -> Decimal | None:
    found = find(
        repo,
        "Observation",
        [
            ("patient", f"Patient/{patient_id}"),
            ("code", f"http://loinc.org|{WEIGHT_LOINC}"),
            ("date", f"ge{(now - WEIGHT_RECENT).date().isoformat()}"),
            ("_sort", "-date"),
        ],
        1,
    )
    return _decimal((found[0].get("valueQuantity") or {}).get("value")) if found else None


def drug_of_request(index: CatalogueIndex, request: dict[str, Any]) -> Drug:
    """The medicine of a past MedicationRequest, however it was coded: the catalogue entry
    when it names one, else its ATC code and its text as an ingredient."""
    try:
        return medicine(index, request, "MedicationRequest").drug
    except InvalidRequest:
        pass
    concept = request.get("medicationCodeableConcept") or {}
    atc = next((str(c["code"]) for c in codings(concept) if c.get("system") == ATC_SYSTEM), "")
    text = str(concept.get("text") or next((c.get("display") for c in codings(concept)), "") or "")
    keys = frozenset({ingredient_key(text)}) if text else frozenset()
    return Drug(text or atc or "?", atc, keys)


def _still_taken(request: dict[str, Any], today: date) -> bool:
    authored = str(request.get("authoredOn", ""))[:10]
    if len(authored) < 10:
        return True
    supply = ((request.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}).get(
        "value", DEFAULT_SUPPLY_DAYS
    )
    days = int(_decimal(supply) or DEFAULT_SUPPLY_DAYS)
    return date.fromisoformat(authored) + timedelta(days=days) >= today


def current_medicines(
    repo: GuardedRepository,
    index: CatalogueIndex,
    patient_id: str,
    today: date,
    exclude_group: str | None = None,
) -> tuple[Current, ...]:
    """Active prescriptions of the person from every facility the caller may read."""
    found = find(
        repo,
        "MedicationRequest",
        [
            ("patient", f"Patient/{patient_id}"),
            ("status", "active,completed"),  # completed: dispensed in full, still being taken
            ("intent", "order"),
        ],
        200,
    )
    out = []
    for request in found:
        if not _still_taken(request, today):
            continue
        group = (request.get("groupIdentifier") or {}).get("value")
        if exclude_group is not None and group == exclude_group:
            continue
        facility = str((request.get("requester") or {}).get("display") or "")
        performer = (request.get("performer") or {}).get("display")
        out.append(
            Current(
                f"MedicationRequest/{request['id']}",
                drug_of_request(index, request),
                _facility_name(request) or facility or str(performer or ""),
                str(request.get("authoredOn", "")),
            )
        )
    return tuple(out)


FACILITY_EXTENSION: Final = "https://fhir.sokhoe.vn/StructureDefinition/prescribing-facility"
"""The facility that issued a prescription (``valueReference`` to its Organization, with its
name as ``display``): what the duplicate-therapy warning names."""


def _facility_name(request: dict[str, Any]) -> str:
    for ext in request.get("extension", []):
        if ext.get("url") == FACILITY_EXTENSION:
            return str((ext.get("valueReference") or {}).get("display", ""))
    return ""


def allergies(
    repo: GuardedRepository, index: CatalogueIndex, patient_id: str
) -> tuple[Allergy, ...]:
    """Active allergies and intolerances (not refuted, not resolved), as the checks read them."""
    found = find(repo, "AllergyIntolerance", [("patient", f"Patient/{patient_id}")], 100)
    return tuple(a for a in (allergy_of(index, item) for item in found) if a is not None)


def allergy_of(index: CatalogueIndex, item: dict[str, Any]) -> Allergy | None:
    """One AllergyIntolerance as the checks read it; None when inactive, resolved, refuted or
    entered in error.

    Its substance counts by ingredient code, ATC code, catalogue code (the catalogue entry's
    ingredients and ATC) and by its text folded (an allergy written as a class, "dị ứng
    penicilin", covers the class's ATC groups: :data:`ALLERGY_CLASSES`)."""
    status = {c.get("code") for c in codings(item.get("clinicalStatus"))}
    verification = {c.get("code") for c in codings(item.get("verificationStatus"))}
    if status & {"inactive", "resolved"} or verification & {"refuted", "entered-in-error"}:
        return None
    concept = item.get("code") or {}
    atc = tuple(str(c["code"]) for c in codings(concept) if c.get("system") == ATC_SYSTEM)
    keys = {str(c["code"]) for c in codings(concept) if c.get("system") == INGREDIENT_SYSTEM}
    text = str(concept.get("text") or next((c.get("display") for c in codings(concept)), ""))
    for coding in codings(concept):
        known = index.by_code.get((str(coding.get("system", "")), str(coding.get("code", ""))))
        if known is not None:
            keys |= known.drug.ingredients
            atc += (known.entry.atc,) if known.entry.atc else ()
    if text:
        folded = ingredient_key(text)
        keys.add(folded)
        atc += next((v for k, v in ALLERGY_CLASSES.items() if k in folded), ())
    return Allergy(f"AllergyIntolerance/{item['id']}", text or "?", atc, frozenset(keys))


def visit_diagnoses(repo: GuardedRepository, encounter: dict[str, Any]) -> tuple[str, ...]:
    """The ICD-10 codes of the visit's diagnoses (its Conditions)."""
    codes = []
    for diagnosis in encounter.get("diagnosis", []):
        cid = reference_id(diagnosis.get("condition"), "Condition")
        condition = read(repo, "Condition", cid) if cid else None
        for coding in codings((condition or {}).get("code")):
            if coding.get("system") == ICD10 and coding.get("code"):
                codes.append(str(coding["code"]))
    return tuple(codes)


def gather(
    repo: GuardedRepository,
    index: CatalogueIndex,
    rules: RuleSet,
    patient: dict[str, Any],
    *,
    now: datetime,
    diagnoses: tuple[str, ...],
    inpatient_beds: bool,
    long_term: bool = False,
    weight_kg: Decimal | None = None,
    replacing: str | None = None,
) -> Context:
    """The checks' context for ``patient`` as the caller may see them (``replacing``: the code
    of a prescription being replaced, whose medicines are not "current" any more)."""
    pid = str(patient["id"])
    today = now.date()
    return Context(
        rules=rules,
        diagnoses=diagnoses,
        long_term=long_term,
        inpatient_beds=inpatient_beds,
        age_months=age_in_months(patient.get("birthDate"), today),
        weight_kg=weight_kg if weight_kg is not None else latest_weight(repo, pid, now),
        allergies=allergies(repo, index, pid),
        current=current_medicines(repo, index, pid, today, exclude_group=replacing),
    )


__all__ = [
    "FACILITY_EXTENSION",
    "CatalogueIndex",
    "Medicine",
    "age_in_months",
    "allergies",
    "allergy_of",
    "catalogue_index",
    "current_medicines",
    "drug_of",
    "drug_of_request",
    "gather",
    "latest_weight",
    "medicine",
    "visit_diagnoses",
]
