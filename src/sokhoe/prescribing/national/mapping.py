"""FHIR to the national prescription system's JSON (Decision 808/QĐ-BYT): the one mapping.

Two messages leave the platform: the prescription (``POST /api/v1/gui-don-thuoc``, built from
the ``MedicationRequest``s of one prescription code with its Patient, prescriber, facility,
Encounter and diagnoses) and the dispensing report (``POST /api/v1/cap-nhat-don-thuoc``,
built from the ``MedicationDispense``s of one sale).

Where each field comes from, and how sure we are, is :data:`FIELDS`. The Decision's own text
(a scanned PDF in the public mock ``nkocsea/gia_lap_api_lien_thong_don_quoc_gia``) could not be
read here; what *is* confirmed comes from that mock's code: the routes, the sign-in fields, the
prescription's top-level field names, the 7-day token life and the answer to a duplicate code.
Everything else -- value formats, which fields are required, the line and diagnosis
sub-fields, the whole dispensing report -- is marked ``unconfirmed`` and comes from connector
code other vendors published. Check each against the Decision before going live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sokhoe.fhir.resources import parse_instant
from sokhoe.mpi.identifiers import BHYT, CCCD, FACILITY, PRACTITIONER

PRESCRIPTION_CODE_SYSTEM: Final = "https://fhir.sokhoe.vn/sid/ma-don-thuoc"
"""``MedicationRequest.groupIdentifier.system`` of a prescription (issue 13)."""
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")

TYPE_LETTERS: Final = {"C": "c", "N": "n", "H": "h", "T": "y"}
"""Our code's type letter (Circular 26/2025; ``T`` decoctions, Circular 55/2025) -> the
808 text's ``loai_don_thuoc`` and code suffix. ``T`` -> ``y`` (traditional medicine) is
unconfirmed."""

SEX: Final = {"male": 2, "female": 3}
"""``gioi_tinh``: 1 unknown, 2 male, 3 female (808; not the XML 130 coding 1 male, 2 female)."""

TREATMENT: Final = {"IMP": 1, "AMB": 2, "SS": 3, "EMER": 2, "HH": 2, "VR": 2}
"""``hinh_thuc_dieu_tri`` from ``Encounter.class``: 1 inpatient, 2 outpatient, 3 day-patient
(unconfirmed: the values' meaning was not read in the Decision)."""


@dataclass(frozen=True)
class Field:
    """One field of a message: where its value comes from, and whether the Decision's text
    (through the public mock) confirmed it."""

    name: str
    source: str
    confirmed: bool
    note: str = ""


FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    "gui-don-thuoc": (
        Field("loai_don_thuoc", "type letter of the code, lower case (TYPE_LETTERS)", True),
        Field("ma_don_thuoc", "MedicationRequest.groupIdentifier.value, type letter lower", True),
        Field("ho_ten_benh_nhan", "Patient.name[0].text (else family + given)", True),
        Field(
            "ma_dinh_danh_y_te",
            "Patient.identifier CCCD (health ID = CCCD, Decree 102/2025)",
            False,
            "meaning of the health ID field unconfirmed",
        ),
        Field("ma_dinh_danh_cong_dan", "Patient.identifier CCCD", True),
        Field("ngay_sinh_benh_nhan", "Patient.birthDate as dd/mm/yyyy", False, "format"),
        Field(
            "can_nang",
            "latest body weight (kg) given with the prescription",
            False,
            "unit and type (number vs string)",
        ),
        Field("gioi_tinh", "Patient.gender -> 1/2/3 (SEX)", True, "integer vs string unconfirmed"),
        Field("ma_so_the_bao_hiem_y_te", "Patient.identifier BHYT", True),
        Field("thong_tin_nguoi_giam_ho", "Patient.contact[0]: name, phone", False, "layout"),
        Field("dia_chi", "Patient.address[0].text (else lines, city)", True),
        Field(
            "chan_doan",
            "Encounter diagnoses: [{ma_chan_doan, ten_chan_doan, ket_luan}]",
            False,
            "sub-field names and ket_luan's meaning",
        ),
        Field("luu_y", "MedicationRequest.note (all lines)", False, "meaning"),
        Field("hinh_thuc_dieu_tri", "Encounter.class (TREATMENT)", False, "value list"),
        Field(
            "dot_dung_thuoc",
            "{dot: 1, tu_ngay, den_ngay} from authoredOn and the longest expectedSupplyDuration",
            False,
            "object vs list, required for n/h only?",
        ),
        Field(
            "thong_tin_don_thuoc",
            "one entry per MedicationRequest: ma_thuoc, biet_duoc, "
            "ten_thuoc, don_vi_tinh, so_luong, cach_dung",
            False,
            "sub-field names and types",
        ),
        Field("loi_dan", "Encounter/MedicationRequest patientInstruction", False, "meaning"),
        Field("so_dien_thoai_nguoi_kham_benh", "Patient.telecom phone", True),
        Field("ngay_tai_kham", "not recorded yet: null", False, "number of days vs date"),
        Field("ngay_gio_ke_don", "authoredOn, Vietnam time, yyyy-mm-dd HH:MM:SS", False, "format"),
        Field("signature", "not sent (null)", False, "what is signed and how"),
    ),
    "cap-nhat-don-thuoc": (
        Field(
            "ma_don_thuoc",
            "the prescription code, type letter lower",
            False,
            "no route in the mock: the whole message is unconfirmed",
        ),
        Field(
            "thong_tin_thuoc",
            "one entry per MedicationDispense: ma_thuoc_da_ke_don (the "
            "prescribed drug's code), ma_thuoc, biet_duoc, ten_thuoc, don_vi_tinh, "
            "so_luong (prescribed), cach_dung, so_luong_ban (sold)",
            False,
        ),
        Field(
            "ly_do_thay_the",
            "MedicationDispense.substitution.reason (per line, only when substituted)",
            False,
            "our name: no source names the substitution reason",
        ),
        Field("ma_dinh_danh_co_so_cung_ung_thuoc", "pharmacy Organization identifier", False),
        Field("ten_co_so_cung_ung_thuoc", "pharmacy Organization.name", False),
        Field("so_dien_thoai_co_so_cung_ung_thuoc", "pharmacy Organization.telecom phone", False),
        Field("dia_chi_co_so_cung_ung_thuoc", "pharmacy Organization.address", False),
        Field("ma_hoa_don", "the invoice number of the sale ($dispense ``invoice``)", False),
    ),
}
"""The mapping table (README, "National prescription system")."""


