"""Forecasts of weekly counts: intervals, coverage on synthetic series, rolling-origin scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.backtest import (
    BacktestConfig,
    SyntheticConfig,
    format_result,
    run_backtest,
)
from sokhoe.warehouse.forecasting import (
    FORECAST_COLUMNS,
    ForecastConfig,
    forecast,
    forecast_series,
)

WEEKS = pd.date_range("2019-12-30", periods=52 * 5, freq="7D")


def autocorrelated_counts(seed: int) -> np.ndarray:
    """Negative-binomial counts around a latent AR(1) log level (epidemic waves), no season."""
    rng = np.random.default_rng(seed)
    level = np.zeros(len(WEEKS))
    for t in range(1, len(WEEKS)):
        level[t] = 0.85 * level[t - 1] + rng.normal(0, 0.25)
    mu = 20 * np.exp(level)
    return rng.negative_binomial(20, 20 / (20 + mu))


def test_intervals_are_ordered_and_widen_with_the_horizon() -> None:
    y = autocorrelated_counts(seed=4)
    y[-1] = int(np.median(y))  # start from a typical week: the spread then grows with h
    result = forecast_series(y, WEEKS, ForecastConfig(horizon=8), seed=1)
    assert list(result.weeks) == list(
        pd.date_range(WEEKS[-1] + pd.Timedelta(days=7), periods=8, freq="7D")
    )
    assert (result.lower_95 <= result.lower_80).all()
    assert (result.lower_80 <= result.median).all() and (result.median <= result.upper_80).all()
    assert (result.upper_80 <= result.upper_95).all()
    width_80 = result.upper_80 - result.lower_80
    width_95 = result.upper_95 - result.lower_95
    assert (width_95[1:] > width_95[0]).all() and (width_80[1:] > width_80[0]).all()
    assert width_95[3] > 1.2 * width_95[0]


def test_an_autoregressive_forecast_starts_from_the_current_level() -> None:
    y = autocorrelated_counts(seed=4)
    high, low = y.copy(), y.copy()
    high[-1], low[-1] = 3 * int(np.median(y)), int(np.median(y)) // 3
    up = forecast_series(high, WEEKS, seed=1)
    down = forecast_series(low, WEEKS, seed=1)
    assert up.median[0] > 1.5 * down.median[0]
    # and relaxes towards the usual level as the horizon grows
    assert up.median[-1] - down.median[-1] < up.median[0] - down.median[0]


def test_forecasts_are_deterministic_for_a_seed() -> None:
    y = autocorrelated_counts(seed=5)
    first = forecast_series(y, WEEKS, seed=3)
    assert np.array_equal(first.upper_95, forecast_series(y, WEEKS, seed=3).upper_95)
    assert np.array_equal(first.median, forecast_series(y, WEEKS, seed=3).median)


def test_short_or_mismatched_history_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="at least 104 weeks"):
        forecast_series(np.ones(50), WEEKS[:50])
    with pytest.raises(InvalidRequest, match="differ in length"):
        forecast_series(np.ones(120), WEEKS[:110])
    with pytest.raises(InvalidRequest, match="horizon"):
        ForecastConfig(horizon=0)


def test_forecast_over_the_tidy_table() -> None:
    y = autocorrelated_counts(seed=6)
    table = pd.DataFrame(
        {
            "area": ["79"] * len(WEEKS) * 2,
            "disease": ["A90"] * len(WEEKS) + ["B08.4"] * len(WEEKS),
            "week": list(WEEKS) * 2,
            "count": list(y) + [0] * len(WEEKS),
        }
    )
    result = forecast(table, ForecastConfig(horizon=3), seed=2)
    assert list(result.columns) == list(FORECAST_COLUMNS)
    assert len(result) == 6
    assert result["horizon"].tolist() == [1, 2, 3, 1, 2, 3]
    silent = result[result["disease"] == "B08.4"]
    assert (silent[["median", "upper_95"]] == 0).all().all()  # nothing seen, nothing expected
    dengue = result[result["disease"] == "A90"]
    assert (dengue["upper_95"] > dengue["lower_95"]).all()


def test_rolling_origin_coverage_is_near_nominal_on_synthetic_series() -> None:
    """Without injected outbreaks the model is well specified: coverage should be nominal."""
    synthetic = SyntheticConfig(seed=31, years=6, areas=4, outbreaks_per_year=0.0)
    result = run_backtest(synthetic, BacktestConfig(forecast_step=2), detectors={})
    score = result.forecast
    assert score is not None
    assert score.forecasts >= 4 * 70 * 4
    assert 0.74 <= score.coverage_80 <= 0.88
    assert 0.91 <= score.coverage_95 <= 0.985
    assert 0 < score.mape < 60
    assert [h["horizon"] for h in score.by_horizon] == [1.0, 2.0, 3.0, 4.0]
    text = format_result(result)
    assert "cover 95" in text and "MAPE over weeks with count > 0" in text
