"""One visit of the health book (``/portal/book/visits/{id}``): what was measured and found,
the results in plain words, what was prescribed, the summary the doctor wrote and whether the
visit was signed.

The visit and everything that names it are read with one search through the citizen's door
(``Encounter?_id=…&patient=…&_revinclude=…``): the ``patient`` parameter keeps it to the
profile shown (and the records merged with it), and the door to what the citizen may see, so
a guessed id of someone else's visit, or of a child's visit while the parent's own book is
shown, finds nothing — the same "not found" as an id that does not exist.
See: https://hl7.org/fhir/R4/search.html#revinclude
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from sokhoe.access.guard import GuardedRepository
from sokhoe.access.signed import is_signature
from sokhoe.clinic.printing import lookup_code, plain_text
from sokhoe.clinic.provenance import read_signature
from sokhoe.clinic.records import text_of
from sokhoe.clinic.referrals import REFERRAL
from sokhoe.clinic.vitals import BLOOD_PRESSURE, BMI
from sokhoe.errors import NotFound
from sokhoe.fhir.patient_links import linked_patient_ids
from sokhoe.fhir.references import codings, reference_id
from sokhoe.messages import Message
from sokhoe.portal.book import (
    CLOSED,
    Entry,
    VisitRow,
    diagnoses_of,
    visit_kind,
)
from sokhoe.portal.results import PLAIN_NAMES, Result, explain
from sokhoe.portal.sources import Facilities, facilities
from sokhoe.portal.words import N_, SECTIONS
from sokhoe.store.ports import StoredResource

PARTS: Final = (
    "Observation:encounter",
    "Condition:encounter",
    "MedicationRequest:encounter",
    "Composition:encounter",
    "ImagingStudy:encounter",
    "Procedure:encounter",
    "ServiceRequest:encounter",
    "Appointment:supporting-info",
    "Provenance:target",
)
"""What names a visit (as ``clinic/signed_visit.py`` gathers a visit's record), and the
signatures that cover it."""
VITAL_SIGNS: Final = "vital-signs"
VITAL_ORDER: Final = [
    PLAIN_NAMES[code]
    for code in (BLOOD_PRESSURE[0], "8867-4", "8310-5", "59408-5", "9279-1", "8302-2", "29463-7")
] + [PLAIN_NAMES[BMI[0]]]
"""Vital signs in the order the clinic's form asks for them."""
METHODS: Final = {
    "totp-confirmation": N_("electronic confirmation (authenticator code)"),
    "pkcs12-rsa-sha256": N_("digital signature"),
}


@dataclass(frozen=True)
class Signature:
    signer: str
    when: str | None
    method: str
    lookup_code: str
    """The first 48 bits of the signed digest, as the clinic prints it (``XXXX-XXXX-XXXX``)."""


@dataclass
class VisitDetail:
    row: VisitRow
    end: str | None
    patient: dict[str, Any] | None
    facility_address: str = ""
    vitals: list[Result] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)
    """(title: a message id of :data:`SECTIONS` or the record's, text) of the visit summary."""
    medicines: list[Entry] = field(default_factory=list)
    imaging: list[Entry] = field(default_factory=list)
    procedures: list[Entry] = field(default_factory=list)
    follow_up: str | None = None
    referred_to: str | None = None
    signature: Signature | None = None
    shown: list[str] = field(default_factory=list)
    """``Type/id`` of every resource the page shows (a printout names them in its audit)."""


def _not_found() -> NotFound:
    return NotFound(Message("This visit is not in this health book"))


def read_visit(
    repo: GuardedRepository, patient_id: str, encounter_id: str, lang: str = "vi"
) -> VisitDetail:
    """The visit ``encounter_id`` of ``patient_id``'s book (see the module's docstring);
    :class:`NotFound` when the book has no such visit."""
    with repo.snapshot() as tx:
        people = linked_patient_ids(tx, patient_id)
    params = [
        ("_id", encounter_id),
        ("patient", ",".join(f"Patient/{p}" for p in people)),
        ("_include", "Encounter:patient"),
        ("_include", "Encounter:diagnosis"),
        *(("_revinclude", part) for part in PARTS),
    ]
    page = repo.search(repo.parse_query("Encounter", params, strict=True))
    encounter = next((m for m in page.matches if m.id == encounter_id and m.content), None)
    if encounter is None or (encounter.content or {}).get("status") in CLOSED:
        raise _not_found()
    parts = [r for r in page.included if r.content is not None]
    known = facilities(repo, [encounter, *parts])
    return detail(encounter, parts, known, lang)


