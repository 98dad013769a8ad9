"""The self-declaration of one person's health, kept step by step in their record.

The answers live in one ``QuestionnaireResponse`` per person (``in-progress`` while they
answer, so they can stop and go on another day or on another phone); each screen saved is a
new version of it. Sending it (:func:`submit`) marks it ``completed`` (``amended`` when sent
again after changes) and, in the same transaction, writes what it says into the record as
self-declared, unconfirmed items (``portal/extraction.py``): either everything is written, or
nothing is.

Who may declare: a signed-in citizen, for their own record or for a child a facility
confirmed them guardian of (``Principal.patient_ids`` as the portal refreshes it). A citizen's
token only reads (``patient/*.rs``), so these writes are operations of the door
(``$declare``), authorised on that record, and this module itself keeps them to what a
declaration may write: the response about that person, and items in that person's record
that this declaration made and the station has not decided on yet.
See: https://hl7.org/fhir/R4/questionnaireresponse.html
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.otp import normalise_phone
from sokhoe.errors import Conflict, Forbidden, InvalidRequest
from sokhoe.fhir.resources import format_instant, new_id
from sokhoe.messages import Message
from sokhoe.portal.extraction import ITEM_SYSTEM, TYPES, Context, Extracted, extract
from sokhoe.portal.patient import apply_about, is_self_declared_patient
from sokhoe.portal.questionnaire import CANONICAL, URL, VERSIONS, Item, Section, applies
from sokhoe.portal.sections import SECTIONS
from sokhoe.portal.selfdeclared import is_self_declared, verification
from sokhoe.store.ports import StoredResource, StoreSession

DONE: Final = "https://fhir.sokhoe.vn/StructureDefinition/declaration-section-done"
"""``QuestionnaireResponse.extension`` (valueCode, repeated): the sections finished."""
SUBMITTED: Final = "https://fhir.sokhoe.vn/StructureDefinition/declaration-submitted"
"""``QuestionnaireResponse.extension`` (valueDateTime): when it was last sent."""
OPERATION: Final = "declare"
DATES: Final = ("recordedDate", "effectiveDateTime", "recorded", "date")
"""Dates an extraction stamps: kept from the item it updates, so an unchanged answer sent
again makes no new version."""

Translate = Callable[[str], str]


@dataclass
class Draft:
    """Where one person's declaration stands."""

    patient_id: str
    qr_id: str | None = None
    status: str | None = None
    """None before anything was saved; then the QuestionnaireResponse's status."""
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: frozenset[str] = frozenset()
    submitted: str | None = None


@dataclass(frozen=True)
class Submission:
    written: dict[str, int]
    """Items created or changed, by resource type."""
    withdrawn: int
    kept: int
    """Items the station had already decided on, left as the station left them."""


# -- answers <-> QuestionnaireResponse items -------------------------------------------------


def _answer(item: Item, value: Any, translate: Translate) -> dict[str, Any]:
    if item.kind == "boolean":
        return {"valueBoolean": value}
    if item.kind == "choice":
        option = item.option(value)
        if option is None:
            raise InvalidRequest(Message("Select one of the answers shown"), item.link)
        return {"valueCoding": option.coding(translate)}
    if item.kind == "integer":
        return {"valueInteger": value}
    if item.kind == "date":
        return {"valueDate": value}
    if item.kind == "attachment":
        return {"valueAttachment": value}
    return {"valueString": value}


def to_items(
    items: Sequence[Item], answers: dict[str, Any], translate: Translate
) -> list[dict[str, Any]]:
    """QuestionnaireResponse items for ``answers``, in the Questionnaire's order."""
    out: list[dict[str, Any]] = []
    for item in items:
        if item.link not in answers:
            continue
        value = answers[item.link]
        if item.kind == "group":
            for entry in value:
                out.append({"linkId": item.link, "item": to_items(item.items, entry, translate)})
            continue
        values = value if isinstance(value, list) else [value]
        out.append({"linkId": item.link, "answer": [_answer(item, v, translate) for v in values]})
    return out


def _value(answer: dict[str, Any]) -> Any:
    for key, value in answer.items():
        if key == "valueCoding":
            return value.get("code")
        if key.startswith("value"):
            return value
    return None


