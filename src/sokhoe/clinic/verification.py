"""The station's check of what citizens declared themselves (*xác nhận thông tin tự khai*).

A resident declares allergies, illnesses, family history, habits and vaccinations on their
phone (``portal/selfdeclared.py`` is the contract: the ``self-declared`` tag, the
``verification`` tag and each type's own status field). Until a clinician who may see the
person's record checks it, every page shows it as the person's word, not a finding. This module
records each decision (:func:`decide`; what waits is listed by ``clinic/declarations.py``):

- **confirm**: the item becomes ``confirmed`` (tag and native status);
- **correct**: the clinician changes the key field (the substance, the diagnosis, the vaccine,
  the value), and the corrected item is ``confirmed``;
- **reject**: the item becomes ``refuted`` (an Observation or a family history is then
  ``entered-in-error``, so no summary counts it).

Each decision is one transaction and is signed the way a visit is (``clinic/signing.py``): the
clinician's authenticator code (or certificate) over the canonical form of the new version,
recorded as a signature Provenance with activity ``verify`` whose target is the version written
and whose ``entity`` (role ``revision``) is the version decided, naming the staff member, their
role and facility, and the decision. The door then freezes the decided version: a second
decision, or the citizen editing a confirmed item, is refused.

Who may decide is the door's answer to "may this caller see this person's record", narrowed to
doctors and nurses: the facilities with a care relationship, and the ward's commune station
(its clinicians read the residents' records, ``clinic/stations.py``). A receptionist, or a
doctor of a facility that may not see the person, is refused and nothing changes.
See: https://hl7.org/fhir/R4/provenance.html and https://hl7.org/fhir/R4/resource.html#tag
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.canonical import Canonical, canonical_form
from sokhoe.clinic.declarations import KINDS, VERIFY_ROLES
from sokhoe.clinic.provenance import Agent, signature_provenance
from sokhoe.clinic.signing import Evidence, Signer, organization_reference, who_signs
from sokhoe.errors import Conflict, FhirError, Forbidden, InvalidRequest, PreconditionFailed
from sokhoe.fhir.repository import validated
from sokhoe.fhir.resources import with_meta
from sokhoe.messages import Message, message_of
from sokhoe.portal.selfdeclared import Verification, mark, verification
from sokhoe.store.ports import StoreSession

Decision = Literal["confirm", "correct", "reject"]
DECISIONS: Final = ("confirm", "correct", "reject")
OWNS: Final = frozenset({"signature"})
DECISION_EXTENSION: Final = "https://fhir.sokhoe.vn/StructureDefinition/verification-decision"
"""On the Provenance: ``confirm``, ``correct`` or ``reject``."""


class SignatureRefused(Forbidden):
    """The signer refused (a wrong or spent code, an expired certificate): no decision of the
    form can be signed, so the others are not tried."""


@dataclass(frozen=True)
class Decided:
    """What a decision wrote: the new version of the item and its signature."""

    resource: dict[str, Any]
    provenance: dict[str, Any]


def decided(resource: dict[str, Any], decision: str, correction: str | None) -> dict[str, Any]:
    """``resource`` as the decision leaves it (tag and native status; the corrected key)."""
    kind = KINDS[str(resource["resourceType"])]
    state: Verification = "refuted" if decision == "reject" else "confirmed"
    changed = dict(mark(resource, state))
    changed["meta"] = {
        k: v for k, v in changed["meta"].items() if k not in ("versionId", "lastUpdated")
    }
    if decision == "correct":
        text = (correction or "").strip()
        if not text:
            raise InvalidRequest(Message("Write the correction before choosing Correct"), "value")
        if text == kind.key(resource):
            raise InvalidRequest(
                Message("The correction changes nothing: confirm the item instead"), "value"
            )
        kind.set_key(changed, text)
    kind.set_status(changed, state)
    return changed


def _refuse(repo: GuardedRepository, patient_id: str | None, refused: Forbidden) -> None:
    repo.record_refusal("operation", [patient_id] if patient_id else [], str(refused))


def decide(
    repo: GuardedRepository,
    resource_type: str,
    resource_id: str,
    decision: str,
    signer: Signer,
    *,
    version: int | None = None,
    correction: str | None = None,
) -> Decided:
    """Confirm, correct or reject the self-declared ``resource_type/resource_id``, signed by
    ``signer``; ``version`` is the version the clinician looked at (a changed item is refused
    rather than decided unseen). One transaction: the new version and its Provenance."""
    if decision not in DECISIONS:
        raise InvalidRequest(Message("Choose confirm, correct or reject"), "decision")
    if resource_type not in KINDS:
        raise InvalidRequest(
            Message("%(type)s is not something a citizen declares", type=resource_type), "type"
        )
    current = repo.read(resource_type, resource_id)  # refused when the caller may not see it
    content = current.content or {}
    patient_id = current.patient_id
    state = verification(content)
    if state is None or patient_id is None:
        raise InvalidRequest(
            Message(
                "%(ref)s was recorded by a facility, not declared by the person: only the "
                "facility that wrote it changes it",
                ref=f"{resource_type}/{resource_id}",
            )
        )
    if state == "unconfirmed" and KINDS[resource_type].withdrawn(content):
        raise Conflict(
            Message(
                "%(ref)s was taken back by the person: there is nothing to decide",
                ref=f"{resource_type}/{resource_id}",
            )
        )
    if state != "unconfirmed":
        raise Conflict(
            Message(
                "%(ref)s was already decided (%(state)s)",
                ref=f"{resource_type}/{resource_id}",
                state=Message("confirmed") if state == "confirmed" else Message("refuted"),
            )
        )
    if version is not None and version != current.version_id:
        raise Conflict(
            Message(
                "%(ref)s changed after you looked at it; look again and decide",
                ref=f"{resource_type}/{resource_id}",
            )
        )
    repo.authorise_operation("verify", resource_type, ["read"], [patient_id], VERIFY_ROLES)
    if repo.principal.kind == "staff" and signer.account not in (None, repo.principal.subject):
        refused = Forbidden(Message("A clinician signs with their own credentials only"))
        _refuse(repo, patient_id, refused)
        raise refused
    changed = decided(content, decision, correction)
    validated(changed, resource_type)
    when = repo.clock()
    signed = canonical_form([with_meta(changed, resource_id, current.version_id + 1, when)])
    try:
        evidence = signer.sign(signed.digest, when)
    except Forbidden as refused:
        _refuse(repo, patient_id, refused)
        raise SignatureRefused(message_of(refused)) from refused
    who = who_signs(repo)
    revised = f"{resource_type}/{resource_id}/_history/{current.version_id}"
    with repo.operation(
        "verify",
        resource_type=resource_type,
        interactions=["read"],
        patients=[patient_id],
        roles=VERIFY_ROLES,
        owns=OWNS,
    ) as tx:
        try:
            written = repo.update(
                changed, resource_type, resource_id, if_match=f'W/"{current.version_id}"', tx=tx
            )
        except PreconditionFailed as exc:
            raise Conflict(
                Message(
                    "%(ref)s changed after you looked at it; look again and decide",
                    ref=f"{resource_type}/{resource_id}",
                )
            ) from exc
        stored = written.resource.content or {}
        if canonical_form([stored]).digest != signed.digest:  # pragma: no cover - same bytes
            raise Conflict(Message("The item changed while it was being signed; decide again"))
        provenance = _provenance(repo, tx, signed, evidence, who, when, revised, decision)
        item = repo.prepare(provenance, provenance["id"], 1, "POST", None, repo.clock())
        item.patient_id = patient_id  # R4 finds a Provenance's patient only among its targets
        tx.write([item])
    return Decided(stored, item.content or provenance)


@dataclass(frozen=True)
class Choice:
    """One decision a clinician chose on the chart's form."""

    resource_type: str
    id: str
    version: int | None
    decision: str
    correction: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one :class:`Choice`: written, or refused and why."""

    choice: Choice
    decided: Decided | None
    refused: FhirError | None


def decide_many(repo: GuardedRepository, choices: list[Choice], signer: Signer) -> list[Outcome]:
    """Each choice decided in its own transaction and signed on its own (a ``batch`` signer
    lets one authenticator code confirm the form); a refused one changes nothing and does
    not stop the others. A refusal of the signer itself (a wrong code) stops them all."""
    outcomes: list[Outcome] = []
    for choice in choices:
        try:
            done = decide(
                repo,
                choice.resource_type,
                choice.id,
                choice.decision,
                signer,
                version=choice.version,
                correction=choice.correction,
            )
        except FhirError as exc:
            outcomes.append(Outcome(choice, None, exc))
            if isinstance(exc, SignatureRefused):
                break
            continue
        outcomes.append(Outcome(choice, done, None))
    return outcomes


def _provenance(
    repo: GuardedRepository,
    tx: StoreSession,
    signed: Canonical,
    evidence: Evidence,
    who: dict[str, Any],
    when: datetime,
    revised: str,
    decision: str,
) -> dict[str, Any]:
    facility = repo.principal.facility
    agent = Agent(
        who, repo.principal.role, organization_reference(repo, tx, facility) if facility else None
    )
    provenance = signature_provenance("verify", signed, evidence, agent, when, revised=[revised])
    provenance["extension"].append({"url": DECISION_EXTENSION, "valueCode": decision})
    validated(provenance, "Provenance")
    return provenance


__all__ = [
    "DECISIONS",
    "Choice",
    "Decided",
    "Decision",
    "Outcome",
    "SignatureRefused",
    "decide",
    "decide_many",
    "decided",
]
