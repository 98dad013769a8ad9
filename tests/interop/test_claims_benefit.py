"""The insurance share: one versioned table, asked by the claim and the bill alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from sokhoe.interop.claims.benefit import RULES, Route, rules_on, share
from sokhoe.interop.claims.build import build_claim
from sokhoe.interop.claims.catalogue import PriceItem, demo_catalogue
from tests.interop.test_claims_build import _record

DAY = date(2026, 7, 15)
ABOVE = Decimal(400_000)
"""A visit costing more than 15 % of the base salary (351,000 đồng in 2026)."""


@pytest.mark.parametrize(
    ("level", "percent"), [("1", 100), ("2", 100), ("3", 95), ("4", 80), ("5", 100)]
)
def test_card_level_sets_the_share(level: str, percent: int) -> None:
    split = share(level, Route.RIGHT, ABOVE, DAY)
    assert split.percent == percent and not split.low_cost


def test_low_cost_threshold_is_15_percent_of_the_base_salary_of_the_day() -> None:
    # 2026: 0.15 × 2,340,000 = 351,000; one đồng under is paid in full, the threshold is not
    assert share("4", Route.RIGHT, Decimal("350999.99"), DAY).percent == 100
    assert share("4", Route.RIGHT, Decimal(351_000), DAY).percent == 80
    # June 2024 (base salary 1,800,000): the threshold was 270,000
    assert share("4", "right-route", Decimal(300_000), date(2024, 6, 30)).percent == 80
    assert share("4", "right-route", Decimal(300_000), date(2024, 7, 1)).percent == 100
    assert share("3", Route.EMERGENCY, Decimal(1000), DAY).low_cost


def test_rounding_of_a_95_percent_line() -> None:
    split = share("3", Route.RIGHT, ABOVE, DAY)
    # 95 % of 125,000.5 = 118,750.475 → 118,750.48 half-up; the patient pays the rest
    assert split.insurance(Decimal("125000.5")) == Decimal("118750.48")
    assert split.patient(Decimal("125000.5")) == Decimal("6250.02")


def test_wrong_route_shares_by_place_and_date() -> None:
    central = share("4", Route.WRONG_CENTRAL, ABOVE, DAY, inpatient=True)
    assert central.percent == 32  # 40 % of the level's 80 %
    assert share("4", Route.WRONG_CENTRAL, ABOVE, DAY).percent == 0  # outpatient: nothing
    # provincial inpatient: 60 % of the level until 2020, the full level from 2021
    provincial = Route.WRONG_PROVINCIAL
    assert share("3", provincial, ABOVE, date(2020, 12, 31), inpatient=True).percent == 57
    assert share("3", provincial, ABOVE, date(2021, 1, 1), inpatient=True).percent == 95
    # provincial outpatient: nothing until 30 June 2026, half the level from 1 July 2026
    assert share("3", Route.WRONG_PROVINCIAL, ABOVE, date(2026, 6, 30)).percent == 0
    assert share("3", Route.WRONG_PROVINCIAL, ABOVE, date(2026, 7, 1)).percent == Decimal("47.5")
    # self-referred visits do not get the low-cost rule (unconfirmed, configurable)
    assert share("4", Route.WRONG_CENTRAL, Decimal(1000), DAY, inpatient=True).percent == 32


def test_table_is_ordered_and_each_version_knows_its_base_salary() -> None:
    starts = [v.valid_from for v in RULES]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert rules_on(date(2024, 7, 1)).base_salary == 2_340_000
    assert rules_on(date(2024, 6, 30)).base_salary == 1_800_000
    assert rules_on(date(2026, 7, 15)).low_cost_threshold == 351_000
    with pytest.raises(ValueError, match="before 2018-12-01"):
        share("4", Route.RIGHT, ABOVE, RULES[0].valid_from - timedelta(days=1))
    with pytest.raises(ValueError, match="benefit level"):
        share("6", Route.RIGHT, ABOVE, DAY)


def test_a_deployment_passes_its_own_table() -> None:
    raised = (replace(RULES[-1], base_salary=Decimal(3_000_000)),)  # a future decree
    # 0.15 × 3,000,000 = 450,000: a 400,000 visit is now low-cost
    assert share("4", Route.RIGHT, ABOVE, DAY, table=raised).percent == 100
    assert share("4", Route.RIGHT, ABOVE, DAY).percent == 80


def test_the_claim_splits_lines_by_the_same_rule() -> None:
    """The emergency record of test_claims_build with a dearer splint: exam 50,600 + blood
    count 46,200 + splint 325,000.5 = 421,800.5 đồng, above 351,000, so level 3 pays 95 %."""
    catalogue = demo_catalogue()
    catalogue.add(
        PriceItem(
            "procedure", "NEP-BOT", "N05.01.010", "Nẹp bột cẳng tay", "Cái", Decimal("325000.5"), 10
        )
    )
    claim = build_claim(_record(), catalogue)
    splint = claim.tables["XML3"][-1]
    # 0.95 × 325,000.5 = 308,750.475 → 308,750.48
    assert (splint["MUC_HUONG"], splint["T_BHTT"], splint["T_BNCCT"]) == (
        "95",
        "308750.48",
        "16250.02",
    )
    summary = claim.tables["XML1"][0]
    # exam 48,070 + blood count 43,890 + splint 308,750.48 = 400,710.48
    assert summary["T_BHTT"] == "400710.48" and summary["T_BNCCT"] == "21090.02"
    assert claim.split is not None and claim.split.route == Route.EMERGENCY