def unconfirmed() -> dict[str, list[str]]:
    """The fields of each message not confirmed from the Decision's text."""
    return {msg: [f.name for f in fields if not f.confirmed] for msg, fields in FIELDS.items()}


# -- reading FHIR ---------------------------------------------------------------------------


def identifier(resource: dict[str, Any], system: str) -> str | None:
    for ident in resource.get("identifier", []) or []:
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def prescription_code(request: dict[str, Any]) -> str | None:
    group = request.get("groupIdentifier") or {}
    if group.get("system") == PRESCRIPTION_CODE_SYSTEM and group.get("value"):
        return str(group["value"])
    return None


def national_code(code: str) -> str:
    """Our code as the national system writes it: the type letter lower case (808)."""
    head, _, letter = code.rpartition("-")
    if not head or letter.upper() not in TYPE_LETTERS:
        raise ValueError(f"not a prescription code: {code!r}")
    return f"{head}-{TYPE_LETTERS[letter.upper()]}"


def _name(patient: dict[str, Any]) -> str:
    for name in patient.get("name", []) or []:
        if name.get("text"):
            return str(name["text"])
        parts = [name.get("family", ""), *name.get("given", [])]
        if any(parts):
            return " ".join(p for p in parts if p)
    return ""


def _phone(resource: dict[str, Any]) -> str | None:
    for telecom in resource.get("telecom", []) or []:
        if telecom.get("system") == "phone" and telecom.get("value"):
            return str(telecom["value"])
    return None


def _address(resource: dict[str, Any]) -> str:
    for address in resource.get("address", []) or []:
        if address.get("text"):
            return str(address["text"])
        parts = [*address.get("line", []), address.get("district"), address.get("city")]
        if any(parts):
            return ", ".join(p for p in parts if p)
    return ""


