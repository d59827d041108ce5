"""The dashboard's render model and the numbers it asks the library for (no browser)."""

import asyncio

import numpy as np
import pandas as pd
import pytest

from qdash.analytics import return_correlations
from qdash.app.render import connection_text, live_point


def test_connection_text_says_host_error_and_retry():
    assert connection_text({"state": "open", "host": "wss://x"}) is None
    text = connection_text({"state": "backing off", "host": "wss://fstream.binance.com",
                            "last_error": "OSError: [Errno 101] Network is unreachable",
                            "retry_in_s": 7.4})
    assert text == ("backing off to wss://fstream.binance.com: OSError: [Errno 101] Network is "
                    "unreachable — retrying in 7 s")


def test_live_point_is_empty_without_a_z_score():
    assert live_point(None, 1.0) == {"t": [], "z": []}
    assert live_point({"zscore": float("nan")}, 1.0) == {"t": [], "z": []}
    assert live_point({"zscore": 1.5}, 2.0) == {"t": [2.0], "z": [1.5]}


def test_return_correlations_align_on_open_time_without_carrying():
    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=500, freq="1min", tz="UTC")
    a = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 500))), index=idx)
    b = pd.Series(a * np.exp(rng.normal(0, 5e-4, 500)), index=idx)
    c = pd.Series(50 * np.exp(np.cumsum(rng.normal(0, 1e-3, 500))), index=idx).drop(idx[100:110])
    corr = return_correlations({"A": a, "B": b, "C": c}, last=1_000)
    ra, rc = np.log(a).diff(), np.log(c.reindex(idx)).diff()
    assert corr.loc["A", "C"] == pytest.approx(ra.corr(rc))
    assert corr.loc["A", "B"] > 0.8 and abs(corr.loc["A", "C"]) < 0.2
    assert corr.loc["A", "A"] == pytest.approx(1.0)


@pytest.mark.integration  # builds the whole widget tree (Bokeh, ipywidgets): seconds
def test_editing_the_watch_list_keeps_the_chosen_pair(db_path):
    from qdash.app import Dashboard

    async def scenario():
        d = Dashboard(source="store", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], y="SOLUSDT",
                      x="ETHUSDT", db=str(db_path))
        d.set_symbols("BTCUSDT, ETHUSDT, SOLUSDT, XRPUSDT")
        kept = (d.y, d.x)
        d.set_symbols("BTCUSDT, XRPUSDT")
        return kept, (d.y, d.x)

    kept, replaced = asyncio.run(scenario())
    assert kept == ("SOLUSDT", "ETHUSDT")
    assert replaced == ("XRPUSDT", "BTCUSDT")


@pytest.mark.integration  # builds the whole widget tree (Bokeh, ipywidgets): seconds
def test_a_new_pair_or_source_reuses_the_views_and_says_what_it_shows(db_path):
    """Changing pair or source empties and relabels the same Bokeh views (no new documents for
    the page to build), and switching to stored data says what it shows, not "stopped"."""
    from qdash.app import Dashboard
    from qdash.store import Store

    n = 200
    t = pd.date_range("2024-07-01", periods=n, freq="1min", tz="UTC", name="open_time")
    rng = np.random.default_rng(5)
    with Store(db_path) as store:
        for i, sym in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT")):
            close = 100 * (i + 1) * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
            store.write_bars(pd.DataFrame({"open": close, "high": close, "low": close,
                                           "close": close, "volume": 1.0, "trades": 1,
                                           "buy_volume": 0.5, "quote_volume": close,
                                           "vwap": close}, index=t), sym, "1m")

    async def scenario():
        d = Dashboard(source="store", symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], y="ETHUSDT",
                      x="BTCUSDT", timeframe="1m", window=20, db=str(db_path))
        views = d.charts.views()
        d.market.source.value = "store"
        d.restart()
        await asyncio.sleep(0.2)
        shown_first = len(d.figures.pair.data["t"])
        status = d.status.value
        d.market.y.value = "SOLUSDT"
        await asyncio.sleep(0.2)
        return d, views, shown_first, status

    d, views, shown_first, status = asyncio.run(scenario())
    assert d.charts.views() == views                                   # the same widgets
    assert shown_first == 200 and "stored data: 200 aligned 1m bars" in status
    assert d.figures.candle_figs["y"].title.text == "SOLUSDT candles and volume"
    assert d.figures.normalized.legend.items[0].label.value == "SOLUSDT"
    assert "SOLUSDT on BTCUSDT" in d.figures.hedge.title.text
    assert len(d.figures.pair.data["t"]) == 200                  # refilled for the new pair
