"""An aggTrades dump loads as one tick per underlying trade: candles built from it count trades as
Binance's klines do (``l − f + 1`` per aggregate), checked against the official 1m klines."""

import zipfile

import numpy as np
import pandas as pd
from conftest import JULY, JULY_TRADES

from qdash.bars import stored_candles
from qdash.io import load
from qdash.store import Store

AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time," \
             "is_buyer_maker"


def eth_aggtrades(trades: pd.DataFrame) -> pd.DataFrame:
    """Aggregate consecutive trades of one millisecond, price and side, as Binance does for one
    taker order."""
    t = trades.sort_values("trade_id")
    key = t[["trade_time_ms", "price", "is_buyer_maker"]]
    new = (key != key.shift()).any(axis=1).to_numpy()
    group = np.cumsum(new)
    g = t.groupby(group, sort=True)
    return pd.DataFrame({
        "agg_trade_id": np.arange(len(g)) + 2_000_000_000,
        "price": g["price"].first(), "quantity": g["qty"].sum().round(3),
        "first_trade_id": g["trade_id"].min(), "last_trade_id": g["trade_id"].max(),
        "transact_time": g["trade_time_ms"].first(),
        "is_buyer_maker": g["is_buyer_maker"].first().map({True: "true", False: "false"})})


def test_aggtrades_dump_candles_match_official_klines(tmp_path):
    trades = pd.read_csv(JULY / f"{JULY_TRADES}.csv.gz")
    trades = trades[trades["symbol"] == "ETHUSDT"]
    aggs = eth_aggtrades(trades)
    assert len(aggs) < 0.8 * len(trades)  # the dump really aggregates
    name = "ETHUSDT-aggTrades-2024-07-18"
    path = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}.csv", AGG_HEADER + "\n" + aggs.to_csv(header=False, index=False))
    store = Store(tmp_path / "q.db")
    load(path, store=store, progress=False)
    assert store.tick_count("ETHUSDT") == len(trades)
    ours = stored_candles(store, "ETHUSDT", "1m")
    official = pd.read_csv(JULY / "official_klines_1m_ETHUSDT.csv")
    official.index = pd.to_datetime(official["open_time"], unit="ms", utc=True)
    complete = official.loc["2024-07-18 23:58":"2024-07-19 00:04"]
    assert len(complete) == 7
    ours = ours.loc[complete.index]
    assert (ours["trades"].to_numpy() == complete["count"].to_numpy()).all()
    for mine, theirs in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close")]:
        assert (ours[mine].to_numpy() == complete[theirs].to_numpy()).all(), mine
    for mine, theirs in [("volume", "volume"), ("buy_volume", "taker_buy_volume"),
                         ("quote_volume", "quote_volume")]:
        np.testing.assert_allclose(ours[mine], complete[theirs], rtol=1e-9, err_msg=mine)
