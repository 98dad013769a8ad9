"""Paper copies of a signed visit: the visit summary, the referral slip, the appointment slip.

Circular 13/2025/TT-BYT: a paper copy of an electronic record says it is one ("Bản giấy chuyển
đổi từ hồ sơ bệnh án điện tử"), names the system, carries a lookup code or QR, the time and who
printed it, and every print is logged. So a printout is made only of a signed visit; its lookup
code is the start of the SHA-256 the signature recorded (whoever holds the paper can compare it
with the verification the QR opens), and each print is an audit event (``print``) naming the
resources printed. Printed legal forms are always in Vietnamese, whatever the page language.
See: https://hl7.org/fhir/R4/auditevent.html
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

from sokhoe.access.guard import GuardedRepository
from sokhoe.clinic.drafts import own_visit
from sokhoe.clinic.prescription_forms import PRESCRIPTION_TITLES, child_of, form_of
from sokhoe.clinic.provenance import read_signature
from sokhoe.clinic.records import find, read, text_of
from sokhoe.clinic.referrals import REFERRAL, SNOMED
from sokhoe.clinic.signatures import describe, signatures
from sokhoe.errors import Conflict, InvalidRequest
from sokhoe.fhir.references import codings, reference_id
from sokhoe.interop.claims.formats import identifiers, name_text
from sokhoe.messages import Message
from sokhoe.mpi.identifiers import BHYT, CCCD
from sokhoe.prescribing.code import CODE_SYSTEM as PRESCRIPTION_CODES
from sokhoe.prescribing.context import latest_weight
from sokhoe.prescribing.words import quantity_digits, quantity_words
from sokhoe.registry.terminology_icd10 import ICD10_SYSTEM, icd10_entry

Kind = Literal["summary", "referral", "appointment", "prescription"]
KINDS: Final[dict[str, str]] = {
    "summary": "TÓM TẮT HỒ SƠ KHÁM BỆNH",
    "referral": "GIẤY CHUYỂN TUYẾN KHÁM BỆNH, CHỮA BỆNH",
    "appointment": "GIẤY HẸN KHÁM LẠI",
    "prescription": "ĐƠN THUỐC",
}
SECTION_TITLES: Final = {
    "29545-1": "Khám lâm sàng",
    "11348-0": "Quá trình bệnh lý và diễn biến",
    "30954-2": "Kết quả cận lâm sàng có giá trị chẩn đoán",
    "18776-5": "Phương pháp điều trị",
    "69730-0": "Hướng điều trị tiếp theo và lời dặn",
}
"""The visit summary's parts by LOINC section code, as the health book names them."""
GENDERS: Final = {"male": "Nam", "female": "Nữ", "other": "Khác", "unknown": "Không rõ"}
METHODS: Final = {
    "totp-confirmation": "xác nhận điện tử (mã xác thực)",
    "pkcs12-rsa-sha256": "chữ ký số",
}
FOOTER: Final = "Bản giấy chuyển đổi từ hồ sơ bệnh án điện tử"


@dataclass
class Printout:
    kind: str
    title: str
    facility: str
    facility_address: str
    patient: dict[str, str]
    visit_start: str | None
    visit_end: str | None
    diagnoses: list[tuple[str, str]]
    reason: str = ""
    measurements: list[tuple[str, str]] = field(default_factory=list)
    """(label, value) of the visit's vital signs; labels are the pages' English messages."""
    sections: list[tuple[str, str]] = field(default_factory=list)
    appointment: str | None = None
    referral: dict[str, str] | None = None
    signer: str = ""
    signed_at: str | None = None
    method: str = ""
    lookup_code: str = ""
    printed_by: str = ""
    printed_at: datetime | None = None
    logo: str | None = None
    """The facility's logo as a data URI (``clinic/facility_files.py``), if it has one."""
    prescription: dict[str, Any] | None = None
    """The prescription printed: its ``code``, ``kind``, ``valid_until`` and ``lines``."""


def lookup_code(sha256: str) -> str:
    """The first 48 bits of the signed digest, as XXXX-XXXX-XXXX (upper-case hex)."""
    head = sha256[:12].upper()
    return "-".join(head[i : i + 4] for i in range(0, 12, 4))


