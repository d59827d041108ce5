"""The simulator's replay publishes a valid Binance trade stream, fills included: qdash's own
decoder and sequencer (what a client runs on the frames) drop nothing, and the replay's clock
stamps the accounts' fills (no sockets: the frames are those the exchange sends a subscriber)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import COLLECTOR

import qdash.sim.replay as sim_replay
from qdash.binance.decode import decode_frames
from qdash.feeds.sequencer import Sequencer
from qdash.io import read_ticks
from qdash.sim.exchange import SimExchange
from qdash.sim.replay import load_replay, tick_rule

pytestmark = pytest.mark.unit

Y, X = "ETHUSDT", "BTCUSDT"
CAPTURE = COLLECTOR / "ticks_2025-12-15_BTCUSDT_ETHUSDT.ndjson"
STREAMS = [f"{s.lower()}@{k}" for s in (Y, X) for k in ("trade", "aggTrade")]


def recorded(n=40, first_id=7_000_000) -> pd.DataFrame:
    """``n`` ETHUSDT trades with consecutive recorded ids, 100 ms apart."""
    ts = 1_765_000_000_000 + 100 * np.arange(n)
    price = 3000.0 + np.round(np.sin(np.arange(n)), 2)
    return pd.DataFrame({"symbol": Y, "ts": ts, "trade_id": first_id + np.arange(n),
                         "price": price, "qty": 0.01, "is_buyer_maker": np.arange(n) % 2,
                         "source": "test"})


def replaying(ticks, monkeypatch, step=5):
    """A replay exchange (not started) that publishes ``step`` recorded trades a step, with a
    subscriber on every trade stream, and a funded account."""
    monkeypatch.setattr(sim_replay, "FAST_STEP", step)
    sim = SimExchange([Y, X], replay=ticks, speed=0)
    sim.sockets.ever_streams.update(STREAMS)
    return sim, sim.open_account(balance=1e6)


def client_view(sim, symbol, kind):
    """What a client keeps of ``symbol``'s ``kind`` stream: decoded, then sequenced."""
    frames = list(sim.sockets.recent[f"{symbol.lower()}@{kind}"])
    res = decode_frames(frames)
    seq = Sequencer()
    seq.add(symbol)
    got, gap = seq.accept(symbol, res.ticks[res.ticks["symbol"] == symbol])
    return frames, res, seq, got, gap


def test_fills_take_ids_between_the_recorded_trades_and_the_replays_time(monkeypatch):
    ticks = recorded()
    sim, acc = replaying(ticks, monkeypatch)
    sim._publish_replay()
    sim._publish_replay()                       # 10 recorded trades out
    o = sim.trading.place(acc, Y, "BUY", "MARKET", 30.0)
    while not sim.replay_done:
        sim._publish_replay()
    fills = {t["id"] for t in acc.trades}
    assert o.status == "FILLED" and len(fills) >= 2     # several levels: several trade ids
    a = sim.ledger.arrays(Y)
    ids, ts = a["trade_id"], a["ts"]
    assert (np.diff(ids) == 1).all() and ids[0] == 7_000_000        # unique, no gap
    assert len(ids) == len(ticks) + len(fills)
    own = np.isin(ids, list(fills))
    assert own[10:10 + len(fills)].all() and not own[:10].any()
    assert (ts[own] == ticks["ts"].iloc[9]).all()       # the replay's clock, not the wall's
    assert [t["time"] for t in acc.trades] == ts[own].tolist()
    assert np.array_equal(ts[~own], ticks["ts"].to_numpy())  # every recorded trade, in order
    for kind in ("trade", "aggTrade"):
        frames, res, seq, got, gap = client_view(sim, Y, kind)
        assert gap is None and seq.duplicates == 0 and "malformed" not in res.counts
        assert len(got) == len(frames)                   # one tick per trade/aggregate
        assert got["ts"].is_monotonic_increasing
    aggs = sim.ledger.aggregates(Y)
    assert (np.diff(aggs["agg_id"]) == 1).all() and len(aggs) == len(ticks) + 1
    assert aggs["qty"].sum() == pytest.approx(ticks["qty"].sum() + 30.0)
    bars = sim.minutes_of(Y).bars(0, 2**62)              # klines count the fills too
    assert bars["volume"].sum() == pytest.approx(ticks["qty"].sum() + 30.0)


def test_a_capture_without_ids_or_sides_is_a_valid_stream(monkeypatch):
    raw = read_ticks(CAPTURE)
    assert (raw["trade_id"] < 0).all() and (raw["is_buyer_maker"] < 0).all()
    raw = raw[raw["ts"] < raw["ts"].iloc[0] + 20_000]  # the frames a subscriber gets again
    sim, acc = replaying(raw, monkeypatch, step=50)
    sim._publish_replay()
    sim.trading.place(acc, X, "SELL", "MARKET", 0.01)
    while not sim.replay_done:
        sim._publish_replay()
    for symbol in (Y, X):
        want = raw[raw["symbol"] == symbol]
        frames, res, seq, got, gap = client_view(sim, symbol, "trade")
        assert gap is None and seq.duplicates == 0 and res.counts.get("malformed", 0) == 0
        own = 1 if symbol == X else 0
        assert len(got) == len(want) + own
        assert got["trade_id"].tolist() == list(range(1, len(want) + own + 1))
        assert set(got["is_buyer_maker"]) <= {0, 1}
        mine = got[got["ts"].isin(want["ts"])].head(len(want))
        assert mine["price"].tolist()[:10] == want["price"].tolist()[:10]  # file order kept


def test_tick_rule_and_known_sides_kept():
    price = np.array([10.0, 10.0, 10.1, 10.1, 10.0, 10.0, 10.2])
    assert tick_rule(price).tolist() == [0, 0, 0, 0, 1, 1, 0]
    df = pd.DataFrame({"symbol": Y, "ts": np.arange(7), "trade_id": 0, "price": price,
                       "qty": 1.0, "is_buyer_maker": np.array([-1, 1, -1, -1, 0, -1, -1]),
                       "source": "t"})
    out = load_replay(df, [Y])
    assert out["is_buyer_maker"].tolist() == [0, 1, 0, 0, 0, 1, 0]
    assert out["trade_id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
