"""Stage 1 of the scan against statsmodels: Engle–Granger t and p for every directed pair from
cross-products, MacKinnon p-values, Benjamini–Hochberg q-values."""

import warnings

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.adfvalues import mackinnonp
from statsmodels.tsa.stattools import coint

from qdash.errors import AnalyticsError
from qdash.scan.screen import bh_qvalues, cross_products, engle_granger_all, mackinnon_p, pair_stats


def _series(seed: int, n: int = 1500, k: int = 14) -> np.ndarray:
    """Log-price-like walks at different levels, two cointegrated couples and one near-collinear
    one (R² just below statsmodels' cut-off is not needed: exactly collinear is tested apart)."""
    rng = np.random.default_rng(seed)
    w = np.cumsum(rng.normal(0, 0.01, (n, k)), axis=0) + rng.uniform(-3, 8, k)
    w[:, 1] = 0.8 * w[:, 0] + 1.0 + rng.normal(0, 0.002, n)
    w[:, 3] = -0.5 * w[:, 2] + 0.3 + np.cumsum(rng.normal(0, 1e-4, n)) + rng.normal(0, 0.001, n)
    return w


@pytest.mark.parametrize("lags", [0, 1, 2])
def test_every_pair_equals_statsmodels_coint(lags):
    w = _series(lags)
    got = engle_granger_all(w, lags)
    rng = np.random.default_rng(10 + lags)
    k = w.shape[1]
    pairs = [(0, 1), (1, 0), (2, 3), (3, 2)] + [tuple(rng.choice(k, 2, replace=False))
                                                for _ in range(20)]
    for y, x in pairs:
        t, p, _ = coint(w[:, y], w[:, x], trend="c", maxlag=lags, autolag=None)
        assert got["coint_t"][y, x] == pytest.approx(t, abs=1e-6)
        assert got["coint_p"][y, x] == pytest.approx(p, abs=1e-6)
        b, a = np.polyfit(w[:, x], w[:, y], 1)
        assert got["beta"][y, x] == pytest.approx(b, rel=1e-9)
        assert got["alpha"][y, x] == pytest.approx(a, rel=1e-9, abs=1e-9)
    assert np.isnan(np.diag(got["coint_t"])).all()


def test_row_blocks_equal_the_whole():
    w = _series(5)
    cp = cross_products(w, 1)
    whole = pair_stats(cp, np.arange(w.shape[1]))
    part = pair_stats(cp, np.array([3, 7]))
    for name, v in part.items():
        np.testing.assert_array_equal(v, whole[name][[3, 7]])


def test_collinear_legs_give_minus_inf_like_statsmodels():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=500))
    w = np.column_stack([x, 2 * x + 1, np.cumsum(rng.normal(size=500))])
    got = engle_granger_all(w, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, p, _ = coint(w[:, 1], w[:, 0], maxlag=1, autolag=None)
    assert t == got["coint_t"][1, 0] == -np.inf
    assert p == got["coint_p"][1, 0] == 0.0
    assert np.isfinite(got["coint_t"][2, 0])


def test_too_many_lags_for_the_bars():
    with pytest.raises(AnalyticsError, match="lags=5"):
        engle_granger_all(np.cumsum(np.ones((10, 2)), axis=0), 5)


def test_mackinnon_p_matches_statsmodels_on_every_branch():
    stats = np.array([-40.0, -18.0, -6.0, -4.1, -3.5, -2.0, -1.0, 0.5, 2.0, 5.0, -np.inf, np.nan])
    got = mackinnon_p(stats)
    for s, g in zip(stats, got):
        if np.isnan(s):
            assert np.isnan(g)
        else:
            assert g == pytest.approx(mackinnonp(s, regression="c", N=2), abs=1e-15)
    assert mackinnon_p(np.array([-2.5]), "c", 1)[0] == pytest.approx(mackinnonp(-2.5, "c", 1))


def test_bh_qvalues_match_statsmodels_and_skip_nan():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 1e-3, 30)])
    q = bh_qvalues(p)
    ref = multipletests(p, method="fdr_bh")[1]
    np.testing.assert_allclose(q, ref, rtol=1e-12)
    with_nan = np.append(p, np.nan)
    q2 = bh_qvalues(with_nan)
    assert np.isnan(q2[-1])
    np.testing.assert_allclose(q2[:-1], ref, rtol=1e-12)
