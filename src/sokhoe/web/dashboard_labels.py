"""What the dashboard's pages call the warehouse's columns and codes, in the reader's language.

The warehouse names its columns and codes for programs (``people_with_record``,
``ministry-sector``), and the CSV and Excel downloads keep those names so that scripts reading
them never break; the pages show words instead, from the ``dashboard`` message catalogue
(``web/i18n.py``), and numbers and dates the way the language writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sokhoe.warehouse.cells import SUPPRESSED_MARK
from sokhoe.web import i18n
from sokhoe.web.i18n import N_

DOMAIN: Final = "dashboard"


def gettext(lang: str, message: str, **variables: Any) -> str:
    """A message of the dashboard's code in ``lang`` (the message second, as extraction expects:
    ``web/catalogues.py``)."""
    return i18n.gettext(lang, DOMAIN, message, **variables)


COLUMNS: Final = {
    "age_band": N_("Age band"),
    "alarm": N_("Outbreak alert"),
    "antibiotic_pct": N_("With an antibiotic (%)"),
    "antibiotic_per_100_visits": N_("Antibiotic prescriptions per 100 visits"),
    "antibiotic_prescriptions": N_("Prescriptions with an antibiotic"),
    "atc_group": N_("ATC group"),
    "chapter": N_("ICD-10 chapter"),
    "children": N_("Children"),
    "cohort": N_("Birth cohort"),
    "commune": N_("Commune/Ward"),
    "commune_code": N_("Commune code"),
    "controlled": N_("Controlled"),
    "controlled_pct": N_("Controlled (%)"),
    "cost_vnd": N_("Cost (VND)"),
    "coverage_pct": N_("Coverage (%)"),
    "disease": N_("Disease"),
    "emr_live": N_("EMR live"),
    "emr_live_pct": N_("EMR live (%)"),
    "expected": N_("Expected"),
    "facilities": N_("Facilities"),
    "facility": N_("Facility"),
    "facility_code": N_("Facility code"),
    "filled": N_("Filled"),
    "filled_pct": N_("Filled (%)"),
    "icd10": N_("ICD-10 code"),
    "level": N_("Level"),
    "measured": N_("Measured"),
    "month": N_("Month"),
    "not_filled": N_("Not filled"),
    "not_filled_pct": N_("Not filled (%)"),
    "overlapping_prescriptions": N_("Overlapping prescriptions"),
    "partly": N_("Partly filled"),
    "partly_pct": N_("Partly filled (%)"),
    "people": N_("People"),
    "people_with_record": N_("People with a record"),
    "population": N_("Population"),
    "prescribed": N_("E-prescriptions issued"),
    "prescriptions": N_("Prescriptions"),
    "province": N_("Province/City"),
    "province_code": N_("Province code"),
    "repeated_tests": N_("Repeated tests"),
    "sector": N_("Sector"),
    "sex": N_("Sex"),
    "some_departments": N_("EMR in some departments"),
    "test": N_("Test"),
    "threshold": N_("Alert threshold"),
    "vaccinated": N_("Vaccinated"),
    "vaccine": N_("Vaccine"),
    "visits": N_("Visits"),
    "week": N_("Week (from Monday)"),
    "whole_facility": N_("EMR in the whole facility"),
    "year": N_("Year"),
}
"""Every column an indicator publishes (a test checks none is missing)."""

VALUES: Final = {
    "sector": {
        "public": N_("Public"),
        "ministry-sector": N_("Ministry or sector"),
        "private": N_("Private"),
    },
    "level": {
        "central": N_("Central hospital"),
        "provincial": N_("Provincial hospital"),
        "regional": N_("Regional health centre"),
        "commune": N_("Commune health station"),
        "private-clinic": N_("Private clinic"),
        "pharmacy": N_("Pharmacy"),
    },
    "sex": {
        "male": N_("Male"),
        "female": N_("Female"),
        "other": N_("Other"),
        "unknown": N_("Unknown"),
    },
    "disease": {
        "hypertension": N_("Hypertension"),
        "diabetes": N_("Diabetes"),
        "dengue": N_("Dengue"),
        "measles": N_("Measles"),
        "hand-foot-mouth": N_("Hand, foot and mouth disease"),
    },
}
"""The coded columns' codes (``registry/facilities.py``, FHIR's administrative gender, the
diseases of ``warehouse/catalogue.py`` and ``warehouse/notifiable.py``). Other columns hold
names (of places, facilities, vaccines, ICD-10 chapters) that are Vietnamese already."""

ROLES: Final = {
    "analyst": N_("analyst"),
    "system-admin": N_("system administrator"),
    "facility-admin": N_("facility administrator"),
    "registry-admin": N_("registry administrator"),
    "doctor": N_("doctor"),
    "nurse": N_("nurse"),
    "receptionist": N_("receptionist"),
    "pharmacist": N_("pharmacist"),
    "commune-health-worker": N_("commune health worker"),
    "insurance-appraiser": N_("insurance appraiser"),
    "system": N_("connected system"),
    "client": N_("connected system"),
    "citizen": N_("citizen"),
}
"""Staff roles (``access/principal.py``), and the kinds of caller without one."""

DATES: Final = frozenset({"month", "week"})
"""Period columns holding a date (``2026-01``, the Monday ``2026-01-05``): written
``01/2026``, ``05/01/2026``. Years and birth cohorts stay as they are."""


CHART_MESSAGES: Final = (
    N_("Autoscale"),
    N_("Box Select"),
    N_("Compare data on hover"),
    N_("Double-click on legend to isolate one trace"),
    N_("Double-click to zoom back out"),
    N_("Download plot"),
    N_("Download plot as a PNG"),
    N_("Image download succeeded"),
    N_("Lasso Select"),
    N_("Pan"),
    N_("Preparing image - this may take a few seconds"),
    N_("Reset axes"),
    N_("Show closest data on hover"),
    N_("Sorry, there was a problem downloading your image!"),
    N_("Toggle Spike Lines"),
    N_("Toggle show closest data on hover"),
    N_("Zoom"),
    N_("Zoom in"),
    N_("Zoom out"),
)
"""Plotly's own English (its tool bar's tips and notices), keyed by Plotly's text: a Plotly
locale's dictionary. See: https://github.com/plotly/plotly.js#using-a-locale"""

