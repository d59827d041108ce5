"""Simulated trades never mix with an exchange's: their own store by default, and a store that
says whose trades it holds and refuses the other kind."""

import pandas as pd
import pytest

from qdash.errors import StoreError
from qdash.model import source_venue, tick_frame, venue_source
from qdash.store import Store, default_db_path, resolve_db_path


def _ticks(source, ids=(1, 2, 3)):
    return tick_frame("BTCUSDT", [1_000 * i for i in ids], list(ids), 60_000.0, 0.1, 0, source)


def test_a_store_takes_the_venue_of_its_first_exchange_or_simulator_ticks(db_path):
    store = Store(db_path)
    assert store.venue is None
    store.write_ticks(_ticks("ingest"))            # pushed / file ticks: no venue of their own
    assert store.venue is None
    store.write_ticks(_ticks("binance", (4, 5)))
    assert store.venue == "exchange"
    before = store.tick_count()
    with pytest.raises(StoreError, match="holds exchange data; these are simulated trades"):
        store.write_ticks(_ticks("sim", (6, 7)))
    assert store.tick_count() == before             # nothing of the rejected batch stored
    store.write_ticks(_ticks("binance-agg", (8,)))
    assert store.tick_count() == before + 1


def test_a_simulated_store_refuses_exchange_trades_and_mixed_batches(db_path):
    store = Store(db_path)
    store.write_ticks(_ticks("sim"))
    assert store.venue == "simulated"
    with pytest.raises(StoreError, match="holds simulated data"):
        store.write_ticks(_ticks("binance", (9,)))
    mixed = _ticks("sim", (10, 11))
    mixed.loc[1, "source"] = "binance"
    with pytest.raises(StoreError, match="mixes simulated and exchange"):
        store.write_ticks(mixed)
    assert store.tick_count() == 3


def test_the_simulator_has_its_own_default_store(monkeypatch, tmp_path):
    monkeypatch.delenv("QDASH_DB", raising=False)
    monkeypatch.delenv("QDASH_SIM_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    real, sim = default_db_path(), default_db_path(simulated=True)
    assert real != sim and sim.endswith("qdash-sim.db")
    assert resolve_db_path(None, simulated=True) == sim
    assert resolve_db_path("x.db", simulated=True).endswith("x.db")   # a named store wins
    monkeypatch.setenv("QDASH_SIM_DB", str(tmp_path / "s.db"))
    assert default_db_path(simulated=True) == str(tmp_path / "s.db")



def test_candles_and_funding_carry_their_venue_and_a_refused_write_stores_nothing(db_path):
    store = Store(db_path)
    bars = pd.DataFrame({"open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
                         "volume": [1.0], "trades": [1], "buy_volume": [0.5],
                         "quote_volume": [1.0], "vwap": [1.0]},
                        index=pd.to_datetime([0], unit="ms", utc=True))
    funding = pd.DataFrame({"funding_time": [0], "rate": [1e-4], "mark_price": [1.0]})
    store.write_funding("BTCUSDT", funding, venue="simulated")
    assert store.venue == "simulated"
    with pytest.raises(StoreError, match="holds simulated data; these are exchange candles"):
        store.write_bars(bars, "BTCUSDT", "1m", venue="exchange")
    assert store.bars("BTCUSDT", "1m").empty
    store.write_bars(bars, "BTCUSDT", "1m")                 # candles of no venue: taken
    assert len(store.bars("BTCUSDT", "1m")) == 1
    # a source names its venue with or without a suffix: REST backfills, aggregate trades
    with pytest.raises(StoreError, match="these are exchange trades"):
        store.write_ticks(_ticks("binance-agg:rest-agg"))
    with pytest.raises(StoreError, match="mixes simulated and exchange"):
        store.write_ticks(_ticks("sim:rest"), venue="exchange")
    store.write_ticks(_ticks("sim:rest-agg"))
    assert store.tick_count() == 3


def test_tick_sources_name_their_venue():
    assert [source_venue(s) for s in ("binance", "binance-agg", "binance:rest-agg", "sim",
                                      "sim-agg", "sim:rest", "ingest", "file", "simx")] == \
        ["exchange"] * 3 + ["simulated"] * 3 + [None] * 3
    assert venue_source("binance:rest-agg", "simulated") == "sim:rest-agg"
    assert venue_source("binance-agg", "simulated") == "sim-agg"
    assert venue_source("binance:bulk-agg", "exchange") == "binance:bulk-agg"
    assert venue_source("ingest", "simulated") == "ingest"
