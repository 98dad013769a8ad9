"""The words the health book uses for codes: what a resident reads instead of ``AMB``, ``DX`` or
``partially-dispensed``.

Each is an English message id (marked with :func:`N_` so the ``portal`` catalogue extracts it)
that the pages translate when they show it; the printed book, always Vietnamese, translates it
with the same catalogue. Codes without a word here are shown as the record wrote them.
"""

from __future__ import annotations

from typing import Final


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; it is translated where it is shown."""
    return message


VISIT_KINDS: Final[dict[str, str]] = {
    "AMB": N_("Outpatient visit"),
    "IMP": N_("Inpatient stay"),
    "ACUTE": N_("Inpatient stay"),
    "NONAC": N_("Inpatient stay"),
    "SS": N_("Day treatment"),
    "EMER": N_("Emergency"),
    "HH": N_("Home visit"),
    "VR": N_("Remote consultation"),
    "FLD": N_("Outreach visit"),
}
"""Encounter.class (v3 ActCode) as the visit type (*hình thức khám*)."""
MODALITIES: Final[dict[str, str]] = {
    "DX": N_("X-ray"),
    "CR": N_("X-ray"),
    "DR": N_("X-ray"),
    "RF": N_("Fluoroscopy"),
    "CT": N_("CT scan"),
    "MR": N_("MRI scan"),
    "US": N_("Ultrasound"),
    "MG": N_("Mammography"),
    "NM": N_("Nuclear medicine scan"),
    "PT": N_("PET scan"),
    "XA": N_("Angiography"),
    "ES": N_("Endoscopy"),
    "ECG": N_("Electrocardiogram"),
}
"""ImagingStudy.modality (DICOM) in plain words."""
DISPENSING: Final[dict[str, str]] = {
    "issued": N_("Not bought yet"),
    "partially-dispensed": N_("Partly bought"),
    "completed": N_("Bought in full"),
    "cancelled": N_("Cancelled by the doctor"),
    "expired": N_("Too late to buy: the buying period is over"),
}
"""A prescription's dispensing state (``prescribing/dispensing_state.py``) for its patient."""
VERIFICATION: Final[dict[str, str]] = {
    "unconfirmed": N_("Waiting for the health station to confirm"),
    "confirmed": N_("Confirmed by the health station"),
    "refuted": N_("Not confirmed by the health station"),
}
"""Where the station's check of a self-declared item stands (``selfdeclared.DISPLAYS`` are
their Vietnamese words, which the catalogue gives too)."""
JUDGEMENTS: Final[dict[str, str]] = {
    "low": N_("lower than normal"),
    "normal": N_("within the normal range"),
    "high": N_("higher than normal"),
}
SECTIONS: Final[dict[str, str]] = {
    "29545-1": N_("Examination"),
    "11348-0": N_("Medical history and course"),
    "30954-2": N_("Significant results"),
    "18776-5": N_("Treatment"),
    "69730-0": N_("Next steps and advice"),
}
"""The visit summary's parts by LOINC section code (``clinic/visit.py`` writes them)."""
FOLLOW_UP: Final = N_("Follow-up visit")
"""The clinic writes this (in English) as a follow-up Appointment's description."""
UNITS: Final[dict[str, str]] = {"/min": N_("/min"), "kg/m2": "kg/m²"}
"""Units as a resident reads them (UCUM writes ``/min``: "lần/phút" in Vietnamese)."""
GENDERS: Final[dict[str, str]] = {
    "male": N_("Male"),
    "female": N_("Female"),
    "other": N_("Other"),
    "unknown": N_("Unknown"),
}

__all__ = [
    "DISPENSING",
    "FOLLOW_UP",
    "GENDERS",
    "JUDGEMENTS",
    "MODALITIES",
    "N_",
    "SECTIONS",
    "UNITS",
    "VERIFICATION",
    "VISIT_KINDS",
]