def from_items(items: Sequence[Item], found: list[dict[str, Any]]) -> dict[str, Any]:
    """``answers`` back from QuestionnaireResponse items (unknown links are ignored)."""
    by_link = {i.link: i for i in items}
    out: dict[str, Any] = {}
    for node in found:
        item = by_link.get(str(node.get("linkId")))
        if item is None:
            continue
        if item.kind == "group":
            out.setdefault(item.link, []).append(from_items(item.items, node.get("item", [])))
            continue
        values = [_value(a) for a in node.get("answer", [])]
        values = [v for v in values if v is not None]
        if values:
            out[item.link] = values if item.repeats else values[0]
    return out


def _draft(patient_id: str, stored: StoredResource | None) -> Draft:
    if stored is None or stored.content is None:
        return Draft(patient_id)
    content = stored.content
    answers = {}
    for node in content.get("item", []):
        section = next((s for s in SECTIONS if s.link == node.get("linkId")), None)
        if section is not None:
            answers[section.link] = from_items(section.items, node.get("item", []))
    exts = content.get("extension", [])
    done = frozenset(str(e.get("valueCode")) for e in exts if e.get("url") == DONE)
    sent = next((str(e["valueDateTime"]) for e in exts if e.get("url") == SUBMITTED), None)
    return Draft(patient_id, stored.id, str(content.get("status")), answers, done, sent)


# -- who declares, and where ----------------------------------------------------------------


def _declarant(repo: GuardedRepository, patient_id: str) -> None:
    """Only a citizen, only for a record they hold (their own or a child's): say so plainly
    before the door refuses with its own reason."""
    who = repo.principal
    if who.kind != "citizen" or patient_id not in who.patient_ids:
        repo.record_refusal("operation", [patient_id], "$declare: not their record or ward's")
        raise Forbidden(
            Message("You can declare only for yourself or a child you are the guardian of")
        )


def _query(repo: GuardedRepository, patient_id: str) -> Any:
    return repo.parse_query(
        "QuestionnaireResponse",
        [
            ("subject", f"Patient/{patient_id}"),
            ("questionnaire", ",".join(f"{URL}|{v}" for v in VERSIONS)),
            ("_sort", "-_lastUpdated"),
            ("_count", "1"),
        ],
        strict=True,
    )


def _current(repo: GuardedRepository, tx: StoreSession, patient_id: str) -> StoredResource | None:
    found = tx.search(_query(repo, patient_id)).matches
    return found[0] if found else None


def load(repo: GuardedRepository, patient_id: str) -> Draft:
    """The person's declaration as saved (read through the caller's door)."""
    _declarant(repo, patient_id)
    found = repo.search(_query(repo, patient_id)).matches
    return _draft(patient_id, found[0] if found else None)


def _asserter(repo: GuardedRepository, tx: StoreSession, patient_id: str) -> dict[str, Any]:
    """Who says it: the person, or the guardian (their RelatedPerson) declaring for a child."""
    try:
        phone = normalise_phone(repo.principal.subject)
    except ValueError:
        phone = None
    if phone is not None:
        for row in tx.care([patient_id], [f"citizen:{phone}"]):
            if row.source_ref.startswith("RelatedPerson/"):
                return {"reference": row.source_ref}
    return {"reference": f"Patient/{patient_id}"}


def age_on(patient: dict[str, Any], today: date) -> int | None:
    born = str(patient.get("birthDate", ""))
    try:
        year = int(born[:4])
    except ValueError:
        return None
    month, day = (int(born[5:7]), int(born[8:10])) if len(born) >= 10 else (1, 1)
    return today.year - year - ((today.month, today.day) < (month, day))


def sections_for(patient: dict[str, Any], today: date) -> tuple[Section, ...]:
    """The sections asked of this person (pregnancies of women, tobacco not of a toddler)."""
    gender = patient.get("gender")
    age = age_on(patient, today)
    return tuple(s for s in SECTIONS if applies(s, str(gender) if gender else None, age))


# -- saving a screen -----------------------------------------------------------------------


