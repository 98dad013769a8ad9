"""NamingSystem resources that publish every identifier system the platform uses.

Why: a facility integrator who sees ``https://fhir.sokhoe.vn/sid/cccd`` on a Patient must be able
to ask the server what it means, who issues it and what it looks like, instead of reading our
source. One NamingSystem per system URI in :mod:`sokhoe.mpi.identifiers` (plus the health-authority
codes of the facility registry and a pattern entry for facility record numbers), with fixed ids so
the server can PUT them at every start-up without creating duplicates.

Phone numbers are deliberately absent: FHIR carries them as ``ContactPoint`` (``telecom``), not
as an Identifier, so they have no naming system.
See: https://hl7.org/fhir/R4/namingsystem.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sokhoe.fhir.narrative import narrative
from sokhoe.mpi.identifiers import (
    BHXH,
    BHYT,
    BIRTH_CERTIFICATE,
    CCCD,
    CMND,
    FACILITY,
    PASSPORT,
    PRACTITIONER,
)
from sokhoe.prescribing.catalogue import REGISTRATION_SYSTEM
from sokhoe.registry.facilities import HEALTH_AUTHORITY

PUBLISHER = "sokhoe"
DATE = "2025-07-01"
"""Fixed publication date (the day the 2025 reforms took effect), so output is reproducible."""
MRN_PATTERN = "https://fhir.sokhoe.vn/sid/mrn/{facility}"
"""Not one system but a family: ``{facility}`` is the facility's MA_CSKCB code."""
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


@dataclass(frozen=True, slots=True)
class _Entry:
    id: str
    name: str
    uri: str
    type_code: str
    """HL7 v2 table 0203 identifier type."""
    responsible: str
    description: str
    usage: str


