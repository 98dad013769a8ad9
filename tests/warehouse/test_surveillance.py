"""Outbreak detectors: EARS C1-C3 against their definitions, improved Farrington, back-test."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sokhoe.cli import app
from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.backtest import (
    BacktestConfig,
    SyntheticConfig,
    default_detectors,
    run_backtest,
    score_detection,
    simulate,
)
from sokhoe.warehouse.surveillance import (
    RESULT_COLUMNS,
    FarringtonConfig,
    detect,
    ears_series,
    farrington_series,
    seasonal_levels,
)

SERIES = np.array([3, 5, 4, 6, 2, 5, 4, 6, 3, 5, 4, 7, 12, 20, 5, 4])


def c2_by_definition(y: np.ndarray, t: int) -> float:
    """C2 from its definition: baseline t-9 … t-3 (seven weeks, two-week lag)."""
    baseline = [float(v) for v in y[t - 9 : t - 2]]
    return (float(y[t]) - statistics.mean(baseline)) / statistics.stdev(baseline)


def test_c1_matches_its_definition() -> None:
    result = ears_series(SERIES, "C1")
    for t in range(7, len(SERIES)):
        baseline = [float(v) for v in SERIES[t - 7 : t]]
        mean, sd = statistics.mean(baseline), statistics.stdev(baseline)
        assert result.expected[t] == pytest.approx(mean)
        assert result.statistic[t] == pytest.approx((SERIES[t] - mean) / sd)
        assert result.threshold[t] == pytest.approx(mean + 3 * sd)
        assert result.alarm[t] == ((SERIES[t] - mean) / sd > 3)
    assert np.isnan(result.statistic[:7]).all()
    assert not result.alarm[:7].any()
    assert result.alarm[12] and result.alarm[13]  # 12 and 20 cases after weeks of 2-7


def test_c2_uses_a_two_week_lag() -> None:
    result = ears_series(SERIES, "C2")
    assert np.isnan(result.statistic[:9]).all()
    for t in range(9, len(SERIES)):
        assert result.statistic[t] == pytest.approx(c2_by_definition(SERIES, t))
    # the lag keeps week 13's baseline free of week 12's rise: C2 alarms two weeks running
    assert result.alarm[12] and result.alarm[13]


def test_c3_sums_the_positive_excesses_of_the_last_three_c2() -> None:
    result = ears_series(SERIES, "C3")
    assert np.isnan(result.statistic[:11]).all()
    for t in range(11, len(SERIES)):
        expected = sum(max(0.0, c2_by_definition(SERIES, i) - 1) for i in (t - 2, t - 1, t))
        assert result.statistic[t] == pytest.approx(expected)
        assert result.alarm[t] == (expected > 2)
    # the count threshold is consistent with the statistic: alarm <=> count > threshold
    finite = ~np.isnan(result.threshold)
    assert (result.alarm[finite] == (SERIES[finite] > result.threshold[finite])).all()


def test_thresholds_are_configurable() -> None:
    strict = ears_series(SERIES, "C1", threshold=10.0)
    default = ears_series(SERIES, "C1")
    assert default.alarm.sum() > strict.alarm.sum()
    assert strict.threshold[10] > default.threshold[10]


@pytest.mark.parametrize("method", ["C1", "C2", "C3"])
def test_a_flat_series_never_alarms_and_a_spike_does(method: str) -> None:
    flat = np.full(30, 6)
    assert not ears_series(flat, method).alarm.any()  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    spiky = rng.poisson(6, 30)
    spiky[25] = 40
    alarms = np.flatnonzero(ears_series(spiky, method).alarm)  # type: ignore[arg-type]
    assert 25 in alarms


def test_zero_standard_deviation_is_floored_at_min_sigma() -> None:
    y = np.array([0] * 7 + [1, 2])
    floored = ears_series(y, "C1")  # sigma 0.5: threshold 1.5 cases
    assert floored.threshold[7] == pytest.approx(1.5)
    assert floored.statistic[7] == pytest.approx(2.0)
    assert not floored.alarm[7]
    raw = ears_series(y, "C1", min_sigma=0.0)
    assert raw.statistic[7] == np.inf and raw.alarm[7]
    assert ears_series(np.zeros(9), "C1", min_sigma=0.0).statistic[8] == 0.0


def test_seasonal_levels_follow_noufaily() -> None:
    config = FarringtonConfig()
    offsets = np.arange(config.first_week, config.excluded_weeks, -1)
    levels = seasonal_levels(offsets, config)
    window = offsets[levels == 0]
    # the 7-week windows around 52, 104 and 156 weeks ago
    assert sorted(window.tolist()) == sorted(
        d for year in (1, 2, 3) for d in range(52 * year - 3, 52 * year + 4)
    )
    assert set(levels.tolist()) == set(range(10))
    # the 45 weeks between two windows split into 9 blocks of 5
    between = levels[(offsets > 52 + 3) & (offsets < 104 - 3)]
    assert np.bincount(between)[1:].tolist() == [5] * 9


def seasonal_counts(seed: int, years: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(52 * years)
    mu = 15 * np.exp(0.9 * np.cos(2 * np.pi * (t - 38) / 52))
    return rng.negative_binomial(10, 10 / (10 + mu)), mu


@pytest.mark.parametrize("method", ["power", "nb"])
def test_farrington_flags_a_known_outbreak_and_little_else(method: str) -> None:
    y, mu = seasonal_counts(seed=11)
    start = 52 * 4 + 20  # early in the low season of year five
    extra = np.round(np.array([1.5, 3.0, 3.0, 1.5]) * 4 * np.sqrt(mu[start]))
    y[start : start + 4] += extra.astype(int)
    config = FarringtonConfig(threshold_method=method)  # type: ignore[arg-type]
    result = farrington_series(y, config)
    assert np.isnan(result.expected[: config.first_week]).all()
    assert result.alarm[start : start + 3].any()
    outside = np.ones(len(y), dtype=bool)
    outside[start : start + 4] = False
    assert result.alarm[outside].sum() <= 3  # about 1.75 years evaluated at alpha = 1 %
    # the seasonal baseline follows the season: higher expected values at the peak
    evaluated = np.arange(config.first_week, len(y))
    peak = evaluated[np.argmax(mu[evaluated])]
    trough = evaluated[np.argmin(mu[evaluated])]
    assert result.expected[peak] > 2 * result.expected[trough]


def test_farrington_downweights_past_outbreaks() -> None:
    y, _ = seasonal_counts(seed=5)
    y[52 * 2 + 10 : 52 * 2 + 14] += 150  # a past outbreak in the same season, two years back
    current = 52 * 4 + 10
    with_weights = farrington_series(y, FarringtonConfig())
    without = farrington_series(y, FarringtonConfig(reweight=False))
    assert with_weights.expected[current] < without.expected[current]
    assert with_weights.threshold[current] < without.threshold[current]


def test_farrington_on_a_baseline_without_cases() -> None:
    y = np.zeros(52 * 4, dtype=int)
    y[-3:] = [2, 3, 4]
    result = farrington_series(y)
    assert result.expected[-1] == 0.0 and result.threshold[-1] == 0.0
    assert result.alarm[-1]  # 9 cases in the last 4 weeks: the 5-in-4 rule is met
    assert not result.alarm[-3]  # 2 cases only


def test_detect_on_the_tidy_table_fills_missing_weeks() -> None:
    weeks = pd.date_range("2024-01-01", periods=20, freq="7D")
    table = pd.DataFrame(
        {
            "area": ["79"] * 20 + ["01"] * 2,
            "disease": ["A90"] * 20 + ["B05"] * 2,
            "week": [*weeks, weeks[0], weeks[19]],
            "count": [4] * 19 + [30] + [1, 2],
        }
    )
    result = detect(table, "C1")
    assert list(result.columns) == list(RESULT_COLUMNS)
    assert len(result) == 40  # two series, each over the 20 weeks
    measles = result[result["disease"] == "B05"]
    assert measles["count"].tolist() == [1] + [0] * 18 + [2]
    dengue = result[result["disease"] == "A90"].set_index("week")
    assert bool(dengue.loc[weeks[19], "alarm"])
    assert dengue["alarm"].sum() == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"week": "2024-01-02"}, "Monday"),
        ({"count": -1}, "whole numbers"),
        ({"count": 1.5}, "whole numbers"),
        ({"week": "not a date"}, "not a date"),
    ],
)
def test_detect_rejects_malformed_tables(change: dict[str, object], message: str) -> None:
    row = {"area": "79", "disease": "A90", "week": "2024-01-01", "count": 3, **change}
    with pytest.raises(InvalidRequest, match=message):
        detect(pd.DataFrame([row]), "C1")


def test_detect_rejects_missing_columns_duplicates_and_unknown_methods() -> None:
    with pytest.raises(InvalidRequest, match="lacks column"):
        detect(pd.DataFrame({"area": ["79"], "week": ["2024-01-01"]}), "C1")
    row = {"area": "79", "disease": "A90", "week": "2024-01-01", "count": 3}
    with pytest.raises(InvalidRequest, match="twice"):
        detect(pd.DataFrame([row, row]), "C1")
    with pytest.raises(InvalidRequest, match="unknown detector"):
        detect(pd.DataFrame([row]), "C9")  # type: ignore[arg-type]


def test_score_detection_counts_early_detections_and_false_alarms() -> None:
    alarm = np.zeros(30, dtype=bool)
    alarm[[3, 12, 14, 25]] = True
    # outbreaks at 10-15 (alarmed on its 3rd week) and 20-22 (missed); one before `first`
    scored, detected, false_alarms, delays = score_detection(
        alarm, [(2, 3), (10, 6), (20, 3)], first=5, detect_within=3
    )
    assert (scored, detected, false_alarms, delays) == (2, 1, 1, [2])


def test_simulation_is_reproducible_with_its_seed() -> None:
    config = SyntheticConfig(seed=42, years=5, areas=3)
    first, again = simulate(config), simulate(config)
    pd.testing.assert_frame_equal(first.counts, again.counts)
    pd.testing.assert_frame_equal(first.outbreaks, again.outbreaks)
    other = simulate(SyntheticConfig(seed=43, years=5, areas=3))
    assert not first.counts["count"].equals(other.counts["count"])
    # dengue peaks in the rainy season: July-November holds most baseline cases
    months = first.baseline["week"].dt.month
    rainy = first.baseline.loc[months.between(7, 11), "mean"].sum()
    assert rainy / first.baseline["mean"].sum() > 0.6


def test_backtest_is_reproducible_with_its_seed() -> None:
    config = SyntheticConfig(seed=9, years=4, areas=2)
    first = run_backtest(config, BacktestConfig(forecast_step=13)).to_json()
    assert first == run_backtest(config, BacktestConfig(forecast_step=13)).to_json()
    assert first["detectors"]["C1"]["outbreaks"] > 0
    assert first["forecast"]["forecasts"] > 0


def test_backtest_detects_outbreaks_with_few_false_alarms() -> None:
    chosen = {k: v for k, v in default_detectors().items() if k in ("C3", "farrington")}
    config = SyntheticConfig(seed=2026, years=6, areas=8)
    result = run_backtest(config, detectors=chosen, with_forecast=False)
    farrington = result.detectors["farrington"]
    assert farrington.outbreaks >= 10
    assert farrington.detection_rate >= 0.5
    assert farrington.false_alarms_per_year < 1.0
    assert farrington.median_delay_weeks is not None and farrington.median_delay_weeks <= 2
    # EARS has no seasonal memory: it alarms on every rising season (why Farrington exists)
    assert result.detectors["C3"].false_alarms_per_year > farrington.false_alarms_per_year


def test_backtest_command_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "backtest.json"
    args = ["warehouse", "backtest", "--seed", "5", "--years", "4", "--areas", "1"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "farrington" in result.output and "cover 95" in result.output
    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["synthetic"]["seed"] == 5
    assert set(summary["detectors"]) == {
        "C1",
        "C2",
        "C3",
        "farrington",
        "farrington-nb",
        "farrington-1996",
    }
    too_short = CliRunner().invoke(app, ["warehouse", "backtest", "--years", "3"])
    assert too_short.exit_code != 0 and "too short" in too_short.output


def test_original_farrington_uses_the_reference_windows_only() -> None:
    y, mu = seasonal_counts(seed=11)
    start = 52 * 4 + 20
    extra = np.round(np.array([1.5, 3.0, 3.0, 1.5]) * 4 * np.sqrt(mu[start]))
    y[start : start + 4] += extra.astype(int)
    config = FarringtonConfig.original()
    result = farrington_series(y, config)
    assert result.alarm[start : start + 3].any()
    # with only 3 x 7 comparable weeks the expected value tracks the season as well
    assert result.expected[start] == pytest.approx(mu[start], rel=0.5)


def test_detect_passes_farrington_options() -> None:
    y, _ = seasonal_counts(seed=11)
    weeks = pd.date_range("2020-01-06", periods=len(y), freq="7D")
    table = pd.DataFrame({"area": "79", "disease": "A90", "week": weeks, "count": y})
    loose = detect(table, "farrington", alpha=0.2)
    strict = detect(table, "farrington", alpha=0.001)
    assert (loose["method"] == "farrington").all()
    assert loose["alarm"].sum() > strict["alarm"].sum()
    evaluated = loose["expected"].notna()
    assert (loose.loc[evaluated, "threshold"] < strict.loc[evaluated, "threshold"]).all()
    with pytest.raises(InvalidRequest, match="alpha"):
        detect(table, "farrington", alpha=0.7)
