"""Candles: resample() and BarBuilder against hand-made cases, each other, and Binance's klines."""

import numpy as np
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES
from hypothesis import given, settings
from hypothesis import strategies as st

from qdash.bars import BarBuilder, fill_gaps, resample
from qdash.errors import DataFormatError, TimeframeError
from qdash.model import BAR_COLUMNS, tick_frame, timeframe_ms, timeframe_name

EXACT = ["open", "high", "low", "close", "trades"]
SUMS = ["volume", "buy_volume", "quote_volume", "vwap"]


def ticks(ts, price, qty, side=0, trade_id=None, symbol="ETHUSDT"):
    ts = np.asarray(ts, dtype=np.int64)
    if trade_id is None:
        trade_id = np.arange(1, len(ts) + 1)
    return tick_frame(symbol, ts, trade_id, price, qty, side, "test")


def assert_same_bars(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.index) == list(b.index)
    pd.testing.assert_frame_equal(a[EXACT], b[EXACT])
    pd.testing.assert_frame_equal(a[SUMS], b[SUMS], rtol=1e-12, atol=1e-12)


def test_timeframes_parse_and_reject():
    assert timeframe_ms("1s") == 1000
    assert timeframe_ms("30s") == 30_000
    assert timeframe_ms("4h") == 4 * 3_600_000
    assert timeframe_ms("1d") == 86_400_000
    assert timeframe_name("60s") == "1m"
    assert timeframe_name(3_600_000) == "1h"
    for bad in ("", "0m", "1x", "m5", "1.5m", "-1m"):
        with pytest.raises(TimeframeError, match="timeframe"):
            timeframe_ms(bad)


def test_hand_made_minute_candles():
    # two trades in 00:00, none in 00:01, three in 00:02 (one sell), left-closed buckets
    t0 = 1_721_347_200_000  # 2024-07-19 00:00:00 UTC
    df = ticks([t0, t0 + 59_999, t0 + 120_000, t0 + 120_500, t0 + 179_999],
               [10.0, 12.0, 11.0, 9.0, 10.5], [1.0, 2.0, 1.0, 3.0, 0.5], side=[0, 0, 1, 0, 0])
    bars = resample(df, "1m")
    assert list(bars.columns) == BAR_COLUMNS
    assert list(bars.index) == [pd.Timestamp(t0, unit="ms", tz="UTC"),
                                pd.Timestamp(t0 + 120_000, unit="ms", tz="UTC")]
    first, second = bars.iloc[0], bars.iloc[1]
    assert (first.open, first.high, first.low, first.close) == (10.0, 12.0, 10.0, 12.0)
    assert first.volume == 3.0 and first.trades == 2 and first.buy_volume == 3.0
    assert first.quote_volume == 34.0 and first.vwap == pytest.approx(34 / 3)
    assert (second.open, second.high, second.low, second.close) == (11.0, 11.0, 9.0, 10.5)
    assert second.buy_volume == 3.5  # the side-1 trade (taker sold) is not taker-buy volume
    assert bars.index.tz is not None and str(bars.index.tz) == "UTC"

    filled = resample(df, "1m", fill=True)
    assert len(filled) == 3
    gap = filled.iloc[1]
    assert (gap.open, gap.high, gap.low, gap.close) == (12.0, 12.0, 12.0, 12.0)
    assert gap.volume == 0 and gap.trades == 0 and np.isnan(gap.vwap)


def test_trade_order_decides_open_and_close_within_a_millisecond():
    t = 1_721_347_200_000
    # same millisecond, given out of id order: open is the lowest id, close the highest
    df = ticks([t, t, t], [3.0, 1.0, 2.0], [1, 1, 1], trade_id=[12, 10, 11])
    bar = resample(df, "1s").iloc[0]
    assert (bar.open, bar.close) == (1.0, 3.0)
    # without exchange ids (negative synthetic ids) the input order decides
    df2 = ticks([t, t, t], [3.0, 1.0, 2.0], [1, 1, 1], trade_id=[-5, -9, -1])
    bar2 = resample(df2, "1s").iloc[0]
    assert (bar2.open, bar2.close) == (3.0, 2.0)


def test_unknown_side_gives_nan_buy_volume_not_zero():
    t = 1_721_347_200_000
    df = ticks([t, t + 1], [1.0, 1.0], [1.0, 1.0], side=[0, -1])
    assert np.isnan(resample(df, "1m").iloc[0].buy_volume)


def test_several_symbols_need_a_choice():
    t = 1_721_347_200_000
    df = pd.concat([ticks([t], [1.0], [1.0], symbol="A1"), ticks([t], [2.0], [1.0], symbol="B1")])
    with pytest.raises(DataFormatError, match="several symbols"):
        resample(df, "1m")
    assert resample(df, "1m", symbol="B1").iloc[0].close == 2.0


@st.composite
def tick_streams(draw):
    n = draw(st.integers(1, 300))
    gaps = draw(st.lists(st.integers(0, 4000), min_size=n, max_size=n))
    ts = 1_721_347_200_000 + np.cumsum(gaps)
    prices = draw(st.lists(st.floats(1, 1e5, allow_nan=False), min_size=n, max_size=n))
    qtys = draw(st.lists(st.floats(1e-3, 1e3, allow_nan=False), min_size=n, max_size=n))
    sides = draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=8)))
    tf = draw(st.sampled_from(["1s", "3s", "1m"]))
    return ticks(ts, prices, qtys, sides), cuts, tf


