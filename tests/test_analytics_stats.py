"""Spread statistics against statsmodels/pandas and published (Stata, Chan) values."""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import REFERENCE_SERIES
from statsmodels.tsa.stattools import adfuller
from statsmodels.tsa.stattools import coint as sm_coint

from qdash.analytics import adf, coint, correlation, half_life, hedge_ratio, hurst
from qdash.analytics.hedge import align
from qdash.analytics.stats import zscore
from qdash.errors import AnalyticsError

MACRO = pd.read_csv(REFERENCE_SERIES / "macrodata.csv")


def _sm_adf(x, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adfuller(x, **kw)


@pytest.mark.parametrize("col,reg,maxlag,stat,pvalue,crit", [
    # statsmodels' own Stata reference values (tsa/tests/test_stattools.py)
    ("realgdp", "c", 4, 0.97505319, 0.99399563, [-3.476, -2.883, -2.573]),
    ("realgdp", "ct", 4, -1.8566374, 0.67682968, [-4.007, -3.437, -3.137]),
    ("realgdp", "n", 4, 3.5227498, 0.99999, [-2.587, -1.950, -1.617]),
    ("infl", "c", 1, -4.3346988, 0.00038661, [-3.476, -2.883, -2.573]),
    ("infl", "ct", 1, -4.425093, 0.00199633, [-4.006, -3.437, -3.137]),
    ("infl", "n", 1, -2.4511596, 0.013747, [-2.587, -1.950, -1.617]),
])
def test_adf_stata_values_on_macrodata(col, reg, maxlag, stat, pvalue, crit):
    res = adf(MACRO[col], regression=reg, maxlag=maxlag, autolag=None)
    assert res.stat == pytest.approx(stat, abs=1e-5)
    assert res.pvalue == pytest.approx(pvalue, abs=1e-5)
    assert list(res.critical_values.values()) == pytest.approx(crit, abs=1.5e-2)  # 2 decimals


def _series():
    rng = np.random.default_rng(2)
    n = 800
    x = 3400 + np.cumsum(rng.normal(0, 0.5, n))
    s = np.zeros(n)
    for i in range(1, n):
        s[i] = 0.97 * s[i - 1] + rng.normal()
    return {"rw": x, "ar1": s * 5 + 10, "pair_spread": 18.7 * x + s * 5 - 18.7 * x,
            "log_realgdp": np.log(MACRO["realgdp"].to_numpy())}


CASES = [(name, reg, "AIC") for name in ("rw", "ar1", "pair_spread", "log_realgdp")
         for reg in ("c", "ct", "ctt", "n")]
CASES += [(name, reg, al) for name in ("ar1", "log_realgdp") for reg in ("c", "n")
          for al in ("BIC", "t-stat", None)]


@pytest.mark.parametrize("name,reg,autolag", CASES)
def test_adf_equals_adfuller(name, reg, autolag):
    x = _series()[name]
    ml = None if autolag else 5
    ref = _sm_adf(x, regression=reg, autolag=autolag, maxlag=ml)
    res = adf(x, regression=reg, autolag=autolag, maxlag=ml)
    assert res.stat == pytest.approx(ref[0], rel=1e-8)
    assert res.pvalue == pytest.approx(ref[1], rel=1e-8, abs=1e-12)
    assert (res.usedlag, res.nobs) == (ref[2], ref[3])
    assert list(res.critical_values.values()) == pytest.approx(list(ref[4].values()), rel=1e-12)
    if autolag:
        assert res.icbest == pytest.approx(ref[5], rel=1e-8)


def test_coint_equals_statsmodels_and_uses_cointegration_critical_values():
    y, x = MACRO["realcons"].to_numpy(), MACRO["realgdp"].to_numpy()
    # statsmodels' reference value (TestCoint_t)
    assert coint(y, x, "c", maxlag=0, autolag=None).stat == pytest.approx(-1.830170986148,
                                                                         abs=1e-8)
    for trend in ("c", "ct"):
        ref = sm_coint(y, x, trend=trend)
        res = coint(y, x, trend=trend)
        assert res.stat == pytest.approx(ref[0], rel=1e-9)
        assert res.pvalue == pytest.approx(ref[1], rel=1e-9)
        assert list(res.critical_values.values()) == pytest.approx(list(ref[2]), rel=1e-12)
    # a plain ADF on the fitted residuals has the same statistic but a smaller (wrong) p-value
    res = coint(y, x)
    assert res.adf.stat == res.stat and res.adf.pvalue < res.pvalue
    assert res.critical_values["5%"] < adf(y - res.beta * x - res.alpha).critical_values["5%"]


def test_coint_on_real_btc_eth_1m_bars():
    from test_analytics_hedge import _ticks

    from qdash.bars import resample
    t = _ticks()
    y = resample(t, "1s", symbol="BTCUSDT", fill=True)["close"]
    x = resample(t, "1s", symbol="ETHUSDT", fill=True)["close"]
    _, yv, xv = align(y, x)
    ref = sm_coint(yv, xv)
    res = coint(yv, xv)
    assert res.stat == pytest.approx(ref[0], rel=1e-9) and res.pvalue == pytest.approx(ref[1])


def test_half_life_recipe_and_chan_gld_gdx():
    gld = pd.read_csv(REFERENCE_SERIES / "GLD_chan_2004_2007.csv", index_col="Date",
                      parse_dates=True)["Adj Close"]
    gdx = pd.read_csv(REFERENCE_SERIES / "GDX_chan_2006_2007.csv", index_col="Date",
                      parse_dates=True)["Adj Close"]
    z = hedge_ratio(gld, gdx, "ols", intercept=False).spread.to_numpy()
    # Chan ex. 7.5 recipe: dz on (z_{t-1} - mean), no constant
    prevz = z[:-1]
    theta = sm.OLS(np.diff(z), prevz - prevz.mean()).fit().params[0]
    assert half_life(z) == pytest.approx(-np.log(2) / theta, rel=1e-10)
    assert 5 < half_life(z) < 15                 # Chan reports ~10 days on his longer sample
    assert half_life(np.cumsum(np.ones(50))) == np.inf or half_life(np.arange(50.0) ** 2) > 0
    rng = np.random.default_rng(0)
    s = np.zeros(20_000)
    for i in range(1, len(s)):
        s[i] = 0.95 * s[i - 1] + rng.normal()
    assert half_life(s) == pytest.approx(-np.log(2) / np.log(0.95), rel=0.15)


def test_hurst_estimator_regimes():
    rng = np.random.default_rng(4)
    assert hurst(np.cumsum(rng.normal(size=20_000))) == pytest.approx(0.5, abs=0.05)
    assert hurst(rng.normal(size=20_000)) < 0.1
    assert hurst(np.cumsum(np.cumsum(rng.normal(size=20_000)))) > 0.9


def test_zscore_is_causal_equals_pandas_and_never_silent_zero():
    rng = np.random.default_rng(9)
    s = pd.Series(np.cumsum(rng.normal(size=500)) + 1e4)
    z = zscore(s, 50)
    ref = (s - s.rolling(50).mean()) / s.rolling(50).std()
    np.testing.assert_allclose(z, ref, rtol=1e-8, equal_nan=True)
    assert z.iloc[:49].isna().all() and z.iloc[49:].notna().all()
    s2 = s.copy()
    s2.iloc[300:] += 1000                        # changing the future leaves the past alone
    pd.testing.assert_series_equal(zscore(s2, 50).iloc[:300], z.iloc[:300])
    flat = pd.Series(np.r_[np.ones(60), np.arange(10.0)])
    zf = zscore(flat, 50)
    assert zf.iloc[49:60].isna().all()           # no spread in the window: NaN, not 0
    with pytest.raises(AnalyticsError):
        zscore(s, 1)


def test_correlation_equals_pandas():
    rng = np.random.default_rng(10)
    a = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.01, 400))) * 3400)
    b = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.01, 400)) + 0.5 * np.log(a / 3400)) * 64000)
    np.testing.assert_allclose(correlation(a, b, 40, on="prices"), a.rolling(40).corr(b),
                               rtol=1e-8, equal_nan=True)
    ra, rb = np.log(a).diff(), np.log(b).diff()
    np.testing.assert_allclose(correlation(a, b, 40), ra.rolling(40).corr(rb), rtol=1e-8,
                               equal_nan=True)


def test_coint_shows_only_the_cointegration_p_value():
    """The residuals' ADF p-value (Dickey-Fuller critical values, N=1) is not the cointegration
    p-value; printed beside it, it reads as significant where the test is not."""
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=300))
    y = x + 0.3 * np.cumsum(rng.normal(size=300))  # not cointegrated: a random-walk spread
    res = coint(y, x)
    assert res.adf.pvalue < 0.05 < res.pvalue  # the trap: two p-values on either side of 5%
    for text in (repr(res), str(res)):
        assert f"{res.pvalue:.4g}" in text or repr(res.pvalue) in text
        assert repr(res.adf.pvalue) not in text and f"{res.adf.pvalue:.4g}" not in text
        assert "ADFResult" not in text
    assert "cointegration" in str(res) and "N=2" in str(res)