def detail(
    encounter: StoredResource, parts: list[StoredResource], known: Facilities, lang: str
) -> VisitDetail:
    """The visit of ``encounter`` from the resources that name it (``parts``)."""
    enc = encounter.content or {}
    live = [p for p in parts if (p.content or {}).get("status") not in CLOSED]
    conditions = {p.id: p.content or {} for p in live if p.resource_type == "Condition"}
    signatures = sorted(
        (p.content or {} for p in parts if is_signature(p.content) and _covers(p, encounter)),
        key=lambda p: str(p.get("recorded", "")),
    )
    row = VisitRow(
        id=encounter.id,
        start=(enc.get("period") or {}).get("start"),
        facility=known.visit_facility(enc) or known.name_of_code(encounter.owner),
        kind=visit_kind(enc),
        reason=text_of((enc.get("reasonCode") or [{}])[0]),
        diagnoses=diagnoses_of(enc, conditions, lang),
        signed=bool(signatures),
        status=str(enc.get("status", "")),
    )
    patient = next((p.content for p in parts if p.resource_type == "Patient"), None)
    org_id = reference_id(enc.get("serviceProvider"), "Organization")
    found = VisitDetail(row, (enc.get("period") or {}).get("end"), patient)
    found.facility_address = _address(known.by_id.get(org_id or "") or {})
    found.shown = [f"Encounter/{encounter.id}"]
    for part in sorted(live, key=lambda p: (p.resource_type, _when(p.content or {}))):
        _add(found, part, known)
    found.vitals.sort(key=lambda r: VITAL_ORDER.index(r.name) if r.name in VITAL_ORDER else 99)
    if signatures:
        recorded = read_signature(signatures[-1])
        found.signature = Signature(
            recorded.signer or "",
            recorded.when,
            METHODS.get(recorded.method or "", recorded.method or ""),
            lookup_code(recorded.sha256 or ""),
        )
        found.shown.append(f"Provenance/{signatures[-1].get('id')}")
    return found


def _covers(provenance: StoredResource, encounter: StoredResource) -> bool:
    targets = (provenance.content or {}).get("target", [])
    return any(reference_id(t, "Encounter") == encounter.id for t in targets)


def _when(content: dict[str, Any]) -> str:
    return str(
        content.get("effectiveDateTime")
        or content.get("started")
        or content.get("authoredOn")
        or content.get("date")
        or ""
    )


def _add(found: VisitDetail, part: StoredResource, known: Facilities) -> None:
    """Put one resource naming the visit where the page shows it."""
    content = part.content or {}
    rtype = part.resource_type
    ref = f"{rtype}/{part.id}"
    source = known.source(part)
    if rtype == "Observation":
        vital = any(c.get("code") == VITAL_SIGNS for c in codings(content.get("category")))
        result = explain(content, source, vital=vital, reference=ref)
        if result is None:
            return
        (found.vitals if vital else found.results).append(result)
    elif rtype == "Composition":
        for section in content.get("section", []):
            code = next((c.get("code") for c in codings(section.get("code"))), None)
            title = SECTIONS.get(str(code)) or str(section.get("title", ""))
            text = plain_text(str((section.get("text") or {}).get("div", "")))
            if text:
                found.sections.append((title, text))
    elif rtype == "MedicationRequest":
        dosage = str(((content.get("dosageInstruction") or [{}])[0]).get("text", ""))
        drug = text_of(content.get("medicationCodeableConcept"))
        found.medicines.append(Entry(drug, source, dosage, content.get("authoredOn"), ref))
    elif rtype == "ImagingStudy":
        found.imaging.append(
            Entry(str(content.get("description") or ""), source, "", content.get("started"), ref)
        )
    elif rtype == "Procedure":
        found.procedures.append(Entry(text_of(content.get("code")), source, "", None, ref))
    elif rtype == "Appointment" and content.get("start"):
        found.follow_up = str(content["start"])
    elif rtype == "ServiceRequest" and _is_referral(content):
        performer = content.get("performer") or [{}]
        found.referred_to = str(performer[0].get("display", "")) or None
    else:
        return
    found.shown.append(ref)


def _is_referral(content: dict[str, Any]) -> bool:
    return any(c.get("code") == REFERRAL["code"] for c in codings(content.get("category")))


def _address(resource: dict[str, Any]) -> str:
    for address in resource.get("address", []):
        if address.get("text"):
            return str(address["text"])
        parts = [*address.get("line", []), address.get("city"), address.get("state")]
        return ", ".join(str(p) for p in parts if p)
    return ""


def parts_of(record_parts: list[StoredResource], encounter_id: str) -> list[StoredResource]:
    """The resources of ``record_parts`` that name the visit ``encounter_id`` (for the printed
    book, which has the whole record already)."""
    out = []
    for part in record_parts:
        content = part.content or {}
        refs = [content.get("encounter"), content.get("context")]
        refs += content.get("supportingInformation", [])
        refs += content.get("target", []) if part.resource_type == "Provenance" else []
        if any(reference_id(r, "Encounter") == encounter_id for r in refs):
            out.append(part)
    return out


__all__ = [
    "METHODS",
    "PARTS",
    "Signature",
    "VisitDetail",
    "detail",
    "parts_of",
    "read_visit",
]
