"""The simulated exchange has been trading before its start: the live model trades the last
``warmup_s`` seconds, so the recent past a client fetches (1s bars, aggTrades) is as dense as the
live stream, and it continues the deterministic past without a jump."""

import numpy as np

from qdash.sim.past import IDS_PER_DAY
from qdash.sim.server import SimExchange

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
