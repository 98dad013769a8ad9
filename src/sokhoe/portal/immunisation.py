"""Vietnam's expanded programme on immunisation for children (EPI, *Tiêm chủng mở rộng*):
the schedule as a versioned table, and where a child stands on it.

Given the child's birth date and the Immunizations in their record, :func:`plan` says for each
dose of the schedule whether it was **given**, is **due** (its window is open), **overdue**
(its window passed without it) or **upcoming**. The portal's vaccination page shows it and the
reminder job (``portal/reminders.py``) texts a parent before a dose falls due.

The table follows the programme's schedule as the Ministry of Health publishes it for parents:
at birth the hepatitis B birth dose (within 24 hours) and BCG; at 2, 3 and 4 months the 5-in-1
vaccine (diphtheria, pertussis, tetanus, hepatitis B, Hib) and oral polio; inactivated polio at
5 and 9 months; measles at 9 months; Japanese encephalitis from 12 months (two doses one to two
weeks apart, a third a year later); at 18 months the DTP booster and measles-rubella.
**Unconfirmed** (the legal text of the current schedule, Thông tư 10/2024/TT-BYT and the
programme's own guidance, was not read; secondary sources only): the windows a dose stays
"due" (:data:`GRACE`, a month unless said), the minimum intervals between doses of a series,
BCG's window, which vaccines outside the programme (the 6-in-1 sold privately) count for a
series (a private DTaP booster counts for the DTP booster, a combined vaccine's fourth dose does
not), the pertussis component of the programme's 5-in-1 (whole-cell, so CVX 198 "DTP-hepB-Hib
pentavalent non-US" rather than a DTaP code), oral polio being the bivalent vaccine (CVX 178)
and Japanese encephalitis the programme's inactivated subcutaneous vaccine (CVX 39). Each is a
row of the table: a change of schedule is a new :data:`VERSION` of it, not new code.

A dose counts when an Immunization names the vaccine by its CVX code (or by this table's own
code system :data:`EPI`, for a declaration with no CVX code), is ``completed``, and is not a
declaration the station refuted; the doses of a series are counted in date order.
See: https://hl7.org/fhir/R4/immunization.html and https://www2a.cdc.gov/vaccines/iis/iisstandards/vaccines.asp?rpt=cvx
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from sokhoe.access.guard import GuardedRepository
from sokhoe.portal.selfdeclared import Verification, verification

VERSION: Final = "vn-epi-2025.1"
"""The schedule's version: a change of the programme is a new version of the table."""
CVX: Final = "http://hl7.org/fhir/sid/cvx"
EPI: Final = "https://fhir.sokhoe.vn/CodeSystem/epi-vaccine"
"""This table's vaccine keys as a code system (``bcg``, ``penta``…), for Immunizations that
carry no CVX code (a vaccination card read out by a parent)."""
VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")
CHILDHOOD_MONTHS: Final = 72
"""Past 6 years the programme's schedule no longer says what is due (given doses still show)."""
GRACE: Final = timedelta(days=30)
"""How long after its recommended date a dose stays "due" before it is "overdue" (unconfirmed:
the programme's own catch-up rules were not read)."""

Status = Literal["given", "due", "overdue", "upcoming"]


def N_(message: str) -> str:
    """Mark ``message`` for the portal's catalogue; the page translates it where shown."""
    return message


@dataclass(frozen=True)
class Vaccine:
    key: str
    name: str
    """English, translated by the pages (``portal`` catalogue)."""
    name_vi: str
    """Vietnamese, for the text message (always Vietnamese): the vaccine, never an illness."""
    cvx: str | None
    """The code the programme's vaccine is recorded with."""
    counts: frozenset[str]
    """CVX codes whose doses count for this series."""


@dataclass(frozen=True)
class Dose:
    vaccine: str
    number: int
    months: int
    """Recommended age in months (0 at birth)."""
    days: int = 0
    """… plus days (the second Japanese encephalitis dose, a week after the first)."""
    after_previous: timedelta | None = None
    """Minimum time after the previous dose of the series, when that was given."""
    grace: timedelta = GRACE
    when: str = ""
    """The age as the page says it (English msgid)."""


