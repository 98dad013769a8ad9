"""An Orthanc study as a FHIR R4 ImagingStudy (*kết quả chẩn đoán hình ảnh*), and the
Endpoint viewers use to fetch its images.

The record keeps the study's description, never its pixels: the ImagingStudy names the study by
its DICOM Study Instance UID, counts its series and instances, and points to the PACS's
DICOMweb (WADO-RS) root through an Endpoint, so a viewer fetches the images from the facility's
PACS (``{endpoint}/studies/{uid}``) with the facility's own credentials.

Which person a study belongs to is read from Patient ID (0010,0020): modalities at Vietnamese
facilities key studies either by the 12-digit personal ID (*CCCD*, the health ID since Decree
102/2025) or by the facility's own record number (*mã bệnh nhân*); Issuer of Patient ID
(0010,0021), when the PACS fills it, says which (see :func:`patient_keys`).
See: https://hl7.org/fhir/R4/imagingstudy.html, https://hl7.org/fhir/R4/endpoint.html
and https://hl7.org/fhir/R4/imagingstudy-mappings.html#dicom
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sokhoe.interop.dicom.orthanc import OrthancClient
from sokhoe.mpi.identifiers import CCCD, FACILITY, mrn_system, validate_cccd

DICOM_UID = "urn:dicom:uid"
"""The identifier system of DICOM UIDs (values are ``urn:oid:<uid>``)."""
DCM = "http://dicom.nema.org/resources/ontology/DCM"
"""DICOM's code system: modality codes (CT, CR, MR…) are its codes."""
SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
DEFAULT_OFFSET = "+07:00"
"""Vietnam's offset from UTC (no daylight saving), used when a study carries no
Timezone Offset From UTC (0008,0201): modalities record local wall-clock time."""

ISSUER_OF_PATIENT_ID = "0010-0021"
TIMEZONE_OFFSET = "0008-0201"

_UID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_OFFSET = re.compile(r"([+-])(\d{2})(\d{2})")

BODY_PARTS: Mapping[str, tuple[str, str]] = {
    "HEAD": ("69536005", "Head structure"),
    "SKULL": ("89546000", "Bone structure of cranium"),
    "NECK": ("45048000", "Neck structure"),
    "CHEST": ("51185008", "Thoracic structure"),
    "ABDOMEN": ("818981001", "Abdomen"),
    "KNEE": ("72696002", "Knee region structure"),
    "HAND": ("85562004", "Hand structure"),
    "FOOT": ("56459004", "Foot structure"),
}
"""Body Part Examined (0018,0015) defined terms → SNOMED CT, after DICOM PS3.16 Annex L
(a subset; other terms are kept as text in ``bodySite.display``)."""


class UnusableStudy(ValueError):
    """The study's DICOM tags cannot make a valid ImagingStudy (retrying will not help)."""


@dataclass(frozen=True)
class PacsSeries:
    """One series as Orthanc indexes it."""

    uid: str
    modality: str | None
    number: int | None
    instances: int
    body_part: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class PacsStudy:
    """What the record needs of one Orthanc study."""

    orthanc_id: str
    uid: str
    patient_id: str
    issuer: str | None
    accession: str | None
    date: str | None
    time: str | None
    timezone: str | None
    description: str | None
    series: tuple[PacsSeries, ...]

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.series)


def read_study(client: OrthancClient, orthanc_id: str) -> PacsStudy | None:
    """Fetch a study, its series and the two tags Orthanc does not index; None when the
    study no longer exists in the PACS."""
    study = client.study(orthanc_id)
    series = client.study_series(orthanc_id) if study is not None else None
    if study is None or series is None:
        return None
    tags: dict[str, Any] = study.get("MainDicomTags") or {}
    patient: dict[str, Any] = study.get("PatientMainDicomTags") or {}
    first = next((i for s in series for i in s.get("Instances") or []), None)
    issuer = client.instance_tag(first, ISSUER_OF_PATIENT_ID) if first else None
    timezone = client.instance_tag(first, TIMEZONE_OFFSET) if first else None
    return PacsStudy(
        orthanc_id=orthanc_id,
        uid=_text(tags.get("StudyInstanceUID")) or "",
        patient_id=_text(patient.get("PatientID")) or "",
        issuer=issuer,
        accession=_text(tags.get("AccessionNumber")),
        date=_text(tags.get("StudyDate")),
        time=_text(tags.get("StudyTime")),
        timezone=timezone,
        description=_text(tags.get("StudyDescription")),
        series=tuple(_series(s) for s in series),
    )