_VIETNAMESE_CALENDAR: Final = {
    "days": ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"],
    "shortDays": ["CN", "T2", "T3", "T4", "T5", "T6", "T7"],
    "months": [f"Tháng {m}" for m in range(1, 13)],
    "shortMonths": [f"Thg {m}" for m in range(1, 13)],
    "date": "%d/%m/%Y",
    "decimal": ",",
    "thousands": ".",
}
"""Plotly's locale format for Vietnamese: day and month names, ``dd/mm/yyyy``, ``1.234,5``."""


def chart_locale(lang: str) -> dict[str, Any] | None:
    """The Plotly locale of ``lang`` (None for English, Plotly's own)."""
    if lang != "vi":
        return None
    return {
        "name": lang,
        "dictionary": {message: gettext(lang, message) for message in CHART_MESSAGES},
        "format": _VIETNAMESE_CALENDAR,
    }


def heading(lang: str, column: str) -> str:
    """A column's heading (its programs' name when it has no label)."""
    label = COLUMNS.get(column)
    return gettext(lang, label) if label else column


def label(lang: str, column: str, value: Any) -> str:
    """A code of a coded column as a word; any other value as it is."""
    found = VALUES.get(column, {}).get(str(value))
    return gettext(lang, found) if found else str(value)


def role(lang: str, name: str) -> str:
    found = ROLES.get(name)
    return gettext(lang, found) if found else name


@dataclass(frozen=True)
class Cell:
    """A table cell as the page shows it, and its class (numbers right-aligned, hidden ones
    marked)."""

    text: str
    css: str = ""


def cell(lang: str, column: str, value: Any) -> Cell:
    """A published value (:func:`sokhoe.warehouse.publish.cell`) as the page's table shows it."""
    if value == SUPPRESSED_MARK:
        return Cell(SUPPRESSED_MARK, "suppressed")
    if value is None:
        return Cell("")
    if isinstance(value, bool):
        return Cell(gettext(lang, "yes") if value else gettext(lang, "no"))
    if isinstance(value, int | float):
        return Cell(i18n.format_number(value, lang), "num")
    if column in DATES:
        return Cell(i18n.format_date(str(value)))
    return Cell(label(lang, column, value))


__all__ = [
    "CHART_MESSAGES",
    "COLUMNS",
    "DOMAIN",
    "ROLES",
    "VALUES",
    "Cell",
    "cell",
    "chart_locale",
    "gettext",
    "heading",
    "label",
    "role",
]
