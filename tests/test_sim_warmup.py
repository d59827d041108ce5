"""The simulated exchange has been trading before its start: the live model trades the last
``warmup_s`` seconds, so the recent past a client fetches (1s bars, aggTrades) is as dense as the
live stream, and it continues the deterministic past without a jump."""

import numpy as np
import pytest

from qdash.sim.exchange import SimExchange
from qdash.sim.past import IDS_PER_DAY

START = 1_721_390_000_000  # 2024-07-19 11:53:20 UTC
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def empty_seconds(ts: np.ndarray, start: int, end: int) -> int:
    """Seconds of [start, end) without a trade time in ``ts`` (ms)."""
    seen = np.unique(ts[(ts >= start) & (ts < end)] // 1000)
    return (end - start) // 1000 - len(seen)


def test_the_last_minutes_before_the_start_are_as_dense_as_the_live_stream():
    sim = SimExchange(SYMBOLS, rate=80, seed=7, start_ms=START)
    cold = SimExchange(SYMBOLS, rate=80, seed=7, start_ms=START, warmup_s=0)
    minute = 60_000
    assert sim.past.end_ms == (START - 300_000) // minute * minute
    assert cold.past.end_ms == START // minute * minute
    for sym in SYMBOLS:
        ts = sim.ledger.arrays(sym)["ts"]
        assert ts.min() >= sim.past.end_ms and ts.max() < START
        assert empty_seconds(ts, sim.past.end_ms, START - 1000) == 0
        # what a client got before: the past's trades expand 1m klines, a few a second
        end = cold.past.end_ms
        past = cold.past.trades(sym, (end - 1) // 86_400_000)["time"].to_numpy()
        assert empty_seconds(past, end - 120_000, end) > 20


def test_the_warm_up_continues_the_past():
    sim = SimExchange(SYMBOLS, rate=80, seed=7, start_ms=START)
    end = sim.past.end_ms
    for sym in SYMBOLS:
        last = sim.past.minutes(sym, end - 60_000, end)
        a = sim.ledger.arrays(sym)
        first = int(np.argmin(a["ts"]))
        assert a["trade_id"][first] > sim.past.trade_id_at(sym, end - 1, first=False)
        assert a["trade_id"][first] >= (end // 86_400_000 + 1) * IDS_PER_DAY
        assert abs(a["price"][first] / last["close"][-1] - 1) < 0.002


def test_every_symbol_of_a_universe_trades_live_as_often_as_its_past():
    """The past gives every minute at least 4 trades; the live model (here its 10-minute warm-up)
    gives every symbol at least that on average, thin synthetic ones included, and keeps the
    total rate. Before, a symbol's share of the rate followed its quote volume alone, and the
    thinnest of a 40-symbol universe traded about once every few minutes."""
    from qdash.sim.universe import MIN_TRADES_PER_MINUTE

    rate, minutes = 60.0, 10
    sim = SimExchange(SYMBOLS, rate=rate, seed=3, start_ms=START, universe=40,
                      warmup_s=minutes * 60)
    counts = {s: len(sim.ledger.arrays(s)["ts"]) for s in sim.symbols}
    span_min = (START - sim.past.end_ms) / 60_000
    # the symbols whose share the floor raised trade at the floor's rate on average
    floored = [s for s, w in zip(sim.symbols, sim.model.weights)
               if w * rate * 60 <= MIN_TRADES_PER_MINUTE + 1e-9]
    assert len(floored) >= 10
    per_minute = np.array([counts[s] for s in floored]) / span_min
    assert per_minute.mean() == pytest.approx(MIN_TRADES_PER_MINUTE, rel=0.2)
    assert per_minute.min() >= MIN_TRADES_PER_MINUTE / 3, dict(zip(floored, per_minute))
    assert sum(counts.values()) / (span_min * 60) == pytest.approx(rate, rel=0.15)
    # the heavy symbols still trade the most
    assert max(counts, key=counts.get) in SYMBOLS


def test_floored_shares_keep_proportions_above_the_floor():
    from qdash.sim.market import floored_shares

    shares = floored_shares(np.array([100.0, 50.0, 1.0, 0.1]), 0.05)
    assert shares.sum() == pytest.approx(1.0)
    assert shares[2] == pytest.approx(0.05) and shares[3] == pytest.approx(0.05)
    assert shares[0] / shares[1] == pytest.approx(2.0)  # the rest keep their proportions
    assert floored_shares(np.array([3.0, 1.0]), 0.6).tolist() == [0.5, 0.5]  # cannot: equal
    assert floored_shares(np.array([3.0, 1.0]), 0.0).tolist() == [0.75, 0.25]