def save(
    repo: GuardedRepository,
    patient_id: str,
    section: Section,
    answers: dict[str, Any],
    *,
    done: bool,
    translate: Translate,
) -> Draft:
    """Keep ``section``'s ``answers`` (and whether it is finished) in the person's
    in-progress response; the other sections are left as they are."""
    _declarant(repo, patient_id)
    items = to_items(section.items, answers, translate)  # refuses unknown answers first
    with repo.operation(
        OPERATION,
        resource_type="QuestionnaireResponse",
        interactions=["read"],
        patients=[patient_id],
    ) as tx:
        stored = _current(repo, tx, patient_id)
        content = dict(stored.content or {}) if stored is not None else _new(repo, tx, patient_id)
        _check_ours(content, patient_id)
        node: dict[str, Any] = {"linkId": section.link}
        if items:  # a section answered with nothing (all left empty) is still done
            node["item"] = items
        order = [s.link for s in SECTIONS]
        kept = [n for n in content.get("item", []) if n.get("linkId") != section.link]
        content["item"] = sorted(
            [*kept, node], key=lambda n: order.index(n["linkId"]) if n["linkId"] in order else 99
        )
        finished = {
            str(e.get("valueCode")) for e in content.get("extension", []) if e.get("url") == DONE
        }
        finished = finished | {section.link} if done else finished - {section.link}
        others = [e for e in content.get("extension", []) if e.get("url") != DONE]
        extensions = [*others, *({"url": DONE, "valueCode": s} for s in order if s in finished)]
        if extensions:
            content["extension"] = extensions
        else:
            content.pop("extension", None)
        content["status"] = "in-progress"
        content["authored"] = format_instant(repo.clock())
        written = repo.update(content, "QuestionnaireResponse", content["id"], tx=tx).resource
    return _draft(patient_id, written)


def _new(repo: GuardedRepository, tx: StoreSession, patient_id: str) -> dict[str, Any]:
    who = _asserter(repo, tx, patient_id)
    return {
        "resourceType": "QuestionnaireResponse",
        "id": new_id(),
        "questionnaire": CANONICAL,
        "status": "in-progress",
        "subject": {"reference": f"Patient/{patient_id}"},
        "author": who,
        "source": who,
    }


def _check_ours(content: dict[str, Any], patient_id: str) -> None:
    """The response found is this person's declaration (found by subject and questionnaire;
    checked again on what is about to be written)."""
    subject = (content.get("subject") or {}).get("reference")
    questionnaire = str(content.get("questionnaire", "")).split("|")[0]
    if subject != f"Patient/{patient_id}" or questionnaire != URL:
        raise Conflict(Message("This declaration belongs to another record"))


# -- sending it ----------------------------------------------------------------------------


def submit(
    repo: GuardedRepository, patient_id: str, *, translate: Translate, today: date
) -> Submission:
    """Send the declaration: the response completed, and every item it says written into
    the record (created, or updated when sent before), in one transaction."""
    _declarant(repo, patient_id)
    with repo.operation(
        OPERATION,
        resource_type="QuestionnaireResponse",
        interactions=["read"],
        patients=[patient_id],
    ) as tx:
        stored = _current(repo, tx, patient_id)
        patient = tx.read("Patient", patient_id)
        if stored is None or stored.content is None or patient is None or patient.content is None:
            raise InvalidRequest(Message("Answer the questions before you send them"))
        content = dict(stored.content)
        _check_ours(content, patient_id)
        draft = _draft(patient_id, stored)
        missing = [s for s in sections_for(patient.content, today) if s.link not in draft.done]
        if missing:
            raise InvalidRequest(Message("Finish every section before you send your answers"))
        now = repo.clock()
        content["status"] = "amended" if draft.submitted else "completed"
        content["authored"] = format_instant(now)
        others = [e for e in content.get("extension", []) if e.get("url") != SUBMITTED]
        content["extension"] = [*others, {"url": SUBMITTED, "valueDateTime": format_instant(now)}]
        repo.update(content, "QuestionnaireResponse", stored.id, tx=tx)
        ctx = Context(patient_id, stored.id, _asserter(repo, tx, patient_id), now, translate)
        result = _write_items(repo, tx, ctx, extract(ctx, draft.answers))
        if is_self_declared_patient(patient.content):
            changed = apply_about(patient.content, draft.answers.get("about", {}))
            repo.update(changed, "Patient", patient_id, tx=tx)
    return result


