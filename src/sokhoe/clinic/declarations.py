"""What citizens declared, as the station checks it: for each resource type a citizen
declares, its status field at each stage (``portal/selfdeclared.py``) and its key field — the
one a clinician corrects (the substance, the diagnosis, the vaccine, the value) — and the lists
of what waits (:func:`waiting`, :func:`waiting_for`).

Every list is a search through the caller's door with the two tags of the contract, so a
station sees the items of its ward's residents and of its own patients, a hospital those of its
patients, and nothing is filtered after the fact.
See: https://hl7.org/fhir/R4/resource.html#tag
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.records import condition_text, find, text_of
from sokhoe.errors import InvalidRequest
from sokhoe.fhir.references import codings
from sokhoe.interop.claims.formats import name_text
from sokhoe.messages import Message
from sokhoe.portal.immunisation import CVX
from sokhoe.portal.selfdeclared import FLAGS, VERIFICATION, Verification
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM, icd10_entry

VERIFY_ROLES: Final = frozenset({"doctor", "nurse"})
"""Clinical staff: a desk checks papers, not what a person says about their health."""
ALLERGY_STATUS: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_STATUS: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
WAITING_LIMIT: Final = 200


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; the page translates it where it is shown."""
    return message


def _concept_status(system: str) -> Callable[[dict[str, Any], Verification], None]:
    def set_status(resource: dict[str, Any], state: Verification) -> None:
        resource["verificationStatus"] = {"coding": [{"system": system, "code": state}]}

    return set_status


def _code_status(
    values: dict[Verification, str],
) -> Callable[[dict[str, Any], Verification], None]:
    def set_status(resource: dict[str, Any], state: Verification) -> None:
        resource["status"] = values[state]

    return set_status


def _no_status(resource: dict[str, Any], state: Verification) -> None:
    """Immunization has no field for it: the tag alone says (``portal/selfdeclared.py``)."""


def _coded(text: str) -> dict[str, Any]:
    """A diagnosis as the clinician typed it: an ICD-10 code first ("E11 …") is coded with the
    Ministry's title; anything else is kept as text."""
    first, _, rest = text.partition(" ")
    entry = icd10_entry(first)
    if entry is None:
        return {"text": text}
    title = entry.display_vi or entry.display
    coding = {"system": ICD10_SYSTEM, "code": entry.code, "display": title}
    return {"coding": [coding], "text": rest.strip() or title}


def _vaccine(text: str) -> dict[str, Any]:
    """A vaccine as the clinician typed it: a CVX code first ("198 5 trong 1") is coded, so the
    schedule counts the dose (``portal/immunisation.py``); anything else is kept as text."""
    first, _, rest = text.partition(" ")
    if not first.isdigit() or len(first) > 3:
        return {"text": text}
    coding = {"system": CVX, "code": first.zfill(2) if len(first) < 2 else first}
    return {"coding": [coding], "text": rest.strip() or text}


def _observation_value(resource: dict[str, Any]) -> str:
    if "valueQuantity" in resource:
        q = resource["valueQuantity"]
        return f"{q.get('value', '')} {q.get('unit', '')}".strip()
    if "valueCodeableConcept" in resource:
        return text_of(resource["valueCodeableConcept"])
    if "valueBoolean" in resource:
        return "yes" if resource["valueBoolean"] else "no"
    return str(resource.get("valueString", ""))


def _set_observation_value(resource: dict[str, Any], text: str) -> None:
    if "valueQuantity" in resource:
        number = text.split()[0] if text.split() else ""
        try:
            value = Decimal(number.replace(",", "."))
        except InvalidOperation as exc:
            raise InvalidRequest(
                Message("Write the corrected value as a number, not %(text)s", text=text), "value"
            ) from exc
        resource["valueQuantity"] = {**resource["valueQuantity"], "value": float(value)}
    elif "valueCodeableConcept" in resource:
        resource["valueCodeableConcept"] = {"text": text}
    else:
        for key in [k for k in resource if k.startswith("value")]:
            del resource[key]
        resource["valueString"] = text


def _set_family_condition(resource: dict[str, Any], text: str) -> None:
    conditions = list(resource.get("condition") or [{}])
    conditions[0] = {**conditions[0], "code": _coded(text)}
    resource["condition"] = conditions


@dataclass(frozen=True)
class Kind:
    """How one resource type is verified: its status field and its key field."""

    label: str
    """What the item is, in English (the pages translate it)."""
    key_label: str
    """The field a correction changes."""
    set_status: Callable[[dict[str, Any], Verification], None]
    key: Callable[[dict[str, Any]], str]
    set_key: Callable[[dict[str, Any], str], None]
    status_param: str = "status"
    """The search parameter of the field that says an item was taken back."""

    def withdrawn(self, resource: dict[str, Any]) -> bool:
        """Taken back by the person before the station decided: ``entered-in-error`` in the
        type's own field, the tag still ``unconfirmed`` (``portal/selfdeclared.py``)."""
        if self.status_param == "status":
            return resource.get("status") == "entered-in-error"
        codes = codings(resource.get("verificationStatus"))
        return any(c.get("code") == "entered-in-error" for c in codes)


