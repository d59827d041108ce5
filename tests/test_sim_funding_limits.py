"""Funding from the simulator's past (every 8 h at 00/08/16 UTC, Binance's formula) and the REST
weight limit (429 + Retry-After, then 418), without sockets."""

import types

import numpy as np
import pytest

import qdash.sim.limiter as limiter
from qdash.sim.exchange import SimExchange
from qdash.sim.past import FUNDING_MS, INTEREST

START = 1_721_390_000_000  # 2024-07-19T12:53:20Z


@pytest.fixture(scope="module")
def sim():
    return SimExchange(["BTCUSDT", "ETHUSDT"], seed=5, universe=4, start_ms=START)


def test_funding_every_8_hours_at_00_08_16_utc(sim):
    end = sim.past.end_ms
    for sym in sim.symbols:
        f = sim.past.funding(sym, end - 30 * 86_400_000, end)
        t = f["funding_time"].to_numpy()
        assert len(t) == 90 and (np.diff(t) == FUNDING_MS).all()
        hours = t.astype("datetime64[ms]").astype(object)
        assert {h.hour for h in hours} == {0, 8, 16} and {h.minute for h in hours} == {0}
        assert t[-1] <= end < t[-1] + FUNDING_MS
        # Binance: F = P + clamp(I − P, ±0.05 %), capped per symbol, 8 decimals
        p = f["premium"].to_numpy()
        cap = sim.instruments[sym].funding_cap
        want = np.round(np.clip(p + np.clip(INTEREST - p, -0.0005, 0.0005), -cap, cap), 8)
        np.testing.assert_array_equal(f["funding_rate"].to_numpy(), want)
    # a realistic distribution: mostly the 0.01 % floor, positive on average, a few negative
    rates = np.concatenate([sim.past.funding(s, end - 365 * 86_400_000, end)["funding_rate"]
                            for s in sim.symbols])
    assert 0.2 < np.mean(rates == INTEREST) < 0.95
    assert 0 < np.median(rates) <= 3 * INTEREST and (rates < 0).any()
    assert np.abs(rates).max() <= 0.02


def test_funding_windows_agree_and_start_after_the_listing(sim):
    end = sim.past.end_ms
    a = sim.past.funding("BTCUSDT", end - 10 * 86_400_000, end)
    b = sim.past.funding("BTCUSDT", end - 4 * 86_400_000, end - 86_400_000)
    merged = a.merge(b, on="funding_time", suffixes=("", "_b"))
    assert len(merged) == len(b)
    np.testing.assert_array_equal(merged["funding_rate"], merged["funding_rate_b"])
    sym = next(s for s in sim.symbols if s.startswith("SYN"))
    listed = sim.past.first_ms(sym)
    f = sim.past.funding(sym, listed - 5 * 86_400_000, listed + 86_400_000)
    assert f["funding_time"].min() > listed and len(f) == 3


class _Clock:
    def __init__(self, t):
        self.t = t

    def time(self):
        return self.t


def test_weight_limit_gives_429_with_retry_after_then_418(monkeypatch):
    clock = _Clock(1_721_390_000.0)  # 20 s into a minute
    monkeypatch.setattr(limiter, "time", types.SimpleNamespace(
        time=clock.time, monotonic=clock.time, time_ns=lambda: int(clock.time() * 1e9)))
    ex = SimExchange(["BTCUSDT"], weight_limit=50, ban_seconds=120, start_ms=START)
    ip = "10.0.0.1"
    for _ in range(10):
        assert ex.limiter.admit(ip, 5) is None
    assert ex.limiter.used(ip) == 50
    status, retry, used = ex.limiter.admit(ip, 1)
    assert (status, used) == (429, 50) and retry == 41  # to the next minute, rounded up
    clock.t += 5
    status, retry, used = ex.limiter.admit(ip, 1)  # asked again before Retry-After: banned
    assert (status, retry) == (418, 120)
    clock.t += 60
    assert ex.limiter.admit(ip, 1)[0] == 418
    clock.t += 61  # the ban is over and a new minute has begun
    assert ex.limiter.admit(ip, 1) is None and ex.limiter.used(ip) == 1
    assert ex.limiter.admit("10.0.0.2", 50) is None  # the limit is per IP
    # a new minute resets the weight without any 429 in between
    ex2 = SimExchange(["BTCUSDT"], weight_limit=10, start_ms=START)
    assert ex2.limiter.admit(ip, 10) is None
    clock.t += 60
    assert ex2.limiter.admit(ip, 10) is None