def _dmy(value: str | None) -> str | None:
    if not value:
        return None
    year, month, day = value[:10].split("-")
    return f"{day}/{month}/{year}"


def _local(value: str) -> datetime:
    return parse_instant(value).astimezone(VIETNAM)


def _coding(concept: dict[str, Any] | None, system: str | None = None) -> dict[str, Any]:
    for coding in (concept or {}).get("coding", []) or []:
        if system is None or coding.get("system") == system:
            return dict(coding)
    return {}


def _drug(request_or_dispense: dict[str, Any]) -> tuple[str, str, str]:
    """(ma_thuoc, biet_duoc, ten_thuoc) of a line: the first coding is the drug's code
    (the catalogue's ``MA_THUOC`` coding: system settled by the catalogue, unconfirmed here),
    its display the active ingredient, the concept's text the brand name."""
    concept = request_or_dispense.get("medicationCodeableConcept") or {}
    coding = _coding(concept)
    display = str(coding.get("display") or concept.get("text") or "")
    brand = str(concept.get("text") or display)
    return str(coding.get("code") or ""), brand, display


def _dosage_text(request: dict[str, Any]) -> str:
    texts = [d.get("text") for d in request.get("dosageInstruction", []) or []]
    return "; ".join(t for t in texts if t)


def _days(request: dict[str, Any]) -> int:
    duration = (request.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}
    value = duration.get("value")
    return int(value) if isinstance(value, int | float) else 0


@dataclass(frozen=True)
class PrescriptionSources:
    """What one prescription is sent from, read by the code that issues it."""

    requests: Sequence[dict[str, Any]]
    """The ``MedicationRequest``s sharing one ``groupIdentifier``, in line order."""
    patient: dict[str, Any]
    practitioner: dict[str, Any]
    organization: dict[str, Any]
    encounter: dict[str, Any] | None = None
    conditions: Sequence[dict[str, Any]] = ()
    """The Encounter's diagnoses (``Condition``s), principal first."""
    weight_kg: float | None = None


def prescription_payload(src: PrescriptionSources) -> dict[str, Any]:
    """The body of ``POST /api/v1/gui-don-thuoc`` for one prescription."""
    if not src.requests:
        raise ValueError("a prescription has at least one line")
    codes = {prescription_code(r) for r in src.requests}
    if len(codes) != 1 or None in codes:
        raise ValueError("the lines of a prescription share one groupIdentifier code")
    code = national_code(str(codes.pop()))
    first = src.requests[0]
    issued = _local(str(first["authoredOn"]))
    days = max((_days(r) for r in src.requests), default=0)
    notes = [n.get("text") for r in src.requests for n in r.get("note", []) or []]
    advice = [
        d.get("patientInstruction")
        for r in src.requests
        for d in r.get("dosageInstruction", []) or []
    ]
    cls = ((src.encounter or {}).get("class") or {}).get("code")
    guardian = (src.patient.get("contact") or [{}])[0]
    guardian_text = ", ".join(
        p for p in (_name({"name": [guardian.get("name") or {}]}), _phone(guardian)) if p
    )
    return {
        "loai_don_thuoc": code[-1],
        "ma_don_thuoc": code,
        "ho_ten_benh_nhan": _name(src.patient),
        "ma_dinh_danh_y_te": identifier(src.patient, CCCD),
        "ma_dinh_danh_cong_dan": identifier(src.patient, CCCD),
        "ngay_sinh_benh_nhan": _dmy(src.patient.get("birthDate")),
        "can_nang": src.weight_kg,
        "gioi_tinh": SEX.get(str(src.patient.get("gender")), 1),
        "ma_so_the_bao_hiem_y_te": identifier(src.patient, BHYT),
        "thong_tin_nguoi_giam_ho": guardian_text or None,
        "dia_chi": _address(src.patient),
        "chan_doan": [_diagnosis(c) for c in src.conditions],
        "luu_y": "; ".join(n for n in notes if n) or None,
        "hinh_thuc_dieu_tri": TREATMENT.get(str(cls), 2),
        "dot_dung_thuoc": {
            "dot": 1,
            "tu_ngay": issued.strftime("%d/%m/%Y"),
            "den_ngay": (issued + timedelta(days=max(days - 1, 0))).strftime("%d/%m/%Y"),
        },
        "thong_tin_don_thuoc": [_line(r) for r in src.requests],
        "loi_dan": "; ".join(a for a in advice if a) or None,
        "so_dien_thoai_nguoi_kham_benh": _phone(src.patient),
        "ngay_tai_kham": None,
        "ngay_gio_ke_don": issued.strftime("%Y-%m-%d %H:%M:%S"),
        "signature": None,
    }


