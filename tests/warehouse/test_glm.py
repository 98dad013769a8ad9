"""The NumPy IRLS Farrington fits with gives what statsmodels' GLM gives for the same model:
coefficients, fitted means, Pearson's dispersion, convergence and the trend's p-value, on
Farrington's own designs (seasonal levels, a trend, sparse counts, prior weights, a start)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm  # type: ignore[import-untyped]

from sokhoe.warehouse.glm import fit_poisson
from sokhoe.warehouse.surveillance import FarringtonConfig, _design


def _case(seed: int, sparse: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    offsets = np.arange(1, 52 * 5)
    x = _design(offsets, FarringtonConfig(), trend=True)
    mu = 0.3 if sparse else 15 * np.exp(0.9 * np.cos(2 * np.pi * offsets / 52))
    y = rng.poisson(mu, len(offsets)).astype(float)
    return y, x


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_fit_is_statsmodels_glm(sparse: bool, weighted: bool) -> None:
    y, x = _case(7, sparse)
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.2, 1.5, len(y)) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # re-weighting starts from the unweighted fit, as Farrington's second fit does
        start = fit_poisson(y, x).params if weighted else None
        model = sm.GLM(y, x, family=sm.families.Poisson(), var_weights=weights)
        expected = model.fit(scale="X2", maxiter=50, start_params=start)
        got = fit_poisson(y, x, weights, start=start, maxiter=50)
    assert got.converged == expected.converged
    np.testing.assert_allclose(got.params, expected.params, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.mu, expected.fittedvalues, rtol=1e-9, atol=1e-12)
    assert got.scale == pytest.approx(expected.scale, rel=1e-9)
    np.testing.assert_allclose(got.pvalues, expected.pvalues, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(got.normalized_cov, expected.normalized_cov_params, rtol=1e-7)


def test_a_capped_iteration_is_reported_not_converged() -> None:
    y, x = _case(7, sparse=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = sm.GLM(y, x, family=sm.families.Poisson()).fit(scale="X2", maxiter=2)
    got = fit_poisson(y, x, maxiter=2)
    assert not got.converged and not expected.converged
    np.testing.assert_allclose(got.params, expected.params, rtol=1e-9)


def test_a_first_deviance_that_is_not_a_number_is_refused() -> None:
    y, x = _case(7, sparse=False)
    y[3] = np.nan
    with pytest.raises(ValueError, match="not a number"):
        fit_poisson(y, x)