VACCINES: Final[dict[str, Vaccine]] = {
    v.key: v
    for v in (
        Vaccine(
            "hepb-birth",
            N_("Hepatitis B, birth dose"),
            "viêm gan B sơ sinh",
            "08",
            frozenset({"08", "45"}),
        ),
        Vaccine("bcg", N_("BCG (tuberculosis)"), "BCG", "19", frozenset({"19"})),
        Vaccine(
            "penta",
            N_("5-in-1: diphtheria, pertussis, tetanus, hepatitis B, Hib"),
            "5 trong 1",
            "198",
            frozenset({"198", "102", "146"}),
        ),
        Vaccine(
            "opv",
            N_("Polio, by mouth (OPV)"),
            "bại liệt uống (OPV)",
            "178",
            frozenset({"178", "02", "179", "182", "89"}),
        ),
        Vaccine(
            "ipv",
            N_("Polio, injected (IPV)"),
            "bại liệt tiêm (IPV)",
            "10",
            frozenset({"10", "146", "110", "120"}),
        ),
        Vaccine("measles", N_("Measles"), "sởi", "05", frozenset({"05", "03", "04", "94"})),
        Vaccine(
            "je",
            N_("Japanese encephalitis"),
            "viêm não Nhật Bản",
            "39",
            frozenset({"39", "134", "129"}),
        ),
        Vaccine(
            "dtp",
            N_("DTP booster: diphtheria, pertussis, tetanus"),
            "DPT nhắc lại",
            "01",
            frozenset({"01", "20", "106", "107"}),
        ),
        Vaccine(
            "mr",
            N_("Measles-rubella (MR)"),
            "sởi - rubella (MR)",
            "04",
            frozenset({"04", "03", "94"}),
        ),
    )
}
"""The programme's vaccines (CVX codes checked against the CDC's CVX table)."""

WEEK, MONTH = timedelta(days=7), timedelta(days=28)
SCHEDULE: Final[tuple[Dose, ...]] = (
    Dose("hepb-birth", 1, 0, grace=timedelta(days=1), when=N_("At birth (within 24 hours)")),
    Dose("bcg", 1, 0, when=N_("At birth (within the first month)")),
    Dose("penta", 1, 2, when=N_("2 months")),
    Dose("opv", 1, 2, when=N_("2 months")),
    Dose("penta", 2, 3, after_previous=MONTH, when=N_("3 months")),
    Dose("opv", 2, 3, after_previous=MONTH, when=N_("3 months")),
    Dose("penta", 3, 4, after_previous=MONTH, when=N_("4 months")),
    Dose("opv", 3, 4, after_previous=MONTH, when=N_("4 months")),
    Dose("ipv", 1, 5, when=N_("5 months")),
    Dose("ipv", 2, 9, after_previous=MONTH, when=N_("9 months")),
    Dose("measles", 1, 9, when=N_("9 months")),
    Dose("je", 1, 12, when=N_("12 months")),
    Dose("je", 2, 12, 7, after_previous=WEEK, when=N_("1 to 2 weeks after the first dose")),
    Dose("je", 3, 24, after_previous=timedelta(days=365), when=N_("1 year after the second dose")),
    Dose("dtp", 1, 18, when=N_("18 months")),
    Dose("mr", 1, 18, when=N_("18 months")),
)
"""Version :data:`VERSION` of the schedule, in the order a parent reads it."""


def add_months(day: date, months: int) -> date:
    """``day`` plus whole months (the 31st becomes the month's last day)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_old(birth: date, today: date) -> int:
    months = (today.year - birth.year) * 12 + today.month - birth.month
    return months - (today.day < birth.day)


@dataclass(frozen=True)
class Given:
    """An Immunization counted on the schedule."""

    day: date
    resource: dict[str, Any]

    @property
    def declared(self) -> Verification | None:
        """Where the station's check stands when the parent declared it (None: recorded)."""
        return verification(self.resource)


@dataclass(frozen=True)
class DoseStatus:
    dose: Dose
    vaccine: Vaccine
    status: Status
    due: date
    """When it is (or was) recommended."""
    given: Given | None = None

    @property
    def key(self) -> str:
        """``<vaccine>:<dose>``: the reminder's key, with the patient (``portal/reminders``)."""
        return f"{self.vaccine.key}:{self.dose.number}"


@dataclass(frozen=True)
class Plan:
    """A person's place on the schedule."""

    birth: date | None
    today: date
    child: bool
    """Young enough for the schedule to say what is due."""
    doses: list[DoseStatus]
    other: list[Given] = field(default_factory=list)
    """Vaccinations recorded that are not on the schedule."""

    @property
    def due(self) -> list[DoseStatus]:
        return [d for d in self.doses if d.status in ("due", "overdue")]


