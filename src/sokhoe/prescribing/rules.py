"""The prescribing rules as data: one versioned table, each limit with its source.

A change of the rules is a new :class:`RuleSet` with its own version and date, never an edit of
one in force: a prescription records the version it was checked against (in its
``DetectedIssue``s), so a check made last year can be explained with last year's rules.

Sources. Circular 26/2025/TT-BYT (in force 1 July 2025; replaced Circulars 52/2017, 18/2018,
04/2022 and 27/2021) — as summarised in ``VIETNAM.md``; the wording of its articles was not
read here, so every limit below is marked ``unconfirmed`` until checked against the gazette:

- at most 30 days of treatment; up to 90 days for the chronic diseases the Ministry lists;
- narcotics (N): at most 7 days for acute pain (cancer pain: stages of up to 10 days), and only
  at facilities with inpatient beds;
- psychotropics and precursors (H): at most 10 days for acute illness, 30 days long-term;
- N and H medicines on their own prescription; a prescription is filled within 5 days.

The chronic-disease list below follows the appendix of Circular 04/2022/TT-BYT ("danh mục bệnh,
nhóm bệnh được kê đơn tối đa 90 ngày"), which Circular 26/2025 is said to carry over; the codes
are ICD-10 categories and were not checked line by line against the appendix (unconfirmed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

from sokhoe.prescribing.code import Kind


@dataclass(frozen=True)
class RuleSet:
    """One version of the prescribing limits."""

    version: str
    in_force: date
    source: str
    max_days: int = 30
    max_days_chronic: int = 90
    max_days_narcotic_acute: int = 7
    max_days_narcotic_cancer: int = 10
    max_days_psychotropic_acute: int = 10
    max_days_psychotropic_long: int = 30
    fill_within: timedelta = timedelta(days=5)
    """How long after issue a prescription may be dispensed."""
    child_months: int = 72
    """Below this age a child's weight is required and the dose per kg shown."""
    chronic_icd10: frozenset[str] = field(default_factory=frozenset)
    """ICD-10 categories (three characters) or codes of the chronic diseases allowed 90 days."""
    cancer_icd10_prefixes: tuple[str, ...] = ("C",)
    """Cancer diagnoses (ICD-10 chapter II, C00–C97): narcotics in stages of up to 10 days."""
    unconfirmed: tuple[str, ...] = ()

    def is_chronic(self, icd10: str) -> bool:
        code = icd10.strip().upper().replace(".", "")
        return code[:3] in self.chronic_icd10 or code in self.chronic_icd10

    def is_cancer(self, icd10: str) -> bool:
        code = icd10.strip().upper()
        return code.startswith(self.cancer_icd10_prefixes) and code[1:3].isdigit()

    def max_days_for(self, kind: Kind, diagnoses: list[str], long_term: bool = False) -> int:
        """The longest treatment a prescription of ``kind`` may cover for these diagnoses."""
        if kind == "N":
            cancer = any(self.is_cancer(d) for d in diagnoses)
            return self.max_days_narcotic_cancer if cancer else self.max_days_narcotic_acute
        if kind == "H":
            long, acute = self.max_days_psychotropic_long, self.max_days_psychotropic_acute
            return long if long_term else acute
        if any(self.is_chronic(d) for d in diagnoses):
            return self.max_days_chronic
        return self.max_days


CHRONIC_2022: Final = frozenset(
    {
        # infectious: tuberculosis sequelae, chronic hepatitis, HIV
        "B18", "B20", "B21", "B22", "B23", "B24", "B90",
        # endocrine: thyroid, diabetes, adrenal, lipids, gout
        "E01", "E02", "E03", "E04", "E05", "E06", "E07",
        "E10", "E11", "E12", "E13", "E14", "E20", "E21", "E22", "E23", "E24", "E27",
        "E28", "E78", "M10",
        # blood
        "D56", "D57", "D58", "D61", "D66", "D67", "D68", "D69",
        # mental and nervous system
        "F00", "F01", "F02", "F03", "F20", "F21", "F22", "F25", "F31", "F32", "F33", "F41",
        "F42", "G20", "G21", "G30", "G35", "G40", "G41", "G43", "G70",
        # circulatory
        "I05", "I06", "I07", "I08", "I09", "I10", "I11", "I12", "I13", "I15", "I20", "I25",
        "I42", "I48", "I49", "I50", "I63", "I69", "I70", "I73", "I83",
        # respiratory
        "J41", "J42", "J43", "J44", "J45", "J47", "J84",
        # digestive
        "K21", "K25", "K26", "K27", "K50", "K51", "K70", "K73", "K74", "K86",
        # skin, musculoskeletal
        "L40", "L93", "M05", "M06", "M07", "M08", "M15", "M16", "M17", "M32", "M34", "M45",
        "M80", "M81",
        # genitourinary
        "N03", "N04", "N11", "N18", "N40",
        # eye
        "H40",
    }
)  # fmt: skip

TT26_2025: Final = RuleSet(
    version="tt26-2025.1",
    in_force=date(2025, 7, 1),
    source=(
        "Thông tư 26/2025/TT-BYT (kê đơn thuốc hóa dược, sinh phẩm); danh mục bệnh mạn tính "
        "theo phụ lục Thông tư 04/2022/TT-BYT"
    ),
    chronic_icd10=CHRONIC_2022,
    unconfirmed=(
        "every limit: the articles of Circular 26/2025 were not read here",
        "chronic_icd10: categories from the 2022 appendix, not checked line by line",
        "max_days_narcotic_cancer: stages of up to 10 days for cancer pain",
    ),
)
RULE_SETS: Final[tuple[RuleSet, ...]] = (TT26_2025,)
"""Every version, oldest first."""


def rules_on(day: date) -> RuleSet:
    """The rules in force on ``day`` (the latest version in force by then)."""
    in_force = [r for r in RULE_SETS if r.in_force <= day]
    return in_force[-1] if in_force else RULE_SETS[0]


__all__ = ["CHRONIC_2022", "RULE_SETS", "TT26_2025", "RuleSet", "rules_on"]