def _series(found: Mapping[str, Any]) -> PacsSeries:
    tags: Mapping[str, Any] = found.get("MainDicomTags") or {}
    number = _text(tags.get("SeriesNumber"))
    return PacsSeries(
        uid=_text(tags.get("SeriesInstanceUID")) or "",
        modality=_text(tags.get("Modality")),
        number=int(number) if number and re.fullmatch(r"[+-]?\d+", number) else None,
        instances=len(found.get("Instances") or []),
        body_part=_text(tags.get("BodyPartExamined")),
        description=_text(tags.get("SeriesDescription")),
    )


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# -- whose study -------------------------------------------------------------------------
def patient_keys(patient_id: str, issuer: str | None, facility: str) -> list[tuple[str, str]]:
    """The Patient identifiers (system, value) Patient ID may be, most specific first.

    An issuer saying ``CCCD`` (or the CCCD system URI) means the personal ID; the facility's
    code (or its record-number system) means a record number. Without a recognised issuer a
    valid 12-digit CCCD is tried as a CCCD *and* as a record number, because a facility's
    record numbers may also be 12 digits: the caller accepts the study only when exactly one
    person answers. Any other issuer (a hospital name, another facility) is ignored rather
    than trusted, since PACS fill that tag inconsistently.
    """
    value = patient_id.strip()
    if not value:
        return []
    said = (issuer or "").strip()
    mrn = (mrn_system(facility), value)
    if said.upper() == "CCCD" or said == CCCD:
        try:
            return [(CCCD, validate_cccd(value))]
        except ValueError:
            return []
    if said.upper() == facility.upper() or said == mrn_system(facility):
        return [mrn]
    try:
        return [(CCCD, validate_cccd(value)), mrn]
    except ValueError:
        return [mrn]


# -- the resources -------------------------------------------------------------------------
def study_identifier(uid: str) -> str:
    """The conditional-update criterion that finds the ImagingStudy of a DICOM study."""
    return f"{DICOM_UID}|urn:oid:{uid}"


def accession_system(facility: str) -> str:
    """Accession numbers are issued per facility (by its RIS/HIS), so they are namespaced."""
    return f"https://fhir.sokhoe.vn/sid/accession/{facility}"


def endpoint_system(facility: str) -> str:
    """The identifier system of a facility's PACS endpoints (the value is the address)."""
    return f"https://fhir.sokhoe.vn/sid/dicomweb/{facility}"


def pacs_endpoint(facility: str, address: str, name: str | None = None) -> dict[str, Any]:
    """The Endpoint of a facility's PACS: its DICOMweb root, WADO-RS.

    Shaped like the R4 example ``Endpoint/example-wadors``.
    See: https://hl7.org/fhir/R4/endpoint-example-wadors.json.html
    """
    return {
        "resourceType": "Endpoint",
        "identifier": [{"system": endpoint_system(facility), "value": address}],
        "status": "active",
        "connectionType": {
            "system": CONNECTION_TYPE,
            "code": "dicom-wado-rs",
            "display": "DICOM WADO-RS",
        },
        "name": name or f"PACS {facility} (DICOMweb)",
        "managingOrganization": {
            "identifier": {"system": FACILITY, "value": facility},
            "display": f"Facility {facility}",
        },
        "payloadType": [{"text": "DICOM WADO-RS"}],
        "payloadMimeType": ["application/dicom"],
        "address": address,
    }