def _day(resource: dict[str, Any]) -> date | None:
    text = str(resource.get("occurrenceDateTime") or "")
    try:
        if len(text) > 10:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return (moment.astimezone(VIETNAM) if moment.tzinfo else moment).date()
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _series(resource: dict[str, Any]) -> list[str]:
    """The schedule's series an Immunization counts for."""
    found: list[str] = []
    for coding in (resource.get("vaccineCode") or {}).get("coding", []):
        code = str(coding.get("code", ""))
        if coding.get("system") == EPI and code in VACCINES:
            found.append(code)
        elif coding.get("system") == CVX:
            found += [k for k, v in VACCINES.items() if code in v.counts and k not in found]
    return found


def _counts(resource: dict[str, Any]) -> bool:
    if resource.get("status") != "completed":
        return False
    return verification(resource) != "refuted"


def plan(birth: date | None, immunizations: Sequence[dict[str, Any]], today: date) -> Plan:
    """Each dose of the schedule for a person born on ``birth``, on ``today``."""
    given: dict[str, list[Given]] = {k: [] for k in VACCINES}
    other: list[Given] = []
    for resource in immunizations:
        day = _day(resource)
        if day is None or not _counts(resource):
            continue
        keys = _series(resource) if birth is None or day >= birth else []  # not before birth
        for key in keys:
            given[key].append(Given(day, resource))
        if not keys:
            other.append(Given(day, resource))
    for doses in given.values():
        doses.sort(key=lambda g: g.day)
    # the birth dose of hepatitis B is the first hepatitis B vaccine within the first week only
    if birth is not None:
        given["hepb-birth"] = [g for g in given["hepb-birth"] if g.day <= birth + WEEK][:1]
    child = birth is not None and months_old(birth, today) < CHILDHOOD_MONTHS
    out: list[DoseStatus] = []
    for dose in SCHEDULE:
        vaccine = VACCINES[dose.vaccine]
        series = given[dose.vaccine]
        this = series[dose.number - 1] if len(series) >= dose.number else None
        previous = (
            series[dose.number - 2] if dose.number > 1 and len(series) >= dose.number - 1 else None
        )
        due = add_months(birth, dose.months) + timedelta(days=dose.days) if birth else today
        if previous is not None and dose.after_previous is not None:
            due = max(due, previous.day + dose.after_previous)
        if this is not None:
            out.append(DoseStatus(dose, vaccine, "given", due, this))
        elif not child:
            continue  # an adult's missing childhood doses are not "overdue" to anyone
        elif today < due:
            out.append(DoseStatus(dose, vaccine, "upcoming", due))
        elif today < due + dose.grace:
            out.append(DoseStatus(dose, vaccine, "due", due))
        else:
            out.append(DoseStatus(dose, vaccine, "overdue", due))
    return Plan(birth, today, child, out, sorted(other, key=lambda g: g.day))


def today_in_vietnam(repo: GuardedRepository) -> date:
    return repo.clock().astimezone(VIETNAM).date()


@dataclass(frozen=True)
class Book:
    """Whose schedule it is, as the caller may see it."""

    patient_id: str
    patient: dict[str, Any]
    plan: Plan


def book_of(repo: GuardedRepository, patient_id: str, today: date | None = None) -> Book:
    """The person's schedule, read through the caller's door (their own or their child's)."""
    patient = repo.read("Patient", patient_id).content or {}
    query = repo.parse_query(
        "Immunization",
        [("patient", f"Patient/{patient_id}"), ("_count", "500"), ("_total", "none")],
        strict=True,
    )
    found = [m.content for m in repo.search(query).matches if m.content is not None]
    try:
        birth = date.fromisoformat(str(patient.get("birthDate", "")))
    except ValueError:
        birth = None
    return Book(patient_id, patient, plan(birth, found, today or today_in_vietnam(repo)))


__all__ = [
    "CVX",
    "EPI",
    "SCHEDULE",
    "VACCINES",
    "VERSION",
    "Book",
    "Dose",
    "DoseStatus",
    "Given",
    "Plan",
    "Vaccine",
    "add_months",
    "book_of",
    "plan",
    "today_in_vietnam",
]