def _diagnosis(condition: dict[str, Any]) -> dict[str, Any]:
    coding = _coding(condition.get("code"), ICD10) or _coding(condition.get("code"))
    note = [n.get("text") for n in condition.get("note", []) or []]
    return {
        "ma_chan_doan": str(coding.get("code") or ""),
        "ten_chan_doan": str(coding.get("display") or (condition.get("code") or {}).get("text")),
        "ket_luan": "; ".join(n for n in note if n) or None,
    }


def _line(request: dict[str, Any]) -> dict[str, Any]:
    code, brand, name = _drug(request)
    quantity = (request.get("dispenseRequest") or {}).get("quantity") or {}
    return {
        "ma_thuoc": code,
        "biet_duoc": brand,
        "ten_thuoc": name,
        "don_vi_tinh": str(quantity.get("unit") or ""),
        "so_luong": quantity.get("value"),
        "cach_dung": _dosage_text(request),
    }


def doctor_certificate(practitioner: dict[str, Any]) -> str | None:
    """The prescriber's practising-certificate number (*chứng chỉ hành nghề*), by which the
    settings find the doctor's national sign-in."""
    return identifier(practitioner, PRACTITIONER)


def facility_code(organization: dict[str, Any]) -> str | None:
    return identifier(organization, FACILITY)


@dataclass(frozen=True)
class DispensingSources:
    """One sale against a prescription: its ``MedicationDispense``s and what they point to."""

    code: str
    invoice: str
    dispenses: Sequence[dict[str, Any]]
    requests: dict[str, dict[str, Any]]
    """The prescription's ``MedicationRequest``s by id (``authorizingPrescription``)."""
    pharmacy: dict[str, Any]
    pharmacy_code_system: str = FACILITY
    """Identifier system of the pharmacy's national code (settled with the pharmacy registry;
    the facility code system until then)."""


def dispensing_payload(src: DispensingSources) -> dict[str, Any]:
    """The body of ``POST /api/v1/cap-nhat-don-thuoc`` for one sale (all unconfirmed)."""
    lines = []
    for dispense in src.dispenses:
        refs = [a.get("reference", "") for a in dispense.get("authorizingPrescription", [])]
        request = next(
            (src.requests[r.split("/", 1)[1]] for r in refs if r.split("/", 1)[-1] in src.requests),
            None,
        )
        if request is None:
            raise ValueError("a dispense names the MedicationRequest it fills")
        prescribed, _, _ = _drug(request)
        code, brand, name = _drug(dispense)
        line = _line(request)
        line.update(
            {
                "ma_thuoc_da_ke_don": prescribed,
                "ma_thuoc": code or prescribed,
                "biet_duoc": brand or line["biet_duoc"],
                "ten_thuoc": name or line["ten_thuoc"],
                "so_luong_ban": (dispense.get("quantity") or {}).get("value"),
            }
        )
        substitution = dispense.get("substitution") or {}
        if substitution.get("wasSubstituted"):
            reasons = [
                c.get("text") or _coding(c).get("display") or _coding(c).get("code")
                for c in substitution.get("reason", []) or []
            ]
            line["ly_do_thay_the"] = "; ".join(r for r in reasons if r) or None
        lines.append(line)
    return {
        "ma_don_thuoc": national_code(src.code),
        "thong_tin_thuoc": lines,
        "ma_dinh_danh_co_so_cung_ung_thuoc": identifier(src.pharmacy, src.pharmacy_code_system),
        "ten_co_so_cung_ung_thuoc": src.pharmacy.get("name"),
        "so_dien_thoai_co_so_cung_ung_thuoc": _phone(src.pharmacy),
        "dia_chi_co_so_cung_ung_thuoc": _address(src.pharmacy) or None,
        "ma_hoa_don": src.invoice,
    }