@settings(max_examples=40, deadline=None)
@given(tick_streams())
def test_bar_builder_equals_resample_on_any_batching(case):
    df, cuts, tf = case
    builder = BarBuilder(tf)
    closed = []
    bounds = [0, *cuts, len(df)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        update = builder.update(df.iloc[a:b])
        closed.append(update.closed)
        if len(update.forming):
            # the forming candle always reflects every tick so far
            so_far = resample(df.iloc[:b], tf)
            assert_same_bars(update.forming, so_far.iloc[-len(update.forming):])
    closed.append(builder.flush().closed)
    assert_same_bars(pd.concat(closed), resample(df, tf))


def test_bar_builder_merges_late_ticks_within_tolerance_and_drops_older():
    t = 1_721_347_200_000
    builder = BarBuilder("1s", tolerance_ms=500)
    builder.update(ticks([t + 100, t + 1200], [1.0, 2.0], [1, 1], trade_id=[1, 3]))
    # 1.2 s seen, tolerance 0.5 s: candle [t, t+1s) is still open, a late tick joins it
    update = builder.update(ticks([t + 900], [5.0], [1], trade_id=[2]))
    assert len(update.closed) == 0
    update = builder.update(ticks([t + 1600], [2.5], [1], trade_id=[4]))
    assert len(update.closed) == 1 and update.closed.iloc[0].high == 5.0
    assert update.closed.iloc[0].trades == 2
    # now a tick for the closed candle is too late: dropped and counted, not merged
    update = builder.update(ticks([t + 950], [99.0], [1], trade_id=[5]))
    assert builder.late_dropped == 1
    assert update.forming.iloc[0].high == 2.5


def test_fill_gaps_keeps_existing_candles():
    t = 1_721_347_200_000
    bars = resample(ticks([t, t + 180_000], [1.0, 2.0], [1, 1]), "1m")
    filled = fill_gaps(bars, "1m")
    assert len(filled) == 4
    pd.testing.assert_frame_equal(filled.iloc[[0, 3]], bars, check_freq=False)


def _official_klines():
    k = pd.read_csv(JULY / "official_klines_1m_ETHUSDT.csv")
    k.index = pd.to_datetime(k["open_time"], unit="ms", utc=True)
    return k


# The three files hold the same trades; each must rebuild Binance's own 1m klines.
@pytest.mark.parametrize("name", [".raw.ndjson.gz", ".csv.gz", ".collector.ndjson"])
def test_eth_minutes_equal_official_klines(name):
    from qdash.io import read_ticks

    ticks_all = read_ticks(JULY / (JULY_TRADES + name))
    bars = resample(ticks_all, "1m", symbol="ETHUSDT")
    k = _official_klines()
    complete = k.index[(k.index >= "2024-07-18 23:58") & (k.index <= "2024-07-19 00:04")]
    assert len(complete) == 7
    got, want = bars.loc[complete], k.loc[complete]
    for ours, theirs in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                         ("trades", "count")]:
        np.testing.assert_array_equal(got[ours].to_numpy(), want[theirs].to_numpy(), err_msg=ours)
    # sums: Binance prints exact decimals; ours are float64 sums of the same numbers
    for ours, theirs in [("volume", "volume"), ("quote_volume", "quote_volume")]:
        np.testing.assert_allclose(got[ours], want[theirs], rtol=1e-12, err_msg=ours)
    if not name.endswith(".collector.ndjson"):  # the collector format does not record the side
        np.testing.assert_allclose(got["buy_volume"], want["taker_buy_volume"], rtol=1e-12)
    else:
        assert got["buy_volume"].isna().all()


def test_bar_builder_forming_follows_every_tick_and_close():
    """``forming`` is built once per change (a live dashboard asks for it several times a frame),
    never stale: a tick into the open candle, a new candle and a close each show at once."""
    b = BarBuilder("1s")
    b.update(ticks([1_000, 1_200], [10.0, 11.0], [1.0, 1.0]))
    first = b.forming
    assert b.forming is first  # nothing changed: the same frame
    assert first["close"].tolist() == [11.0] and first["trades"].tolist() == [2]
    b.update(ticks([1_500], [9.0], [2.0], trade_id=[3]))
    assert b.forming["close"].tolist() == [9.0] and b.forming["low"].tolist() == [9.0]
    assert b.forming["volume"].tolist() == [4.0]
    assert first["close"].tolist() == [11.0]  # a frame handed out is never changed
    update = b.update(ticks([2_100], [12.0], [1.0], trade_id=[4]))
    assert update.n_closed == 1 and update.closed["close"].tolist() == [9.0]
    assert b.forming.index.tolist() == [pd.Timestamp(2_000, unit="ms", tz="UTC")]
    assert b.advance(3_000).n_closed == 1
    assert b.forming.empty and list(b.forming.columns) == BAR_COLUMNS


def test_empty_bars_are_independent_frames():
    from qdash.bars import empty_bars

    a = empty_bars()
    a["extra"] = 1.0
    b = empty_bars()
    assert list(b.columns) == BAR_COLUMNS and b.empty
    assert b["trades"].dtype == np.int64 and b["close"].dtype == np.float64
    assert str(b.index.tz) == "UTC" and b.index.name == "open_time"
