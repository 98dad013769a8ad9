"""How much of a visit the health-insurance fund pays: the rules in one versioned table.

Why one table: the share (*mức hưởng*) depends on the card's benefit level, the route by which
the patient came (*tuyến*, since Law 51/2024 the "level of technical expertise" of the
facility), the visit's total cost against the base salary (*lương cơ sở*), and the date,
because each of these changed by law or decree every year or two. The claims export
(:mod:`sokhoe.interop.claims.facts`) and the bill (:mod:`sokhoe.clinic.billing`) both ask
:func:`share`, so the fund's part on the bill is the fund's part on the claim.

Sources, and what is unconfirmed (the official texts were not read; every value below is
overridable by passing another ``table`` to :func:`share`):

- Levels (Law on Health Insurance art. 22 as amended by Law 46/2014 and Law 51/2024): 1 and 2
  → 100 %, 3 → 95 %, 4 → 80 %, 5 → 100 %. Not modelled: level 2's cap on high-tech services,
  level 5's services outside the benefit list, 100 % after 5 years' continuous enrolment.
- Low cost (Decree 146/2018/NĐ-CP art. 14, replaced by Decree 188/2025/NĐ-CP from 15 Aug
  2025): a visit whose total cost is under 15 % of the base salary is paid in full. A 2026 news
  page still lists the rule (15 % of 2,340,000 = 351,000 đồng); whether Decree 188 kept it
  word for word, and whether it applies to self-referred (wrong-route) visits, is unconfirmed:
  here it applies to the routes in :attr:`RuleVersion.low_cost_routes`.
- Base salary: 1,390,000 (Decree 72/2018, 1 July 2018), 1,490,000 (Decree 38/2019, 1 July
  2019), 1,800,000 (Decree 24/2023, 1 July 2023), 2,340,000 (Decree 73/2024, 1 July 2024).
  From memory of the decrees, not re-read (unconfirmed); a later change is a new row.
- Route: referred, emergency and right-route visits get the card's full level. Self-referred
  (wrong-route) visits get a fraction of it: central hospitals 40 % inpatient, nothing
  outpatient; provincial hospitals 60 % inpatient until 2020, 100 % from 1 Jan 2021, nothing
  outpatient (Law 46/2014 art. 22.3); from 1 July 2026 outpatient care at basic-level
  hospitals that were provincial before 2025 at 50 % (Decree 188/2025 art. 19, as read by the
  public digest nguyen2887/vn-healthcare ``bhyt-gd.md`` R10). All unconfirmed.

The split of one line: the fund pays ``percent`` of the insured amount, rounded half-up to
the hundredth of a đồng (QĐ 130 table 2); the patient pays the rest (*cùng chi trả*).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class Route(StrEnum):
    """How the patient came to the facility, as far as it changes the share."""

    RIGHT = "right-route"
    """At the registered facility or one the rules treat as equal (*đúng tuyến*, *thông tuyến*)."""
    REFERRED = "referred"
    """Sent by another facility with a referral (*chuyển tuyến* / *chuyển cơ sở*)."""
    EMERGENCY = "emergency"
    """Emergency care (*cấp cứu*): 100 % of the level at any facility (Law art. 22.5)."""
    WRONG_PROVINCIAL = "wrong-route-provincial"
    """Self-referred to a provincial hospital (since 2025: basic level, formerly provincial)."""
    WRONG_CENTRAL = "wrong-route-central"
    """Self-referred to a central hospital (since 2025: specialised level)."""


FULL_ROUTES = frozenset({Route.RIGHT, Route.REFERRED, Route.EMERGENCY})
_LEVELS = {
    "1": Decimal(100),
    "2": Decimal(100),
    "3": Decimal(95),
    "4": Decimal(80),
    "5": Decimal(100),
}


@dataclass(frozen=True)
class RuleVersion:
    """The rules in force from ``valid_from`` until the next version starts."""

    name: str
    valid_from: date
    basis: str
    """The law, decree or decision each change comes from."""
    base_salary: Decimal
    """*Lương cơ sở*, in đồng per month."""
    wrong_route: Mapping[Route, tuple[Decimal, Decimal]]
    """Fraction of the level paid to self-referred visits: (inpatient, outpatient)."""
    levels: Mapping[str, Decimal] = field(default_factory=lambda: dict(_LEVELS))
    """Percent paid by the card's benefit-level digit."""
    low_cost_fraction: Decimal = Decimal("0.15")
    """A visit costing less than this fraction of the base salary is paid in full."""
    low_cost_routes: frozenset[Route] = FULL_ROUTES

    @property
    def low_cost_threshold(self) -> Decimal:
        return self.base_salary * self.low_cost_fraction


def _wrong(
    provincial: tuple[str, str], central: tuple[str, str]
) -> dict[Route, tuple[Decimal, Decimal]]:
    return {
        Route.WRONG_PROVINCIAL: (Decimal(provincial[0]), Decimal(provincial[1])),
        Route.WRONG_CENTRAL: (Decimal(central[0]), Decimal(central[1])),
    }


