"""Back-testing of the outbreak detectors and the forecaster on synthetic counts.

Real notifiable-disease series have no ground truth of when an outbreak started, so the methods
are judged the way the surveillance literature does (Noufaily et al. 2013, Bédubourg & Le Strat
2017): simulate weekly counts with a known baseline — yearly seasonality (dengue peaks in the
southern rainy season, roughly July to November), a trend and negative-binomial
over-dispersion — inject outbreaks of known start, length and size, and measure:

* detection rate: the share of injected outbreaks alarmed within their first ``detect_within``
  weeks (default 3);
* false alarms per year: alarm weeks outside every outbreak window, per area-year evaluated;
* median time to detection: weeks from the outbreak's first week to its first alarm (0 = the
  first week), over the outbreaks alarmed at any time during the outbreak;
* for the forecaster, a rolling-origin evaluation: refit at every ``forecast_step``-th week,
  forecast ``horizon`` weeks, and compare with what happened: MAPE over weeks with a count
  above zero (a zero count makes the percentage error undefined; those weeks are left out of the
  MAPE and counted in ``zero_weeks``, and MAE covers all weeks) and the share of weeks inside the
  80 % and 95 % intervals.

Everything is drawn from one ``numpy`` generator seeded with ``seed``: the same seed gives the
same series, outbreaks and numbers.

See: https://doi.org/10.1002/sim.5595 (Noufaily et al. 2013, simulation design)
See: https://doi.org/10.1186/s12889-017-4378-2 (Bédubourg & Le Strat 2017, detector evaluation)
See: https://otexts.com/fpp3/tscv.html (rolling-origin evaluation)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from tqdm import tqdm

from sokhoe.errors import InvalidRequest
from sokhoe.warehouse.forecasting import ForecastConfig, forecast_series
from sokhoe.warehouse.surveillance import (
    Detection,
    FarringtonConfig,
    ears_series,
    farrington_series,
)

FIRST_MONDAY = pd.Timestamp("2019-12-30")  # ISO week 2020-W01
DISEASE = "A90"  # dengue fever (sốt xuất huyết Dengue), ICD-10


@dataclass(frozen=True)
class SyntheticConfig:
    """What to simulate: ``areas`` series of ``years`` years of weekly dengue counts.

    Each area draws a weekly level (``level_range``, roughly its mean cases a week), a seasonal
    amplitude (log scale), a peak day between ``peak_days`` (day of year; 245-305 is September
    to October, the middle of the July-November rainy season), a yearly trend and the common
    negative-binomial ``dispersion`` (size k: variance μ + μ²/k). Outbreaks arrive at
    ``outbreaks_per_year`` per area (at least eight quiet weeks apart), last ``outbreak_weeks``
    (inclusive range) and add Poisson cases whose mean follows a half-sine over the outbreak and
    reaches, at its peak, ``outbreak_size`` (range) standard deviations of the baseline count in
    the outbreak's first week. (Noufaily et al. spread a Poisson total over a log-normal profile;
    the half-sine gives a similar rise and fall with a known start.)
    """

    seed: int = 2026
    years: int = 6
    areas: int = 8
    level_range: tuple[float, float] = (8.0, 60.0)
    amplitude_range: tuple[float, float] = (0.6, 1.2)
    peak_days: tuple[float, float] = (245.0, 305.0)
    trend_range: tuple[float, float] = (-0.05, 0.08)
    dispersion: float = 10.0
    outbreaks_per_year: float = 1.0
    outbreak_weeks: tuple[int, int] = (3, 8)
    outbreak_size: tuple[float, float] = (2.0, 6.0)

    def __post_init__(self) -> None:
        if self.years < 1 or self.areas < 1:
            raise InvalidRequest("simulate at least one year and one area")
        if self.outbreak_weeks[0] < 1 or self.outbreak_weeks[1] < self.outbreak_weeks[0]:
            raise InvalidRequest("outbreak_weeks must be a range of at least one week")


@dataclass(frozen=True)
class Synthetic:
    """Simulated counts (the tidy table), their baseline means and the injected outbreaks."""

    counts: pd.DataFrame  # area, disease, week, count
    baseline: pd.DataFrame  # area, week, mean (the expected count without outbreaks)
    outbreaks: pd.DataFrame  # area, disease, start, weeks, cases (added), start_index


def simulate(config: SyntheticConfig | None = None) -> Synthetic:
    """Draw the synthetic series and outbreaks (deterministic for ``config.seed``)."""
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    n = round(config.years * 52.1775)
    weeks = pd.date_range(FIRST_MONDAY, periods=n, freq="7D")
    years = np.asarray((weeks - FIRST_MONDAY).days, dtype=float) / 365.25
    day = np.asarray(weeks.day_of_year, dtype=float) + 3.0  # the week's Thursday
    k = config.dispersion
    counts, baselines, outbreaks = [], [], []
    for a in range(config.areas):
        area = f"area-{a + 1:02d}"
        level = np.exp(rng.uniform(*np.log(config.level_range)))
        amplitude = rng.uniform(*config.amplitude_range)
        peak = rng.uniform(*config.peak_days)
        trend = rng.uniform(*config.trend_range)
        season = amplitude * np.cos(2 * np.pi * (day - peak) / 365.25)
        mu = level * np.exp(season - amplitude / 2 + trend * years)
        y = rng.negative_binomial(k, k / (k + mu))
        sd = np.sqrt(mu + mu**2 / k)
        for start, length in _outbreak_windows(rng, n, config):
            size = rng.uniform(*config.outbreak_size)
            shape = np.sin(np.pi * np.arange(1, length + 1) / (length + 1))
            extra = rng.poisson(size * sd[start] * shape)
            y[start : start + length] += extra
            outbreaks.append(
                {
                    "area": area,
                    "disease": DISEASE,
                    "start": weeks[start],
                    "weeks": length,
                    "cases": int(extra.sum()),
                    "start_index": start,
                }
            )
        counts.append(pd.DataFrame({"area": area, "disease": DISEASE, "week": weeks, "count": y}))
        baselines.append(pd.DataFrame({"area": area, "week": weeks, "mean": mu}))
    return Synthetic(
        counts=pd.concat(counts, ignore_index=True),
        baseline=pd.concat(baselines, ignore_index=True),
        outbreaks=pd.DataFrame(
            outbreaks, columns=["area", "disease", "start", "weeks", "cases", "start_index"]
        ),
    )


def _outbreak_windows(
    rng: np.random.Generator, n: int, config: SyntheticConfig
) -> list[tuple[int, int]]:
    """Non-overlapping (start, length) pairs, at least eight quiet weeks apart."""
    wanted = rng.poisson(config.outbreaks_per_year * config.years)
    windows: list[tuple[int, int]] = []
    for _ in range(wanted * 20):
        if len(windows) == wanted:
            break
        length = int(rng.integers(config.outbreak_weeks[0], config.outbreak_weeks[1] + 1))
        start = int(rng.integers(0, n - length + 1))
        if all(start + length + 8 <= s or s + w + 8 <= start for s, w in windows):
            windows.append((start, length))
    return sorted(windows)


# --------------------------------------------------------------------------------------------
# Back-test
# --------------------------------------------------------------------------------------------


Detector = Callable[[np.ndarray], Detection]


def default_detectors(farrington: FarringtonConfig | None = None) -> dict[str, Detector]:
    """The detectors compared: EARS C1-C3, improved Farrington with both thresholds (the
    2/3-power one is the default) and the original Farrington (1996) for reference."""
    power = replace(farrington or FarringtonConfig(), threshold_method="power")
    nb = replace(power, threshold_method="nb")
    original = replace(
        FarringtonConfig.original(),
        years=power.years,
        half_window=power.half_window,
        alpha=power.alpha,
    )
    return {
        "C1": lambda y: ears_series(y, "C1"),
        "C2": lambda y: ears_series(y, "C2"),
        "C3": lambda y: ears_series(y, "C3"),
        "farrington": lambda y: farrington_series(y, power),
        "farrington-nb": lambda y: farrington_series(y, nb),
        "farrington-1996": lambda y: farrington_series(y, original),
    }


@dataclass(frozen=True)
class BacktestConfig:
    """How to score: which weeks, how fast a detection must be, how to roll the forecasts."""

    detect_within: int = 3
    horizon: int = 4
    forecast_step: int = 4
    farrington: FarringtonConfig = field(default_factory=FarringtonConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)


@dataclass
class DetectorScore:
    """Back-test numbers of one detector."""

    outbreaks: int
    detected: int
    detection_rate: float
    detected_any_time: int
    false_alarms: int
    area_years: float
    false_alarms_per_year: float
    median_delay_weeks: float | None


@dataclass
class ForecastScore:
    """Rolling-origin numbers of the forecaster (overall and per horizon week)."""

    forecasts: int
    zero_weeks: int
    mape: float
    mae: float
    coverage_80: float
    coverage_95: float
    by_horizon: list[dict[str, float]]


@dataclass
class BacktestResult:
    """Everything the command prints and writes as JSON."""

    synthetic: dict[str, Any]
    evaluated_weeks: int
    detect_within: int
    detectors: dict[str, DetectorScore]
    forecast: ForecastScore | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN, which JSON lacks, becomes null)."""
        return _finite(asdict(self))  # type: ignore[no-any-return]


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def format_result(result: BacktestResult) -> str:
    """The plain-text tables the command prints."""
    synthetic = result.synthetic
    lines = [
        f"synthetic: seed {synthetic['seed']}, {synthetic['areas']} areas x {synthetic['years']}"
        f" years, {synthetic['outbreaks']} outbreaks injected;"
        f" {result.evaluated_weeks} weeks evaluated per area",
        "",
        f"{'detector':<16}{'outbreaks':>10}{'detected':>10}{'rate':>8}{'ever':>6}"
        f"{'false/yr':>10}{'median delay':>14}",
    ]
    for name, s in result.detectors.items():
        delay = "-" if s.median_delay_weeks is None else f"{s.median_delay_weeks:.1f} wk"
        rate = f"{s.detection_rate:.2f}" if s.outbreaks else "-"
        lines.append(
            f"{name:<16}{s.outbreaks:>10}{s.detected:>10}{rate:>8}{s.detected_any_time:>6}"
            f"{s.false_alarms_per_year:>10.2f}{delay:>14}"
        )
    lines.append(
        f"(detected: alarmed within the first {result.detect_within} weeks of the outbreak;"
        " ever: at any time during it;\n delay: weeks from the start to the first alarm, over"
        " those ever alarmed; false/yr: alarm weeks outside outbreaks per area-year)"
    )
    if result.forecast is not None:
        f = result.forecast
        lines += [
            "",
            f"{'forecast':<16}{'weeks':>8}{'MAPE %':>9}{'MAE':>8}{'cover 80':>10}{'cover 95':>10}",
        ]
        rows = [("all", f.forecasts, f.mape, f.mae, f.coverage_80, f.coverage_95)]
        rows += [
            (
                f"h={int(h['horizon'])}",
                int(h["forecasts"]),
                h["mape"],
                h["mae"],
                h["coverage_80"],
                h["coverage_95"],
            )
            for h in f.by_horizon
        ]
        for label, weeks, mape, mae, c80, c95 in rows:
            lines.append(f"{label:<16}{weeks:>8}{mape:>9.1f}{mae:>8.2f}{c80:>10.3f}{c95:>10.3f}")
        lines.append(f"(MAPE over weeks with count > 0; {f.zero_weeks} zero weeks left out)")
    return "\n".join(lines)


