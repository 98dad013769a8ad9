"""The codes a claim needs that the clinical record does not carry: one table of constants.

Why one place: each value below is a reading of a regulation whose official wording was not
(fully) read, or a simplification of a rule with many cases; keeping them together makes the
list of what to confirm with the facility's appraisal officer short and visible. Each says
"unconfirmed" where that applies. Real deployments override them per facility (department codes
in particular are the facility's own mapping to QĐ 1804/QĐ-BYT appendix 02).
"""

from __future__ import annotations

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"

MA_QUOCTICH_VIETNAM = "000"
"""Nationality code of Vietnam in the XML (VIETNAM.md; unconfirmed against the code list)."""
DEPARTMENT = {"AMB": "K01", "EMER": "K02", "IMP": "K03"}
"""``MA_KHOA`` by Encounter.class: examination, emergency, general internal medicine (QĐ 1804
appendix 02 numbering as commonly used; unconfirmed). Real deployments map their own wards."""
# ``MUC_HUONG`` (the fund's share by card level, route, visit cost and date) is not a constant:
# the versioned rules are in sokhoe.interop.claims.benefit, shared with the bill.
DOITUONG_INSURED = "1.1"
DOITUONG_EMERGENCY = "2"
DOITUONG_UNINSURED = "9"
"""``MA_DOITUONG_KCB`` (QĐ 3276/QĐ-BYT appendix 1): "2" emergency and "9" not under insurance
are as the digest reads; "1.1" for every other insured visit is a simplification
(unconfirmed: the full priority order of the 27 codes is not modelled)."""
DOITUONG_REFERRED = "1.3"
"""``MA_DOITUONG_KCB`` of an insured visit the patient came to with a referral paper (*có giấy
chuyển tuyến*): as public appraisal checkers read the code list, which then expect
``GIAY_CHUYEN_TUYEN`` and ``MA_NOI_DI`` (unconfirmed: the official list was not read)."""
REFERRAL_FIELDS = {
    "MA_NOI_DI": "insurance code of the facility that referred the patient here",
    "MA_NOI_DEN": "insurance code of the facility this visit referred the patient to",
    "GIAY_CHUYEN_TUYEN": "the referral's ServiceRequest id",
}
"""What XML1's referral fields carry (unconfirmed: the official wording of the fields was
not read; ``GIAY_CHUYEN_TUYEN`` is the number of the referral paper, and the platform's slip
prints no number of its own, so the id of the referral it prints stands in)."""
LOAI_KCB = {"AMB": "01", "EMER": "01", "IMP": "03"}
LOAI_KCB_SHORT_STAY = "09"
"""Inpatient stays under 4 hours are "09" (QĐ 1804/QĐ-BYT appendix 01)."""
KET_QUA = {"resolved": "1", "remission": "1", "inactive": "1"}
"""``KET_QUA_DTRI``: 1 cured for a resolved diagnosis, otherwise 2 improved (unconfirmed)."""
PAYMENT_FEE_FOR_SERVICE = "1"
"""``MA_PTTT``: 1 fee-for-service (unconfirmed)."""
PAY_IN_SCOPE = "1"
"""``PHAM_VI``: 1 within the insurance benefit list."""
VITALS = {
    "8310-5": ("Nhiệt độ", "°C"),
    "8867-4": ("Mạch", "lần/phút"),
    "29463-7": ("Cân nặng", "kg"),
    "8302-2": ("Chiều cao", "cm"),
}