_ENTRIES = (
    _Entry(
        "cccd",
        "VietnamPersonalIdentificationNumber",
        CCCD,
        "NI",
        "Bộ Công an (Ministry of Public Security)",
        "Vietnamese 12-digit personal identification number (số định danh cá nhân), printed on "
        "the chip citizen ID card (căn cước công dân, CCCD; căn cước since 2024). Since Decree "
        "102/2025/ND-CP it is also the health ID. Structure: 3-digit code of the province of "
        "birth registration (pre-2025 codes), a sex-and-century digit, the 2-digit birth year "
        "and 6 serial digits; no check digit.",
        "Identifies a citizen (Patient, RelatedPerson). Numbers can be cancelled and re-issued, "
        "so a Patient may carry old values with a period.",
    ),
    _Entry(
        "cmnd",
        "VietnamOldIdentityCardNumber",
        CMND,
        "NI",
        "Bộ Công an (Ministry of Public Security)",
        "Old 9-digit identity card number (chứng minh nhân dân, CMND), replaced by the 12-digit "
        "personal ID; still found in the CCCD QR code and in older records.",
        "Secondary identifier of a citizen (Patient), kept for matching old records.",
    ),
    _Entry(
        "bhyt",
        "VietnamHealthInsuranceCardNumber",
        BHYT,
        "SB",
        "Bảo hiểm xã hội Việt Nam (Vietnam Social Security)",
        "Health-insurance card number (mã thẻ bảo hiểm y tế, BHYT): 15 characters = 2-letter "
        "beneficiary group + benefit level digit 1-5 + 2-digit province code + 10-digit "
        "social-insurance number.",
        "Identifies an insured person's current card (Patient, Coverage); changes when the group "
        "or benefit level changes.",
    ),
    _Entry(
        "bhxh",
        "VietnamSocialInsuranceNumber",
        BHXH,
        "SS",
        "Bảo hiểm xã hội Việt Nam (Vietnam Social Security)",
        "10-digit social-insurance number (mã số bảo hiểm xã hội, BHXH): the stable tail of every "
        "BHYT card number a person is issued.",
        "Identifies an insured person across card changes (Patient).",
    ),
    _Entry(
        "giay-khai-sinh",
        "VietnamBirthCertificateNumber",
        BIRTH_CERTIFICATE,
        "BCT",
        "Cơ quan đăng ký hộ tịch (civil registry: the commune's People's Committee)",
        "Birth certificate number (số giấy khai sinh) as the civil registry printed it; "
        "children registered in the electronic civil registry also get the 12-digit personal "
        "ID (format unconfirmed: kept as printed, spaces removed).",
        "Identifies a child (Patient) before or beside their personal ID; a parent names it to "
        "ask for the child's health book.",
    ),
    _Entry(
        "passport",
        "VietnamPassportNumber",
        PASSPORT,
        "PPN",
        "Cục Quản lý xuất nhập cảnh (Immigration Department)",
        "Passport number (số hộ chiếu), used mainly for foreigners without a Vietnamese "
        "personal ID.",
        "Identifies a person (Patient) who has no personal ID; record the issuing country in "
        "Identifier.assigner.",
    ),
    _Entry(
        "ma-cskcb",
        "VietnamHealthFacilityCode",
        FACILITY,
        "FI",
        "Bảo hiểm xã hội Việt Nam (Vietnam Social Security)",
        "Health-facility code (mã cơ sở khám bệnh, chữa bệnh, MA_CSKCB) used in health-insurance "
        "claims (QĐ 384/2019): 2-digit province code + 3 digits.",
        "Identifies a health facility (Organization, Location).",
    ),
    _Entry(
        "cchn",
        "VietnamPractisingCertificateNumber",
        PRACTITIONER,
        "LN",
        "Bộ Y tế or the provincial Sở Y tế (Ministry / Department of Health)",
        "Practising-certificate number of a health worker (chứng chỉ hành nghề, CCHN; giấy phép "
        "hành nghề since the 2023 Law on Medical Examination and Treatment), commonly printed as "
        "serial/issuer-CCHN (e.g. 000123/BYT-CCHN); the exact format is unconfirmed.",
        "Identifies a licensed health worker (Practitioner).",
    ),
    _Entry(
        "health-authority",
        "SokhoeHealthAuthorityCode",
        HEALTH_AUTHORITY,
        "XX",
        "sokhoe",
        "Short code of a health authority (cơ quan quản lý y tế) in the sokhoe facility registry: "
        "BYT (Bộ Y tế), BQP, BCA, or SYT + 2-digit province code (Sở Y tế). Local to sokhoe.",
        "Identifies the parent authority Organization of facilities.",
    ),
    _Entry(
        "so-dang-ky",
        "VietnamDrugRegistrationNumber",
        REGISTRATION_SYSTEM,
        "XX",
        "Cục Quản lý Dược, Bộ Y tế (Drug Administration of Vietnam)",
        "Registration number of a medicinal product (số đăng ký lưu hành, SĐK; SO_DANG_KY of "
        "XML 130 table 2), e.g. VD-… for products made in Vietnam and VN-… for imported ones; "
        "the exact formats are unconfirmed and not checked.",
        "Identifies a registered medicinal product (Medication.identifier in the drug catalogue).",
    ),
    _Entry(
        "mrn",
        "VietnamFacilityMedicalRecordNumber",
        MRN_PATTERN,
        "MR",
        "Each health facility",
        "Pattern, not a single system: each facility's own medical record / patient number (mã "
        "bệnh nhân, số hồ sơ) has the system https://fhir.sokhoe.vn/sid/mrn/{facility}, where "
        "{facility} is the facility's MA_CSKCB code (e.g. .../mrn/01001).",
        "Identifies a patient within one facility (Patient); use sokhoe.mpi.identifiers."
        "mrn_system(code) to build the concrete system URI.",
    ),
)


def _resource(e: _Entry) -> dict[str, Any]:
    return {
        "resourceType": "NamingSystem",
        "id": e.id,
        "text": narrative(e.name, e.description),
        "name": e.name,
        "status": "active",
        "kind": "identifier",
        "date": DATE,
        "publisher": PUBLISHER,
        "responsible": e.responsible,
        "type": {"coding": [{"system": _V2_0203, "code": e.type_code}]},
        "description": e.description,
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "VN"}]}],
        "usage": e.usage,
        "uniqueId": [{"type": "uri", "value": e.uri, "preferred": True}],
    }


def naming_systems() -> list[dict[str, Any]]:
    """Every NamingSystem, in a fixed order with fixed ids."""
    return [_resource(e) for e in _ENTRIES]


def registry_resources() -> list[dict[str, Any]]:
    """What the server should PUT at start-up: the NamingSystems, and nothing else.

    Facilities and practitioners are generated per demo seed, so they are loaded with the demo
    data rather than here.
    """
    return naming_systems()