KINDS: Final[dict[str, Kind]] = {
    "AllergyIntolerance": Kind(
        N_("Allergy"),
        N_("Substance"),
        _concept_status(ALLERGY_STATUS),
        lambda r: text_of(r.get("code")),
        lambda r, t: r.__setitem__("code", {"text": t}),
        "verification-status",
    ),
    "Condition": Kind(
        N_("Illness"),
        N_("Diagnosis (ICD-10 code first, or words)"),
        _concept_status(CONDITION_STATUS),
        condition_text,
        lambda r, t: r.__setitem__("code", _coded(t)),
        "verification-status",
    ),
    "FamilyMemberHistory": Kind(
        N_("Family history"),
        N_("Illness in the family (ICD-10 code first, or words)"),
        _code_status(
            {"unconfirmed": "partial", "confirmed": "completed", "refuted": "entered-in-error"}
        ),
        lambda r: condition_text((r.get("condition") or [{}])[0]),
        _set_family_condition,
    ),
    "Observation": Kind(
        N_("Health habit or measure"),
        N_("Value"),
        _code_status(
            {"unconfirmed": "preliminary", "confirmed": "final", "refuted": "entered-in-error"}
        ),
        _observation_value,
        _set_observation_value,
    ),
    "Immunization": Kind(
        N_("Vaccination"),
        N_("Vaccine (CVX code first, or words)"),
        _no_status,
        lambda r: text_of(r.get("vaccineCode")),
        lambda r, t: r.__setitem__("vaccineCode", _vaccine(t)),
    ),
    "Procedure": Kind(
        N_("Past operation"),
        N_("Operation"),
        _no_status,
        lambda r: text_of(r.get("code")),
        lambda r, t: r.__setitem__("code", {"text": t}),
    ),
}
"""The types a citizen declares, with the status each uses (``portal/selfdeclared.py``)."""


@dataclass(frozen=True)
class Item:
    """One self-declared item waiting for the station."""

    resource_type: str
    id: str
    version: int
    patient_id: str
    label: str
    what: str
    """The item as a clinician reads it (the relationship, the measure's name before it)."""
    key: str
    """The key field's current text: what a correction starts from."""
    key_label: str
    declared: str | None


@dataclass(frozen=True)
class Waiting:
    """A person's items waiting for the station."""

    patient_id: str
    name: str
    birth_date: str | None
    items: list[Item]


def _what(rtype: str, resource: dict[str, Any], key: str) -> str:
    if rtype == "FamilyMemberHistory":
        return f"{text_of(resource.get('relationship'))}: {key}".strip(": ")
    if rtype == "Observation":
        return f"{text_of(resource.get('code'))}: {key}".strip(": ")
    if rtype == "Immunization":
        day = str(resource.get("occurrenceDateTime") or "")[:10]
        shown = "/".join(reversed(day.split("-")))  # dd/mm/yyyy, as Vietnamese forms write it
        return f"{key} ({shown})" if day else key
    return key


def item_of(resource: dict[str, Any]) -> Item:
    """The item a self-declared resource is, as the pages list it."""
    rtype = str(resource["resourceType"])
    kind = KINDS[rtype]
    key = kind.key(resource)
    meta = resource.get("meta") or {}
    ref = (resource.get("patient") or resource.get("subject") or {}).get("reference", "")
    return Item(
        rtype,
        str(resource["id"]),
        int(meta.get("versionId", "1")),
        str(ref).removeprefix("Patient/"),
        kind.label,
        _what(rtype, resource, key),
        key,
        kind.key_label,
        meta.get("lastUpdated"),
    )


def _waiting_items(repo: GuardedRepository, params: list[tuple[str, str]]) -> list[Item]:
    """Self-declared items still unconfirmed among what the caller may see (the door confines
    each search: a station sees its residents' items, a hospital its patients')."""
    tags = [("_tag", f"{FLAGS}|self-declared"), ("_tag", f"{VERIFICATION}|unconfirmed")]
    items = [
        item_of(resource)
        for rtype, kind in KINDS.items()
        for resource in find(
            repo,
            rtype,
            [
                *tags,
                (f"{kind.status_param}:not", "entered-in-error"),  # taken back: not waiting
                *params,
                ("_sort", "-_lastUpdated"),
            ],
            WAITING_LIMIT,
        )
    ]
    return sorted(items, key=lambda i: i.declared or "", reverse=True)


def waiting_for(repo: GuardedRepository, patient_id: str) -> list[Item]:
    """The person's items waiting for verification, newest first (the chart's section)."""
    if repo.principal.role not in VERIFY_ROLES:
        return []
    return _waiting_items(repo, [("patient", f"Patient/{patient_id}")])


def waiting(repo: GuardedRepository) -> list[Waiting]:
    """Everyone the caller may see with items waiting, those who declared last first."""
    items = _waiting_items(repo, [])
    by_patient: dict[str, list[Item]] = {}
    for item in items:
        by_patient.setdefault(item.patient_id, []).append(item)
    if not by_patient:
        return []
    people = {
        str(p["id"]): p
        for p in find(repo, "Patient", [("_id", ",".join(by_patient))], len(by_patient))
    }
    return [
        Waiting(
            pid,
            name_text(people[pid]) if pid in people else pid,
            (people.get(pid) or {}).get("birthDate"),
            found,
        )
        for pid, found in by_patient.items()
    ]


__all__ = [
    "KINDS",
    "VERIFY_ROLES",
    "Item",
    "Kind",
    "Waiting",
    "item_of",
    "waiting",
    "waiting_for",
]