def score_detection(
    alarm: np.ndarray, windows: list[tuple[int, int]], first: int, detect_within: int
) -> tuple[int, int, int, list[int]]:
    """(outbreaks scored, detected early, false alarms, delays) for one series.

    Outbreaks starting before ``first`` (the first evaluated week) are not scored, but their
    weeks are still not counted as false alarms.
    """
    inside = np.zeros(len(alarm), dtype=bool)
    scored = detected = 0
    delays: list[int] = []
    for start, length in windows:
        inside[start : start + length] = True
        if start < first:
            continue
        scored += 1
        hits = np.flatnonzero(alarm[start : start + length])
        if hits.size:
            delays.append(int(hits[0]))
            detected += int(hits[0] < detect_within)
    false_alarms = int(np.sum(alarm[first:] & ~inside[first:]))
    return scored, detected, false_alarms, delays


def run_backtest(
    synthetic_config: SyntheticConfig | None = None,
    config: BacktestConfig | None = None,
    *,
    detectors: dict[str, Detector] | None = None,
    with_forecast: bool = True,
    progress: bool = False,
) -> BacktestResult:
    """Simulate, run every detector and the rolling forecasts, and score them.

    Weeks are evaluated from the first one the Farrington detector can judge (``years`` of
    history), the same weeks for every detector. ``progress`` shows a tqdm bar over the areas.
    """
    synthetic_config = synthetic_config or SyntheticConfig()
    config = config or BacktestConfig()
    detectors = default_detectors(config.farrington) if detectors is None else detectors
    data = simulate(synthetic_config)
    first = config.farrington.first_week
    totals = {name: [0, 0, 0, []] for name in detectors}  # type: dict[str, list[Any]]
    errors: list[tuple[int, float, float, float, float, float, float]] = []
    areas = list(data.counts.groupby("area", sort=True))
    n = 0
    for area, frame in tqdm(areas, desc="back-test", unit="area", disable=not progress):
        y = frame["count"].to_numpy()
        n = len(y)
        if n <= first:
            raise InvalidRequest(
                f"{n} weeks are too short: the Farrington baseline needs {first} weeks before"
                " the first evaluated one (simulate more years)"
            )
        rows = data.outbreaks[data.outbreaks["area"] == area]
        windows = list(zip(rows["start_index"], rows["weeks"], strict=True))
        for name, detector in detectors.items():
            scored, detected, false_alarms, delays = score_detection(
                detector(y).alarm, windows, first, config.detect_within
            )
            totals[name][0] += scored
            totals[name][1] += detected
            totals[name][2] += false_alarms
            totals[name][3].extend(delays)
        if with_forecast:
            errors += _rolling_forecasts(y, pd.DatetimeIndex(frame["week"]), first, config)
    area_years = synthetic_config.areas * (n - first) / 52.1775
    scores = {
        name: DetectorScore(
            outbreaks=scored,
            detected=detected,
            detection_rate=detected / scored if scored else float("nan"),
            detected_any_time=len(delays),
            false_alarms=false_alarms,
            area_years=round(area_years, 2),
            false_alarms_per_year=false_alarms / area_years,
            median_delay_weeks=float(np.median(delays)) if delays else None,
        )
        for name, (scored, detected, false_alarms, delays) in totals.items()
    }
    return BacktestResult(
        synthetic={**asdict(synthetic_config), "outbreaks": len(data.outbreaks)},
        evaluated_weeks=n - first,
        detect_within=config.detect_within,
        detectors=scores,
        forecast=_forecast_score(errors, config.horizon) if with_forecast else None,
    )