def _existing(
    repo: GuardedRepository, tx: StoreSession, patient_id: str, qr_id: str
) -> dict[tuple[str, str], StoredResource]:
    """The items this declaration wrote before, by (type, identifier value)."""
    found: dict[tuple[str, str], StoredResource] = {}
    for rtype in TYPES:
        query = repo.parse_query(
            rtype,
            [
                ("patient", f"Patient/{patient_id}"),
                ("identifier", f"{ITEM_SYSTEM}|"),
                ("_count", "500"),
            ],
            strict=True,
        )
        for stored in tx.search(query).matches:
            for ident in (stored.content or {}).get("identifier", []):
                value = str(ident.get("value", ""))
                if ident.get("system") == ITEM_SYSTEM and value.startswith(f"{qr_id}#"):
                    found[(rtype, value)] = stored
    return found


def _write_items(
    repo: GuardedRepository, tx: StoreSession, ctx: Context, items: list[Extracted]
) -> Submission:
    before = _existing(repo, tx, ctx.patient_id, ctx.qr_id)
    written: dict[str, int] = {}
    kept = 0
    wanted = set()
    for item in items:
        key = (item.resource_type, item.identifier(ctx.qr_id))
        wanted.add(key)
        current = before.get(key)
        if current is None:
            repo.create(item.content, item.resource_type, tx=tx)
            written[item.resource_type] = written.get(item.resource_type, 0) + 1
            continue
        old = _ours(current, ctx.patient_id)
        if verification(old) != "unconfirmed":
            kept += 1  # the station decided: its record stands
            continue
        content = {**item.content, "id": current.id}
        for name in DATES:
            if name in content and name in old:
                content[name] = old[name]
        outcome = repo.update(content, item.resource_type, current.id, tx=tx)
        if outcome.resource.version_id != current.version_id:
            written[item.resource_type] = written.get(item.resource_type, 0) + 1
    withdrawn = 0
    for key, current in before.items():
        if key in wanted:
            continue
        old = _ours(current, ctx.patient_id)
        if verification(old) != "unconfirmed" or _is_withdrawn(old):
            continue
        repo.update(_withdrawn(old), current.resource_type, current.id, tx=tx)
        withdrawn += 1
    return Submission(written, withdrawn, kept)


def _ours(current: StoredResource, patient_id: str) -> dict[str, Any]:
    """An item about to be changed is a self-declared one of this person's record; anything
    else carrying the declaration's identifier is refused (and the whole sending with it)."""
    content = current.content or {}
    if current.patient_id != patient_id or not is_self_declared(content):
        raise Conflict(
            Message("An item of this declaration was changed by someone else; ask the station")
        )
    return content


_STATUS: Final = {
    "Observation": "status",
    "FamilyMemberHistory": "status",
    "Immunization": "status",
    "Procedure": "status",
}


def _is_withdrawn(content: dict[str, Any]) -> bool:
    rtype = str(content.get("resourceType"))
    if rtype in _STATUS:
        return content.get(_STATUS[rtype]) == "entered-in-error"
    codes = [c.get("code") for c in (content.get("verificationStatus") or {}).get("coding", [])]
    return "entered-in-error" in codes


def _withdrawn(content: dict[str, Any]) -> dict[str, Any]:
    """The item as its declarant took it back: entered-in-error (FHIR's own way of saying a
    record should not have been made); AllergyIntolerance and Condition then lose their
    clinical status (invariants ait-2 and con-5)."""
    out = dict(content)
    rtype = str(content.get("resourceType"))
    if rtype in _STATUS:
        out[_STATUS[rtype]] = "entered-in-error"
        return out
    system = next(
        (c.get("system") for c in (content.get("verificationStatus") or {}).get("coding", [])),
        None,
    )
    out["verificationStatus"] = {"coding": [{"system": system, "code": "entered-in-error"}]}
    out.pop("clinicalStatus", None)
    return out


__all__ = [
    "DONE",
    "SUBMITTED",
    "Draft",
    "Submission",
    "age_on",
    "from_items",
    "load",
    "save",
    "sections_for",
    "submit",
    "to_items",
]
