"""PID → the person: identifiers, Vietnamese name, birth date, sex, address, phone.

PID-3 repetitions (CX: ``id^check digit^scheme^assigning authority^identifier type``) are read
by identifier type (HL7 table 0203), or by assigning authority when the type is empty:

- personal ID (*CCCD*): type ``NNVNM`` (national person identifier of Viet Nam, the 0203
  pattern ``NN`` + ISO 3166 code) or ``NI``, or assigning authority ``CCCD``;
- the facility's record number (*mã bệnh nhân / số hồ sơ*): type ``MR`` or ``PI``; its
  assigning authority, when given, must be the sending facility (MSH-4): a facility speaks
  for its own numbers only;
- the health-insurance card (*thẻ BHYT*): type ``HC`` or assigning authority ``BHYT``.

Other repetitions are ignored. Values are validated and normalised by ``sokhoe.mpi``, so an
identifier from HL7 equals the same identifier from a QR scan or a FHIR client.

PID-5 is read as Vietnamese speakers' HIS send it: ``family^given^middle`` (``Nguyễn^An^Văn``
is *Nguyễn Văn An*); FHIR ``given`` keeps the middle names before the given name.
See: https://hl7-definition.caristix.com/v2/HL7v2.5.1/Segments/PID
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sokhoe.interop.hl7v2.er7 import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    TABLE_VALUE_NOT_FOUND,
    Hl7Fault,
    Segment,
    parse_date,
)
from sokhoe.mpi.identifiers import (
    BHXH,
    BHYT,
    CCCD,
    FACILITY,
    bhxh_of_bhyt,
    mrn_system,
    validate_bhyt,
    validate_cccd,
)

CCCD_TYPES = frozenset({"NNVNM", "NI"})
MRN_TYPES = frozenset({"MR", "PI"})
BHYT_TYPES = frozenset({"HC"})
SEX = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
DELETE = '""'
"""The HL7 null: the sender says the value no longer exists (an empty field means 'no
change')."""


@dataclass
class PatientData:
    """What one PID says about a person."""

    cccd: str | None = None
    mrn: str | None = None
    bhyt: str | None = None
    names: list[dict[str, Any]] | None = None
    birth_date: str | None = None
    gender: str | None = None
    addresses: list[dict[str, Any]] | None = None
    telecom: list[dict[str, Any]] | None = None
    cleared: set[str] = field(default_factory=set)

    def keys(self, facility: str) -> list[tuple[str, str]]:
        """Identifiers that find the person, strongest first (then any merge is followed)."""
        out: list[tuple[str, str]] = []
        if self.cccd:
            out.append((CCCD, self.cccd))
        if self.mrn:
            out.append((mrn_system(facility), self.mrn))
        return out


def read_identifiers(
    seg: Segment, field_no: int, facility: str
) -> tuple[str | None, str | None, str | None]:
    """(CCCD, record number, BHYT card) from a CX list (PID-3 or MRG-1)."""
    cccd = mrn = bhyt = None
    where = seg.location(field_no)
    for rep in range(1, seg.repetitions(field_no) + 1):
        value = seg.get(field_no, 1, rep).strip()
        authority = seg.get(field_no, 4, rep).strip().upper()
        kind = seg.get(field_no, 5, rep).strip().upper()
        if not value:
            continue
        if kind in CCCD_TYPES or (not kind and authority == "CCCD") or authority == "CCCD":
            try:
                cccd = validate_cccd(value)
            except ValueError as exc:
                raise Hl7Fault(f"{seg.id}-{field_no}: {exc}", location=where) from exc
        elif kind in BHYT_TYPES or authority == "BHYT":
            try:
                bhyt = validate_bhyt(value)
            except ValueError as exc:
                raise Hl7Fault(f"{seg.id}-{field_no}: {exc}", location=where) from exc
        elif kind in MRN_TYPES:
            if authority and authority != facility:
                raise Hl7Fault(
                    f"{seg.id}-{field_no}: record number assigned by {authority}, but the "
                    f"message comes from {facility}; a facility sends its own numbers only",
                    location=where,
                )
            mrn = value
    return cccd, mrn, bhyt


def read_pid(pid: Segment, facility: str) -> PatientData:
    """Validate and read one PID segment; faults name the field."""
    if not pid.get(3).strip():
        raise Hl7Fault(
            "PID-3 (patient identifier list) is required",
            error_code=REQUIRED_FIELD_MISSING,
            location=pid.location(3),
        )
    cccd, mrn, bhyt = read_identifiers(pid, 3, facility)
    data = PatientData(cccd=cccd, mrn=mrn, bhyt=bhyt)
    if not data.cccd and not data.mrn:
        raise Hl7Fault(
            "PID-3 has neither a personal ID (type NNVNM or authority CCCD) nor a record "
            "number of this facility (type MR)",
            error_code=REQUIRED_FIELD_MISSING,
            location=pid.location(3),
        )
    data.names = _names(pid, data)
    birth = pid.get(7).strip()
    if birth == DELETE:
        data.cleared.add("birthDate")
    elif birth:
        data.birth_date = parse_date(birth, pid.location(7), what="date of birth")
    sex = pid.get(8).strip().upper()
    if sex == DELETE:
        data.cleared.add("gender")
    elif sex:
        if sex not in SEX:
            raise Hl7Fault(
                f"PID-8 (administrative sex) {sex!r} is not in HL7 table 0001 (M, F, O, U, A, N)",
                error_code=TABLE_VALUE_NOT_FOUND,
                location=pid.location(8),
            )
        data.gender = SEX[sex]
    data.addresses = _addresses(pid, data)
    data.telecom = _phones(pid, data)
    return data


def _names(pid: Segment, data: PatientData) -> list[dict[str, Any]] | None:
    if pid.get(5).strip() == DELETE:
        raise Hl7Fault(
            "PID-5 (patient name) cannot be removed",
            error_code=DATA_TYPE_ERROR,
            location=pid.location(5),
        )
    names = []
    for rep in range(1, pid.repetitions(5) + 1):
        family = pid.get(5, 1, rep).strip()
        given = pid.get(5, 2, rep).split()
        middle = pid.get(5, 3, rep).split()
        if not family and not given:
            continue
        name: dict[str, Any] = {"use": "official" if rep == 1 else "usual"}
        if family:
            name["family"] = family
        if middle or given:
            name["given"] = middle + given
        name["text"] = " ".join([family, *middle, *given]).strip()
        names.append(name)
    return names or None


def _addresses(pid: Segment, data: PatientData) -> list[dict[str, Any]] | None:
    if pid.get(11).strip() == DELETE:
        data.cleared.add("address")
        return None
    out = []
    for rep in range(1, pid.repetitions(11) + 1):
        street, other = pid.get(11, 1, rep).strip(), pid.get(11, 2, rep).strip()
        city, state = pid.get(11, 3, rep).strip(), pid.get(11, 4, rep).strip()
        postal, country = pid.get(11, 5, rep).strip(), pid.get(11, 6, rep).strip().upper()
        kind = pid.get(11, 7, rep).strip().upper()
        lines = [x for x in (street, other) if x]
        if not (lines or city or state):
            continue
        address: dict[str, Any] = {"use": "temp" if kind == "C" else "home"}
        if kind == "M":
            address["type"] = "postal"
        address["text"] = ", ".join(x for x in [*lines, city, state] if x)
        if lines:
            address["line"] = lines
        if city:
            address["city"] = city  # the ward or commune (phường/xã) since July 2025
        if state:
            address["state"] = state
        if postal:
            address["postalCode"] = postal
        address["country"] = "VN" if country in ("", "VN", "VNM") else country
        out.append(address)
    return out or None


def _phones(pid: Segment, data: PatientData) -> list[dict[str, Any]] | None:
    if pid.get(13).strip() == DELETE:
        data.cleared.add("telecom")
        return None
    out = []
    for rep in range(1, pid.repetitions(13) + 1):
        number = pid.get(13, 1, rep).strip() or pid.get(13, 12, rep).strip()
        if not number:
            number = pid.get(13, 6, rep).strip() + pid.get(13, 7, rep).strip()
        email = pid.get(13, 4, rep).strip()
        equipment = pid.get(13, 3, rep).strip().upper()
        if number:
            out.append(
                {
                    "system": "phone",
                    "value": number,
                    "use": "mobile" if equipment == "CP" else "home",
                }
            )
        if email:
            out.append({"system": "email", "value": email})
    return out or None


def apply(content: dict[str, Any], data: PatientData, facility: str, today: str) -> dict[str, Any]:
    """The Patient after the message: demographics replaced by what PID sent (empty fields
    keep what was known), identifiers added — a different current CCCD or BHYT closes the
    earlier one (``use: old``) rather than deleting it, as ``$check-in`` does."""
    patient = {k: v for k, v in content.items() if k != "meta"}
    patient.setdefault("resourceType", "Patient")
    patient["active"] = patient.get("active", True)
    ids: list[dict[str, Any]] = [dict(i) for i in patient.get("identifier", [])]
    if data.cccd:
        _put(ids, CCCD, data.cccd, today, "official")
    if data.bhyt:
        _put(ids, BHYT, data.bhyt, today, None)
        _put(ids, BHXH, bhxh_of_bhyt(data.bhyt), today, None)
    if data.mrn:
        entry = _put(ids, mrn_system(facility), data.mrn, today, "usual")
        entry["assigner"] = {"identifier": {"system": FACILITY, "value": facility}}
    patient["identifier"] = ids
    if data.names:
        kept = [
            {**n, "use": "old"}
            for n in patient.get("name", [])
            if n.get("use") in ("official", "usual")
            and n.get("text") not in {m.get("text") for m in data.names}
        ]
        history = [n for n in patient.get("name", []) if n.get("use") not in ("official", "usual")]
        patient["name"] = data.names + history + kept
    for key, value in (
        ("birthDate", data.birth_date),
        ("gender", data.gender),
        ("address", data.addresses),
        ("telecom", data.telecom),
    ):
        if value is not None:
            patient[key] = value
        elif key in data.cleared:
            patient.pop(key, None)
    return patient


def _put(
    ids: list[dict[str, Any]], system: str, value: str, today: str, use: str | None
) -> dict[str, Any]:
    for ident in ids:
        if ident.get("system") == system and ident.get("value") == value:
            if ident.get("use") == "old":
                ident.pop("use")
                ident.pop("period", None)
                if use:
                    ident["use"] = use
            return ident
    for ident in ids:
        if ident.get("system") == system and ident.get("use") != "old":
            ident["use"] = "old"
            ident["period"] = {**ident.get("period", {}), "end": today}
    entry: dict[str, Any] = {"system": system, "value": value}
    if use:
        entry = {"use": use, **entry}
    ids.append(entry)
    return entry