def _rolling_forecasts(
    y: np.ndarray, weeks: pd.DatetimeIndex, first: int, config: BacktestConfig
) -> list[tuple[int, float, float, float, float, float, float]]:
    """(horizon, truth, median, lower 80, upper 80, lower 95, upper 95) per forecast week."""
    forecast_config = replace(config.forecast, horizon=config.horizon)
    out = []
    for origin in range(first, len(y) - config.horizon + 1, config.forecast_step):
        result = forecast_series(y[:origin], weeks[:origin], forecast_config, seed=origin)
        for h in range(config.horizon):
            out.append(
                (
                    h + 1,
                    float(y[origin + h]),
                    float(result.median[h]),
                    float(result.lower_80[h]),
                    float(result.upper_80[h]),
                    float(result.lower_95[h]),
                    float(result.upper_95[h]),
                )
            )
    return out


def _forecast_score(
    errors: list[tuple[int, float, float, float, float, float, float]], horizon: int
) -> ForecastScore:
    table = pd.DataFrame(
        errors, columns=["horizon", "truth", "median", "lo80", "hi80", "lo95", "hi95"]
    )

    def summary(part: pd.DataFrame) -> dict[str, float]:
        positive = part[part["truth"] > 0]
        ape = (positive["truth"] - positive["median"]).abs() / positive["truth"]
        return {
            "forecasts": float(len(part)),
            "zero_weeks": float((part["truth"] == 0).sum()),
            "mape": float(ape.mean() * 100.0) if len(ape) else float("nan"),
            "mae": float((part["truth"] - part["median"]).abs().mean()),
            "coverage_80": float(
                ((part["truth"] >= part["lo80"]) & (part["truth"] <= part["hi80"])).mean()
            ),
            "coverage_95": float(
                ((part["truth"] >= part["lo95"]) & (part["truth"] <= part["hi95"])).mean()
            ),
        }

    overall = summary(table)
    by_horizon = [
        {"horizon": float(h), **summary(table[table["horizon"] == h])}
        for h in range(1, horizon + 1)
    ]
    return ForecastScore(
        forecasts=int(overall["forecasts"]),
        zero_weeks=int(overall["zero_weeks"]),
        mape=overall["mape"],
        mae=overall["mae"],
        coverage_80=overall["coverage_80"],
        coverage_95=overall["coverage_95"],
        by_horizon=by_horizon,
    )