# Every value below is unconfirmed (module docstring): base salaries are from memory of the
# decrees named, 2,340,000 is corroborated only by a 2026 news page (15 % = 351,000 đồng), the
# wrong-route fractions follow the law's text as commonly summarised and the public digest.
RULES: tuple[RuleVersion, ...] = (
    RuleVersion(
        "2018-12",
        date(2018, 12, 1),
        "Law 46/2014/QH13 art. 22; Decree 146/2018/NĐ-CP; base salary Decree 72/2018/NĐ-CP",
        Decimal(1_390_000),
        _wrong(("0.6", "0"), ("0.4", "0")),
    ),
    RuleVersion(
        "2019-07",
        date(2019, 7, 1),
        "base salary Decree 38/2019/NĐ-CP",
        Decimal(1_490_000),
        _wrong(("0.6", "0"), ("0.4", "0")),
    ),
    RuleVersion(
        "2021-01",
        date(2021, 1, 1),
        "Law 46/2014/QH13 art. 22.3: provincial inpatient care without referral at 100 %",
        Decimal(1_490_000),
        _wrong(("1", "0"), ("0.4", "0")),
    ),
    RuleVersion(
        "2023-07",
        date(2023, 7, 1),
        "base salary Decree 24/2023/NĐ-CP",
        Decimal(1_800_000),
        _wrong(("1", "0"), ("0.4", "0")),
    ),
    RuleVersion(
        "2024-07",
        date(2024, 7, 1),
        "base salary Decree 73/2024/NĐ-CP",
        Decimal(2_340_000),
        _wrong(("1", "0"), ("0.4", "0")),
    ),
    RuleVersion(
        "2025-07",
        date(2025, 7, 1),
        "Law 51/2024/QH15; Decree 188/2025/NĐ-CP (replaces Decree 146/2018)",
        Decimal(2_340_000),
        _wrong(("1", "0"), ("0.4", "0")),
    ),
    RuleVersion(
        "2026-07",
        date(2026, 7, 1),
        "Decree 188/2025/NĐ-CP art. 19: outpatient at formerly provincial hospitals at 50 %",
        Decimal(2_340_000),
        _wrong(("1", "0.5"), ("0.4", "0")),
    ),
)
"""Oldest first; see the module docstring for what each value rests on."""

CENT = Decimal("0.01")


def rules_on(on: date, table: Sequence[RuleVersion] = RULES) -> RuleVersion:
    """The version in force on ``on``; ValueError before the first one."""
    found = [v for v in table if v.valid_from <= on]
    if not found:
        raise ValueError(f"no health-insurance rules are known before {table[0].valid_from}")
    return max(found, key=lambda v: v.valid_from)


@dataclass(frozen=True)
class Split:
    """The fund's share of one visit and why."""

    percent: Decimal
    """``MUC_HUONG``: percent of each line's insured amount the fund pays (for self-referred
    visits the reduced share, e.g. 32 for 40 % of level 4: unconfirmed whether the portal
    expects that or the card's level in ``MUC_HUONG``)."""
    level_percent: Decimal
    """What the card's level alone gives."""
    route: Route
    low_cost: bool
    """Paid in full because the visit cost less than the threshold."""
    version: str

    def insurance(self, insured: Decimal) -> Decimal:
        """The fund's part of an insured amount (``T_BHTT``), to the hundredth of a đồng."""
        return (insured * self.percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)

    def patient(self, insured: Decimal) -> Decimal:
        """The patient's co-payment on an insured amount (``T_BNCCT``)."""
        return insured - self.insurance(insured)

    @property
    def reason(self) -> str:
        if self.low_cost:
            return f"visit under the low-cost threshold: paid in full (rules {self.version})"
        if self.percent != self.level_percent:
            return (
                f"{self.route.value}: {self.percent} % instead of the card's "
                f"{self.level_percent} % (rules {self.version})"
            )
        return f"card level: {self.percent} % (rules {self.version})"


def share(
    card_level: str | int,
    route: Route | str,
    visit_total: Decimal,
    on: date,
    *,
    inpatient: bool = False,
    table: Sequence[RuleVersion] = RULES,
) -> Split:
    """The fund's share of a visit on ``on`` (see the module docstring).

    ``card_level`` is the third character of the BHYT card (1–5); ``visit_total`` the total
    insured cost of the visit (``T_TONGCHI_BH``), which decides the low-cost rule;
    ``inpatient`` matters only to self-referred visits. ValueError for an unknown level or
    route, or a date before the table.
    """
    rules = rules_on(on, table)
    level = str(card_level)
    if level not in rules.levels:
        raise ValueError(f"unknown benefit level {level!r} (the card's third character, 1–5)")
    route = Route(route)
    level_percent = rules.levels[level]
    if route in FULL_ROUTES:
        percent = level_percent
    else:
        inpatient_fraction, outpatient_fraction = rules.wrong_route[route]
        percent = level_percent * (inpatient_fraction if inpatient else outpatient_fraction)
    low_cost = (
        route in rules.low_cost_routes and visit_total < rules.low_cost_threshold and percent < 100
    )
    if low_cost:
        percent = Decimal(100)
    return Split(_plain(percent), level_percent, route, low_cost, rules.name)


def _plain(value: Decimal) -> Decimal:
    """``32.0`` → ``32``, ``47.50`` → ``47.5`` (as ``MUC_HUONG`` is written)."""
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()
