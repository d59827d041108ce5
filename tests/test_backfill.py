"""Filling a hole from REST, against an in-memory exchange ledger (no sockets): exact from
/trades or aggTrades by id, one tick per trade id from aggregates, bounded paging."""

import asyncio

import numpy as np
import pytest

from qdash.feeds.backfill import fetch_hole

T0 = 1_721_347_000_000


class FakeRest:
    """Binance's answers for one symbol's trades: ids 1..n, aggregates of 1-3 trades."""

    def __init__(self, n=5000, seed=1):
        rng = np.random.default_rng(seed)
        self.ids = np.arange(1, n + 1)
        self.ts = T0 + np.cumsum(rng.integers(0, 3, n))
        sizes = rng.integers(1, 4, n)
        starts = np.cumsum(np.r_[0, sizes])[:-1]
        starts = starts[starts < n]
        self.agg = np.zeros(n, dtype=np.int64)
        for k, s in enumerate(starts):
            self.agg[s:] = 500 + k
        group = np.searchsorted(starts, np.arange(n), side="right") - 1
        # one aggregate: one taker order, one price, one time
        self.ts = self.ts[starts][group]
        self.price = (100 + np.round(rng.normal(0, 1, n), 2))[starts][group]
        self.qty = np.round(rng.uniform(0.001, 2, n), 3)
        self.m = rng.integers(0, 2, n)[starts][group]
        self.calls = []

    def aggs(self):
        out = []
        for a in np.unique(self.agg):
            sel = np.flatnonzero(self.agg == a)
            out.append({"a": int(a), "p": f"{self.price[sel[0]]:.2f}",
                        "q": f"{self.qty[sel].sum():.3f}", "f": int(self.ids[sel[0]]),
                        "l": int(self.ids[sel[-1]]), "T": int(self.ts[sel[0]]),
                        "m": bool(self.m[sel[0]])})
        return out

    async def get(self, path, params):
        self.calls.append((path, dict(params)))
        limit = params.get("limit", 500)
        if path == "/fapi/v1/trades":
            return [{"id": int(i), "price": f"{p:.2f}", "qty": f"{q:.3f}", "time": int(t),
                     "isBuyerMaker": bool(m)} for i, p, q, t, m in
                    zip(self.ids, self.price, self.qty, self.ts, self.m)][-limit:]
        rows = self.aggs()
        if "fromId" in params:
            rows = [r for r in rows if r["a"] >= params["fromId"]]
        if "startTime" in params:
            assert params["endTime"] - params["startTime"] < 3_600_000
            rows = [r for r in rows if params["startTime"] <= r["T"] <= params["endTime"]]
        return rows[:limit]

    def market(self, lo, hi):
        sel = (self.ids >= lo) & (self.ids <= hi)
        return self.ids[sel], self.ts[sel], self.price[sel]


def run(coro):
    return asyncio.run(coro)


def test_a_recent_hole_is_exact_from_the_trades_endpoint():
    rest = FakeRest()
    got = run(fetch_hole(rest.get, "BTCUSDT", 4500, 4510, 0, 0))
    ids, ts, price = rest.market(4500, 4510)
    assert got["trade_id"].tolist() == ids.tolist()
    np.testing.assert_array_equal(got["price"], price)
    np.testing.assert_array_equal(got["ts"], ts)
    assert got["source"].eq("binance:rest").all()
    assert [c[0] for c in rest.calls] == ["/fapi/v1/trades"]


@pytest.mark.parametrize("lo,hi", [(10, 10), (100, 2500), (1, 3999)])
def test_an_older_hole_is_one_tick_per_trade_id_from_aggregates(lo, hi):
    rest = FakeRest()
    t_before = int(rest.ts[lo - 2]) if lo > 1 else T0
    got = run(fetch_hole(rest.get, "BTCUSDT", lo, hi, t_before, int(rest.ts[hi])))
    ids, ts, price = rest.market(lo, hi)
    assert got["trade_id"].tolist() == ids.tolist()  # no hole, no duplicate
    np.testing.assert_array_equal(got["ts"], ts)
    np.testing.assert_array_equal(got["price"], price)
    assert got["source"].eq("binance:rest-agg").all()
    paths = [c for c in rest.calls if c[0] == "/fapi/v1/aggTrades"]
    assert "startTime" in paths[0][1] and all("fromId" in c[1] for c in paths[1:])
    assert len(paths) <= 2 + (hi - lo) // 1000 + 1  # paged by id, not re-read


def test_aggregate_ids_are_filled_exactly_by_id():
    rest = FakeRest()
    rows = rest.aggs()
    lo, hi = rows[100]["a"], rows[1600]["a"]
    got = run(fetch_hole(rest.get, "BTCUSDT", lo, hi, 0, 0, stream="aggTrade"))
    assert got["trade_id"].tolist() == list(range(lo, hi + 1))
    assert all("fromId" in c[1] for c in rest.calls)


def test_nothing_there_gives_an_empty_batch():
    rest = FakeRest(n=2000)
    rest.ts = rest.ts + 10 * 3_600_000  # every trade after the searched window
    got = run(fetch_hole(rest.get, "BTCUSDT", 5, 6, T0, T0 + 7_300_000))
    assert got.empty and len(rest.calls) == 1 + 3  # /trades, then three 1 h windows
