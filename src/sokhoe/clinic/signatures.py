"""What the pages show of signatures: which visits are signed, and what a signature covers.

The queue's "done" state, the chart's signed mark and the printouts all ask the same question
— which signature Provenances name this visit — through the caller's door, so a facility sees
the signatures of the visits it may see and no others. Before signing, :func:`review` shows the
clinician exactly the resources the signature will cover (the same gathering and canonical
form :func:`~sokhoe.clinic.signing.sign_visit` uses), with the SHA-256 the page sends back: a
visit changed after the review is refused rather than signed unseen.
See: https://hl7.org/fhir/R4/provenance.html
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.signed import AUTHOR_SIGNATURE, SIGNATURE_TYPE_SYSTEM, is_signature
from sokhoe.clinic.canonical import canonical_form
from sokhoe.clinic.records import condition_text, find, text_of
from sokhoe.clinic.signed_visit import SignedVisit, load_visit, require_signer
from sokhoe.clinic.signing import SIGN_ROLES
from sokhoe.clinic.vitals import BY_KEY, read_back
from sokhoe.fhir.references import reference_id

_SIGNATURE = ("signature-type", f"{SIGNATURE_TYPE_SYSTEM}|{AUTHOR_SIGNATURE}")


def signatures(repo: GuardedRepository, encounter_ids: Sequence[str]) -> dict[str, list[Any]]:
    """The signature Provenances of each visit, oldest first (one search)."""
    wanted = sorted(set(encounter_ids))
    if not wanted:
        return {}
    found = find(
        repo,
        "Provenance",
        [("target", ",".join(f"Encounter/{i}" for i in wanted)), _SIGNATURE, ("_sort", "recorded")],
        max(100, 4 * len(wanted)),
    )
    out: dict[str, list[Any]] = defaultdict(list)
    for provenance in found:
        if not is_signature(provenance):
            continue
        for target in provenance.get("target", []):
            enc = reference_id(target, "Encounter")
            if enc in wanted:
                out[enc].append(provenance)
    return dict(out)


@dataclass(frozen=True)
class Part:
    """One resource the signature covers, as a person reads it: ``label`` is either an English
    message the page translates (a vital sign) or text already in the reader's language."""

    kind: str
    """The resource type (the page names it in the reader's language)."""
    label: str
    value: str
    reference: str


@dataclass(frozen=True)
class Review:
    visit: SignedVisit
    sha256: str
    parts: list[Part]


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def describe(resource: dict[str, Any], lang: str = "vi") -> tuple[str, str]:
    """(label, value) a clinician recognises: the coded thing and its value (ICD-10 titles in
    Vietnamese for ``lang`` vi, vital signs by the form's own labels)."""
    rtype = resource.get("resourceType")
    if rtype == "Observation":
        read = read_back(resource)
        if "systolic" in read and "diastolic" in read:
            return (
                "Blood pressure",
                f"{_number(read['systolic'])}/{_number(read['diastolic'])} mmHg",
            )
        if read:
            key, value = next(iter(read.items()))
            vital = BY_KEY.get(key)
            if vital is None:  # the body mass index, computed from height and weight
                return "BMI", _number(value)
            return vital.label, f"{_number(value)} {vital.unit}"
        q = resource.get("valueQuantity") or {}
        return text_of(resource.get("code")), f"{q.get('value', '')} {q.get('unit', '')}".strip()
    if rtype == "Condition":
        return condition_text(resource, lang), ""
    if rtype == "Encounter":
        reason = text_of((resource.get("reasonCode") or [{}])[0])
        return "Reason for the visit", reason
    if rtype == "Composition":
        titles = [str(s.get("title", "")) for s in resource.get("section", []) if s.get("title")]
        return "Visit summary", "; ".join(titles)
    if rtype == "Appointment":
        start = str(resource.get("start", ""))[:10]
        return "Follow-up date", f"{start[8:10]}/{start[5:7]}/{start[:4]}" if start else ""
    if rtype == "ServiceRequest":
        performer = ", ".join(str(p.get("display", "")) for p in resource.get("performer", []))
        return text_of(resource.get("code")), performer
    if rtype == "MedicationRequest":
        dosage = str(((resource.get("dosageInstruction") or [{}])[0]).get("text", ""))
        code = (resource.get("groupIdentifier") or {}).get("value", "")
        return text_of(resource.get("medicationCodeableConcept")), f"{dosage} ({code})"
    return text_of(resource.get("code")) or str(resource.get("id")), ""


def review(repo: GuardedRepository, encounter_id: str, lang: str = "vi") -> Review:
    """What signing the visit now would cover; only its facility's signers may look (the
    review is a read of the whole visit, audited as such)."""
    with repo.snapshot() as tx:
        visit = load_visit(repo, tx, encounter_id)
    repo.authorise_operation("sign", "Encounter", ["read"], [], SIGN_ROLES)
    require_signer(repo, visit)
    contents = visit.contents
    refs = [f"{c['resourceType']}/{c['id']}" for c in contents]
    repo.record_access("read", [visit.patient_id], refs, reason="review before signing")
    parts = [
        Part(str(c["resourceType"]), *describe(c, lang), ref)
        for c, ref in zip(contents, refs, strict=True)
    ]
    return Review(visit, canonical_form(contents).sha256, parts)


__all__ = ["Part", "Review", "describe", "review", "signatures"]