def _address(resource: dict[str, Any]) -> str:
    for address in resource.get("address", []):
        if address.get("text"):
            return str(address["text"])
        parts = [*address.get("line", []), address.get("city"), address.get("state")]
        return ", ".join(str(p) for p in parts if p)
    return ""


def _patient(patient: dict[str, Any] | None, fallback: str) -> dict[str, str]:
    if patient is None:
        return {"name": fallback}
    birth = str(patient.get("birthDate", ""))
    try:
        shown = date.fromisoformat(birth).strftime("%d/%m/%Y") if len(birth) == 10 else birth
    except ValueError:
        shown = birth
    cards = identifiers(patient, BHYT)
    ids = identifiers(patient, CCCD)
    return {
        "name": name_text(patient) or fallback,
        "birth": shown,
        "gender": GENDERS.get(str(patient.get("gender", "unknown")), "Không rõ"),
        "cccd": str(ids[0]["value"]) if ids else "",
        "bhyt": str(cards[0]["value"]) if cards else "",
        "address": _address(patient),
    }


def _diagnoses(repo: GuardedRepository, encounter: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for dx in sorted(encounter.get("diagnosis", []), key=lambda d: d.get("rank", 99)):
        condition = read(repo, "Condition", reference_id(dx.get("condition"), "Condition") or "")
        for coding in (condition or {}).get("code", {}).get("coding", []):
            if coding.get("system") == ICD10_SYSTEM and coding.get("code"):
                entry = icd10_entry(str(coding["code"]))
                vi = entry.display_vi if entry is not None else None
                out.append(
                    (
                        str(coding["code"]),
                        vi or text_of(condition.get("code") if condition else None),
                    )
                )
    return out


def printout(
    repo: GuardedRepository,
    encounter_id: str,
    kind: str,
    printed_by: str,
    now: datetime,
    code: str | None = None,
) -> Printout:
    """The printout of ``kind`` for a signed visit of the caller's facility (the facility that
    issues the paper); the print is audited."""
    if kind not in KINDS:
        raise InvalidRequest(Message("Nothing to print called %(kind)s", kind=repr(kind)), "kind")
    visit = own_visit(repo, encounter_id)
    encounter, patient_id = visit.encounter, visit.patient_id
    signed = signatures(repo, [encounter_id]).get(encounter_id, [])
    if not signed:
        raise Conflict(
            Message("Sign the visit before printing it: a paper copy is of a signed record")
        )
    recorded = read_signature(signed[-1])
    org = read(
        repo, "Organization", reference_id(encounter.get("serviceProvider"), "Organization") or ""
    )
    patient = read(repo, "Patient", patient_id)
    doc = Printout(
        kind=kind,
        title=KINDS[kind],
        facility=str((org or {}).get("name", "")),
        facility_address=_address(org or {}),
        patient=_patient(patient, str((encounter.get("subject") or {}).get("display", ""))),
        visit_start=(encounter.get("period") or {}).get("start"),
        visit_end=(encounter.get("period") or {}).get("end"),
        diagnoses=_diagnoses(repo, encounter),
        signer=recorded.signer or "",
        signed_at=recorded.when,
        method=METHODS.get(recorded.method or "", recorded.method or ""),
        lookup_code=lookup_code(recorded.sha256 or ""),
        printed_by=printed_by,
        printed_at=now,
    )
    printed = [f"Encounter/{encounter_id}", f"Provenance/{signed[-1]['id']}"]
    of_visit = [("encounter", f"Encounter/{encounter_id}")]
    doc.reason = text_of((encounter.get("reasonCode") or [{}])[0])
    if kind == "summary":
        for obs in find(repo, "Observation", [*of_visit, ("category", "vital-signs")], 20):
            printed.append(f"Observation/{obs['id']}")
            doc.measurements.append(describe(obs, "vi"))
        for comp in find(repo, "Composition", of_visit, 5):
            printed.append(f"Composition/{comp['id']}")
            for section in comp.get("section", []):
                code = next((c.get("code") for c in codings(section.get("code"))), None)
                text = plain_text(str((section.get("text") or {}).get("div", "")))
                doc.sections.append(
                    (SECTION_TITLES.get(str(code), str(section.get("title", ""))), text)
                )
    appointments = find(repo, "Appointment", [("supporting-info", f"Encounter/{encounter_id}")], 5)
    if appointments:
        doc.appointment = appointments[0].get("start")
        printed.append(f"Appointment/{appointments[0]['id']}")
    elif kind == "appointment":
        raise Conflict(Message("This visit booked no follow-up appointment"))
    if kind == "referral":
        sent = find(
            repo, "ServiceRequest", [*of_visit, ("category", f"{SNOMED}|{REFERRAL['code']}")], 5
        )
        if not sent:
            raise Conflict(Message("This visit referred the patient nowhere"))
        doc.referral = {
            "to": str((sent[0].get("performer") or [{}])[0].get("display", "")),
            "reason": text_of((sent[0].get("reasonCode") or [{}])[0]),
        }
        printed.append(f"ServiceRequest/{sent[0]['id']}")
    if kind == "prescription":
        doc.prescription = _prescription(repo, encounter_id, code, printed)
        doc.title = PRESCRIPTION_TITLES.get(doc.prescription["kind"], doc.title)
        issued = str(doc.prescription.get("authored") or "")[:10]
        on = date.fromisoformat(issued) if len(issued) == 10 else now.date()
        birth = str((patient or {}).get("birthDate") or "")
        if child_of(birth, on, None) is not None:  # a young child: the weight too
            doc.prescription["child"] = child_of(birth, on, latest_weight(repo, patient_id, now))
    repo.record_access("print", [patient_id], printed, reason=f"print: {kind}")
    return doc


def _prescription(
    repo: GuardedRepository, encounter_id: str, code: str | None, printed: list[str]
) -> dict[str, Any]:
    """The prescription ``code`` of the visit (its first when none is named), line by line."""
    found = [
        r
        for r in find(repo, "MedicationRequest", [("encounter", f"Encounter/{encounter_id}")], 50)
        if (r.get("groupIdentifier") or {}).get("system") == PRESCRIPTION_CODES
    ]
    codes = list(dict.fromkeys(str(r["groupIdentifier"]["value"]) for r in found))
    if not codes:
        raise Conflict("This visit issued no prescription")
    chosen = code or codes[0]
    if chosen not in codes:
        raise InvalidRequest(f"Prescription {chosen} is not of this visit", "code")
    form = form_of(chosen[-1])
    lines = []
    for r in found:
        if r["groupIdentifier"]["value"] != chosen:
            continue
        printed.append(f"MedicationRequest/{r['id']}")
        dispense = r.get("dispenseRequest") or {}
        quantity = dispense.get("quantity") or {}
        lines.append(
            {
                "name": text_of(r.get("medicationCodeableConcept")),
                **_quantity(quantity, words=form.words),
                "instructions": str(((r.get("dosageInstruction") or [{}])[0]).get("text", "")),
                "days": (dispense.get("expectedSupplyDuration") or {}).get("value"),
            }
        )
    valid = (found[0].get("dispenseRequest") or {}).get("validityPeriod") or {}
    return {
        "code": chosen,
        "kind": form.kind,
        "form": form,
        "authored": found[0].get("authoredOn"),
        "valid_until": valid.get("end"),
        "lines": lines,
    }


def _quantity(quantity: dict[str, Any], *, words: bool) -> dict[str, str]:
    """A line's quantity as the form writes it: "05 viên", and for a narcotic also in words
    ("05 (năm) viên"): ``quantity`` the printed text, ``words`` the words alone."""
    value, unit = quantity.get("value"), str(quantity.get("unit") or "")
    if value is None:
        return {"quantity": unit, "words": ""}
    digits = quantity_digits(value)
    said = quantity_words(value) if words else ""
    text = f"{digits} ({said}) {unit}" if said else f"{digits} {unit}"
    return {"quantity": text.strip(), "words": said}


def plain_text(div: str) -> str:
    """The text of a narrative ``div`` the visit page wrote (escaped text in one div)."""
    return html.unescape(re.sub(r"<[^>]+>", "", div)).strip()


__all__ = ["FOOTER", "KINDS", "Printout", "lookup_code", "printout"]