def imaging_study(
    study: PacsStudy,
    patient_id: str,
    endpoint_id: str,
    facility: str,
    encounter_id: str | None = None,
) -> dict[str, Any]:
    """The ImagingStudy of ``study`` for ``Patient/patient_id``, viewable at the Endpoint,
    made during ``Encounter/encounter_id`` when the visit is known (the claims export bills
    a visit's imaging through that link).

    Deterministic in its input (series sorted by number, then UID), so processing an unchanged
    study again writes no new version.
    """
    if not _UID.fullmatch(study.uid) or len(study.uid) > 64:
        raise UnusableStudy(f"Study Instance UID {study.uid!r} is not a DICOM UID")
    identifiers: list[dict[str, Any]] = [
        {"use": "official", "system": DICOM_UID, "value": f"urn:oid:{study.uid}"}
    ]
    if study.accession:
        identifiers.append(
            {
                "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                "system": accession_system(facility),
                "value": study.accession,
            }
        )
    series = sorted(study.series, key=lambda s: (s.number is None, s.number or 0, s.uid))
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "identifier": identifiers,
        "status": "available",
    }
    modalities: list[str] = []
    for s in series:
        if s.modality and s.modality not in modalities:
            modalities.append(s.modality)
    if modalities:
        resource["modality"] = [{"system": DCM, "code": m} for m in modalities]
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    started = started_at(study.date, study.time, study.timezone)
    if started:
        resource["started"] = started
    resource["endpoint"] = [{"reference": f"Endpoint/{endpoint_id}"}]
    resource["numberOfSeries"] = len(series)
    resource["numberOfInstances"] = study.instances
    if study.description:
        resource["description"] = study.description
    resource["series"] = [_fhir_series(s) for s in series]
    return resource


def _fhir_series(series: PacsSeries) -> dict[str, Any]:
    if not _UID.fullmatch(series.uid) or len(series.uid) > 64:
        raise UnusableStudy(f"Series Instance UID {series.uid!r} is not a DICOM UID")
    out: dict[str, Any] = {"uid": series.uid}
    if series.number is not None and series.number >= 0:
        out["number"] = series.number
    # ImagingStudy.series.modality is mandatory; OT ("other") is DICOM's term for unknown
    out["modality"] = {"system": DCM, "code": series.modality or "OT"}
    if series.description:
        out["description"] = series.description
    out["numberOfInstances"] = series.instances
    if series.body_part:
        term = series.body_part.upper()
        if term in BODY_PARTS:
            code, display = BODY_PARTS[term]
            out["bodySite"] = {"system": SNOMED, "code": code, "display": display}
        else:
            out["bodySite"] = {"display": series.body_part}
    return out


def started_at(date: str | None, time: str | None, offset: str | None) -> str | None:
    """StudyDate (DA ``YYYYMMDD``) + StudyTime (TM ``HHMMSS.FFFFFF``, trailing parts
    optional) + Timezone Offset From UTC (``+HHMM``) as a FHIR dateTime.

    A date alone stays a date (FHIR allows it; inventing midnight would be wrong); a time needs
    an offset in FHIR, so Vietnam's is assumed when the study has none. Malformed values give
    None rather than a wrong instant.
    See: https://dicom.nema.org/medical/dicom/current/output/chtml/part05/sect_6.2.html
    """
    if not date or not re.fullmatch(r"\d{8}", date):
        return None
    day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    if not time:
        return day
    found = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", time.replace(":", ""))
    if not found:
        return None
    hh, mm, ss, frac = found.groups()
    if int(hh) > 23 or int(mm or 0) > 59 or int(ss or 0) > 60:
        return None
    zone = DEFAULT_OFFSET
    if offset:
        parts = _OFFSET.fullmatch(offset.strip())
        if parts:
            zone = f"{parts.group(1)}{parts.group(2)}:{parts.group(3)}"
    fraction = f".{frac}" if frac else ""
    return f"{day}T{hh}:{mm or '00'}:{ss or '00'}{fraction}{zone}"


__all__ = [
    "DICOM_UID",
    "PacsSeries",
    "PacsStudy",
    "UnusableStudy",
    "accession_system",
    "endpoint_system",
    "imaging_study",
    "pacs_endpoint",
    "patient_keys",
    "read_study",
    "started_at",
]
