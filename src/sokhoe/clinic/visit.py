"""Closing a visit: the draft becomes the record, in one transaction.

While the clinician works, the visit is a draft (``clinic/drafts.py``). Closing checks it —
vital signs possible (and unusual ones confirmed), at least one ICD-10 diagnosis, the first of
which may be a main diagnosis — then writes, in one transaction through the door: the vital-sign
Observations, one Condition per diagnosis, the 4-part visit summary the health book shows
(a ``Composition``: history, significant results, treatment, next steps), the follow-up
``Appointment``, and the Encounter, ``finished``, pointing at its diagnoses (rank 1 = main),
and, when the patient is referred, the referral (``clinic/referrals.py``).
Either all of it is in the record or none of it is; the draft is dropped only after the commit.
Signing (``clinic/signing.py``) then pins exactly these versions.
See: https://hl7.org/fhir/R4/encounter-definitions.html#Encounter.diagnosis
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic import referrals, vitals
from sokhoe.clinic.drafts import Visit
from sokhoe.errors import InvalidRequest, InvalidResource, Issue
from sokhoe.fhir.resources import format_instant
from sokhoe.interop.claims.sources import FacilityRef
from sokhoe.messages import Message
from sokhoe.registry.terminology import ICD10_VALUE_SET, expand
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM, icd10_entry, icd10_index, is_recordable

LOINC: Final = "http://loinc.org"
SUMMARY_SECTIONS: Final = (
    ("history", "Medical history and course", "11348-0", "History of Past illness Narrative"),
    ("results", "Significant results", "30954-2", "Relevant diagnostic tests/laboratory data"),
    ("treatment", "Treatment", "18776-5", "Plan of care note"),
    ("next_steps", "Next steps and advice", "69730-0", "Instructions"),
)
"""The 4 parts of the visit summary (QĐ 31/QĐ-BYT 2026, record summary; LOINC section codes)."""
NOT_MAIN_CHAPTERS: Final = frozenset({"XX"})
"""ICD-10 chapters never coded as the main diagnosis: external causes (V01–Y98) describe how an
injury happened, the injury is the diagnosis. Circular 06/2026 lists more codes (asterisk
codes, codes only for causes of death); unconfirmed here: keep the list in one place."""
NOT_MAIN_CODES: Final = frozenset({"G01", "G02", "G05", "G07", "G63", "H32", "I32", "I39", "M01"})
"""Asterisk (manifestation) categories sampled from ICD-10's dagger–asterisk convention: they
are recorded beside the dagger code, never as the main diagnosis. Unconfirmed: incomplete."""


@dataclass(frozen=True)
class Choice:
    code: str
    display: str
    display_vi: str | None


def diagnosis_choices(text: str, count: int = 10) -> list[Choice]:
    """ICD-10 codes whose code or English/Vietnamese title contains ``text`` (accents and case
    ignored: ``tang huyet ap`` finds I10)."""
    if len(text.strip()) < 2:
        return []
    found = expand(ICD10_VALUE_SET, text, 0, count)
    return [Choice(r.code, r.display, r.display_vi) for r in found.contains]


def may_be_main(code: str) -> bool:
    entry = icd10_entry(code)
    if entry is None:
        return False
    index = icd10_index()
    while entry.parent is not None:  # up to the chapter
        entry = index[entry.parent]
    category = code.upper().split(".")[0]
    return entry.code not in NOT_MAIN_CHAPTERS and category not in NOT_MAIN_CODES


@dataclass
class Closing:
    """The checked draft, or what is wrong with it (each problem names its field)."""

    checked: vitals.Checked
    diagnoses: list[str]
    problems: list[vitals.Problem] = field(default_factory=list)


def check(draft: dict[str, Any]) -> Closing:
    """Everything wrong with ``draft`` for closing the visit."""
    checked = vitals.check(draft.get("vitals", {}), bool(draft.get("confirmed")))
    problems = list(checked.problems)
    codes = [str(c).strip().upper() for c in draft.get("diagnoses", []) if str(c).strip()]
    if not codes:
        problems.append(vitals.Problem("diagnosis", "Add at least one diagnosis (ICD-10)"))
    if str(draft.get("refer_to", "")).strip() and not str(draft.get("refer_reason", "")).strip():
        problems.append(vitals.Problem("refer_reason", "Write why the patient is referred"))
    for n, code in enumerate(codes):
        if not is_recordable(code):
            problems.append(
                vitals.Problem("diagnosis", Message("%(code)s is not an ICD-10 code", code=code))
            )
        elif n == 0 and not may_be_main(code):
            problems.append(
                vitals.Problem(
                    "diagnosis", Message("%(code)s may not be the main diagnosis", code=code)
                )
            )
    return Closing(checked, codes, problems)


def _condition(visit: Visit, code: str, when: str, asserter: dict[str, Any]) -> dict[str, Any]:
    entry = icd10_entry(code)
    display = entry.display if entry is not None else code
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": ICD10_SYSTEM, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{visit.patient_id}"},
        "encounter": {"reference": f"Encounter/{visit.id}"},
        "recordedDate": when,
        "asserter": asserter,
    }


def _summary(
    visit: Visit, draft: dict[str, Any], when: str, author: dict[str, Any]
) -> dict[str, Any] | None:
    summary = draft.get("summary") or {}
    sections = [
        {
            "title": title,
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "text": {"status": "generated", "div": _div(str(summary.get(key, "")))},
        }
        for key, title, code, display in SUMMARY_SECTIONS
        if str(summary.get(key, "")).strip()
    ]
    notes = str(draft.get("notes", "")).strip()
    if notes:
        sections.insert(
            0,
            {
                "title": "Examination",
                "code": {
                    "coding": [
                        {
                            "system": LOINC,
                            "code": "29545-1",
                            "display": "Physical findings Narrative",
                        }
                    ]
                },
                "text": {"status": "generated", "div": _div(notes)},
            },
        )
    if not sections:
        return None
    return {
        "resourceType": "Composition",
        "status": "final",
        "type": {
            "coding": [{"system": LOINC, "code": "34133-9", "display": "Summary of episode note"}]
        },
        "subject": {"reference": f"Patient/{visit.patient_id}"},
        "encounter": {"reference": f"Encounter/{visit.id}"},
        "date": when,
        "author": [author],
        "title": "Visit summary",
        "section": sections,
    }


def _div(text: str) -> str:
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(text)}</div>'


def _follow_up(visit: Visit, day: str, author: dict[str, Any]) -> dict[str, Any]:
    try:
        when = date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidRequest(Message("The follow-up date must be a date"), "follow_up") from exc
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "description": "Follow-up visit",
        "start": f"{when.isoformat()}T08:00:00+07:00",
        "end": f"{when.isoformat()}T08:15:00+07:00",
        "participant": [
            {"actor": {"reference": f"Patient/{visit.patient_id}"}, "status": "accepted"},
            {"actor": author, "status": "accepted"},
        ],
        "supportingInformation": [{"reference": f"Encounter/{visit.id}"}],
    }


def close(
    repo: GuardedRepository,
    visit: Visit,
    draft: dict[str, Any],
    closing: Closing,
    now: datetime,
    author: dict[str, Any],
    referral: tuple[FacilityRef, FacilityRef] | None = None,
) -> list[str]:
    """Write the draft, as :func:`check` found it (``closing``), into the record and finish the
    visit; returns ``Type/id`` of what was written (the Encounter first). ``referral`` is
    (this facility, the one the patient is referred to) when the draft refers them.
    :class:`InvalidResource` lists every problem when ``closing`` has any."""
    if closing.problems:
        raise InvalidResource([Issue.of("invariant", p.message, p.field) for p in closing.problems])
    when = format_instant(now)
    written: list[str] = []
    with repo.transaction() as tx:
        stored = tx.read("Encounter", visit.id)
        if stored is None or stored.content is None:
            raise InvalidRequest(Message("Encounter/%(id)s vanished", id=visit.id))
        performer = [author]
        for obs in vitals.observations(
            closing.checked, visit.patient_id, visit.id, when, performer
        ):
            written.append(_created(repo, tx, obs))
        diagnosis = []
        main: str | None = None
        for rank, code in enumerate(closing.diagnoses, start=1):
            ref = _created(repo, tx, _condition(visit, code, when, author))
            main = main or ref
            written.append(ref)
            diagnosis.append({"condition": {"reference": ref}, "rank": rank})
        if referral is not None:
            sent = referrals.referral(
                patient_id=visit.patient_id,
                patient_name=str((stored.content.get("subject") or {}).get("display", "")),
                encounter_id=visit.id,
                sender=referral[0],
                receiver=referral[1],
                reason=str(draft.get("refer_reason", "")).strip(),
                diagnosis=main,
                when=when,
            )
            written.append(_created(repo, tx, sent))
        summary = _summary(visit, draft, when, author)
        if summary is not None:
            written.append(_created(repo, tx, summary))
        if str(draft.get("follow_up", "")).strip():
            written.append(_created(repo, tx, _follow_up(visit, str(draft["follow_up"]), author)))
        enc = dict(stored.content)
        enc["status"] = "finished"
        enc["period"] = {**(enc.get("period") or {}), "end": when}
        enc["diagnosis"] = diagnosis
        if str(draft.get("reason", "")).strip():
            enc["reasonCode"] = [{"text": str(draft["reason"]).strip()}]
        enc["participant"] = [{"individual": author}]
        repo.update(enc, "Encounter", visit.id, tx=tx)
    return [f"Encounter/{visit.id}", *written]


def _created(repo: GuardedRepository, tx: Any, resource: dict[str, Any]) -> str:
    outcome = repo.create(resource, str(resource["resourceType"]), tx=tx)
    return f"{outcome.resource.resource_type}/{outcome.resource.id}"


__all__ = [
    "SUMMARY_SECTIONS",
    "Choice",
    "Closing",
    "check",
    "close",
    "diagnosis_choices",
    "may_be_main",
]
