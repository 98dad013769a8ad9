"""A Poisson log-linear GLM fitted by IRLS in plain NumPy, for Farrington's many small fits.

Farrington's detector fits one small GLM (a few dozen weeks, a handful of columns) per area,
disease and week, twice when re-weighting: a backtest over eight areas and six years is
thousands of fits. statsmodels' ``GLM(...).fit()`` spends about 10 ms on each in model set-up,
checks and result objects around a few milliseconds of arithmetic; this is the same iteration
(statsmodels' IRLS: its starting values, working response and weights, its deviance criterion
scaled by Pearson's statistic, its ``lstsq`` steps and final pseudo-inverse) without the rest,
and gives the same coefficients, fitted means, dispersion and convergence
(``tests/warehouse/test_glm.py`` holds it to statsmodels).

See: https://www.statsmodels.org/stable/glm.html (the reference for every step here)
See: https://doi.org/10.2307/2983331 (Farrington et al. 1996: the quasi-Poisson model)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special  # type: ignore[import-untyped]

EPS = float(np.finfo(float).eps)
"""statsmodels' ``FLOAT_EPS``: means are clipped to it where a log or a division needs it."""


@dataclass(frozen=True)
class PoissonFit:
    """What Farrington needs of a fit: coefficients, their unscaled covariance (the final
    weighted design's pseudo-inverse squared), fitted means, Pearson's dispersion (``X2``, not
    floored), convergence, and the two-sided normal p-value of each coefficient."""

    params: np.ndarray
    normalized_cov: np.ndarray
    mu: np.ndarray
    scale: float
    converged: bool
    pvalues: np.ndarray


def _deviance(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, scale: float) -> float:
    unit = 2.0 * (y * np.log(np.clip(y / mu, EPS, np.inf)) - (y - mu))
    return float((unit * weights).sum() / scale)


def _pearson_scale(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, df_resid: float) -> float:
    return float(((y - mu) ** 2 * weights / np.abs(mu)).sum() / df_resid)


def fit_poisson(
    y: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray | None = None,
    start: np.ndarray | None = None,
    maxiter: int = 50,
    tol: float = 1e-8,
) -> PoissonFit:
    """Fit ``log E[y] = x β`` with prior (variance) ``weights``, the scale from Pearson's
    statistic, as ``sm.GLM(y, x, family=Poisson(), var_weights=weights).fit(scale="X2",
    maxiter=maxiter, start_params=start)`` does.

    Raises ``ValueError`` where statsmodels does (a first deviance that is not a number, a
    working response or weight that is not finite) and ``LinAlgError`` if NumPy's solver does.
    """
    y = np.asarray(y, dtype=float)
    w0 = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    df_resid = float(len(y) - np.linalg.matrix_rank(x))
    if start is None:
        mu = (y + y.mean()) / 2.0
        eta = np.log(np.clip(mu, EPS, np.inf))
    else:
        eta = x @ start
        mu = np.exp(eta)
    dev = _deviance(y, mu, w0, _pearson_scale(y, mu, w0, df_resid))
    if np.isnan(dev):
        raise ValueError("the first guess of the deviance is not a number")
    converged = False
    for _ in range(maxiter):
        clean = np.clip(mu, EPS, np.inf)
        irls_weights = w0 * clean**2 / np.abs(mu)
        working = eta + (y - mu) / clean
        half = np.sqrt(irls_weights)
        if not (np.all(np.isfinite(half)) and np.all(np.isfinite(working))):
            raise ValueError("a working weight or response is not finite")
        wx, wz = half[:, None] * x, half * working
        beta = np.linalg.lstsq(wx, wz, rcond=-1)[0]
        eta = x @ beta
        mu = np.exp(eta)
        new = _deviance(y, mu, w0, _pearson_scale(y, mu, w0, df_resid))
        # numpy.allclose(dev, new, atol=tol, rtol=0) on two numbers (equal infinities close)
        converged = dev == new or abs(dev - new) <= tol
        dev = new
        if converged:
            break
    # statsmodels reports the last weighted step solved again by a pseudo-inverse, the means
    # those coefficients give, and the scale of the last step's means
    pinv = np.linalg.pinv(wx, rcond=1e-15)
    params = pinv @ wz
    normalized_cov = pinv @ pinv.T
    scale = _pearson_scale(y, mu, w0, df_resid)
    mu = np.exp(x @ params)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = params / np.sqrt(np.diag(normalized_cov) * scale)
    pvalues = 2.0 * special.ndtr(-np.abs(z))  # scipy.stats.norm.sf(|z|), without its checks
    return PoissonFit(params, normalized_cov, mu, scale, converged, np.asarray(pvalues))
