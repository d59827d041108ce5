"""``qdash.fetch`` / ``qdash fetch`` against the simulated exchange replaying real Binance trades
(2024-07-18 23:57 → 2024-07-19 00:05 UTC): klines equal to the official ones, aggTrades equal to
the recorded trades, idempotent re-runs that ask only for what is missing, resume after an
interruption, and errors before any data request."""

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest
from conftest import JULY, JULY_TRADES

from qdash.bars import resample
from qdash.binance.pages import best_kline_limit
from qdash.binance.rest import RestClient
from qdash.binance.schema import kline_frame
from qdash.cli import main as cli_main
from qdash.errors import StoreError
from qdash.history import FetchError, fetch
from qdash.io import read_ticks
from qdash.model import tick_frame
from qdash.sim.exchange import SimExchange
from qdash.store import Store

START, END = "2024-07-18 23:57", "2024-07-19 00:06"


class ReplaySim:
    """The simulator replaying the July trades of BTCUSDT and ETHUSDT at full speed, served from
    a thread for the duration of a test module."""

    def __init__(self, **kw):
        self.kw = kw
        self.ready = threading.Event()
        self.done = None

    def __enter__(self):
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self.thread.start()
        assert self.ready.wait(60)
        return self

    async def _serve(self):
        self.sim = SimExchange(replay=str(JULY / f"{JULY_TRADES}.csv.gz"), speed=0, port=0,
                               **self.kw)
        self.done = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        await self.sim.start()
        while not self.sim.replay_done:
            await asyncio.sleep(0.05)
        self.ready.set()
        await self.done.wait()
        await self.sim.stop()

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(10)


@pytest.fixture(scope="module")
def sim():
    with ReplaySim() as s:
        yield s.sim


@pytest.fixture(scope="module")
def july():
    return read_ticks(JULY / f"{JULY_TRADES}.csv.gz")


pytestmark = pytest.mark.integration


def test_page_size_spends_the_least_weight():
    assert best_kline_limit(50) == 99  # one request of weight 1
    assert best_kline_limit(8640) == 499  # 18 × 2 = 36 < 9 × 5 = 45 < 6 × 10 = 60
    assert best_kline_limit(100) == 499  # 1 × 2 = 2 × 1, in fewer requests
    assert best_kline_limit(1500) == 499  # 4 × 2 = 8 < 10


def test_kline_rows_become_candles_field_by_field():
    row = [1721347020000, "3424.47", "3425.39", "3424.46", "3425.16", "388.830", 1721347079999,
           "1331766.41856", 700, "222.548", "762204.46280", "0"]
    bars = kline_frame([row])
    assert bars.index.tolist() == [1721347020000]
    b = bars.iloc[0]
    assert (b.open, b.high, b.low, b.close, b.volume, b.trades, b.buy_volume, b.quote_volume) == \
        (3424.47, 3425.39, 3424.46, 3425.16, 388.83, 700, 222.548, 1331766.41856)
    assert b.vwap == 1331766.41856 / 388.83
    mark = kline_frame([row], mark=True).iloc[0]
    assert (mark.close, mark.volume, mark.trades) == (3425.16, 0.0, 0) and np.isnan(mark.vwap)


def test_klines_equal_the_official_ones_and_rerun_fetches_nothing(sim, tmp_path):
    store = Store(tmp_path / "q.db")
    client = RestClient(sim.rest_url)
    rep = fetch("ETHUSDT,BTCUSDT", "klines", "1m", START, END, store, client=client,
                progress=False)
    assert rep.stored == 2 * 9
    official = pd.read_csv(JULY / "official_klines_1m_ETHUSDT.csv")
    ours = store.bars("ETHUSDT", "1m")
    assert (ours.index.as_unit("ms").asi8 == official["open_time"].to_numpy()).all()
    inner = slice(1, -1)  # the first and last minutes are partial in the recording
    for mine, theirs in [("open", "open"), ("high", "high"), ("low", "low"), ("close", "close"),
                         ("volume", "volume"), ("trades", "count"),
                         ("buy_volume", "taker_buy_volume")]:
        assert (ours[mine].to_numpy()[inner] == official[theirs].to_numpy()[inner]).all(), mine
    np.testing.assert_allclose(ours["quote_volume"].to_numpy()[inner],
                               official["quote_volume"].to_numpy()[inner], rtol=1e-12)
    # bar for bar what the API returned
    rows = client.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m",
                                          "startTime": rep.start_ms, "limit": 99})
    pd.testing.assert_frame_equal(store.bars("BTCUSDT", "1m").reset_index(drop=True),
                                  kline_frame(rows).reset_index(drop=True))
    before = client.stats()["requests"]
    again = fetch("ETHUSDT,BTCUSDT", "klines", "1m", START, END, store, client=client,
                  progress=False)
    assert again.stored == 0 and again.rows == 0
    assert client.stats()["requests"] == before  # no request at all (exchangeInfo is cached)


def test_aggtrades_give_the_recorded_trades_exactly(sim, july, tmp_path):
    store = Store(tmp_path / "q.db")
    rep = fetch(["ETHUSDT"], "aggTrades", None, START, END, store, rest_url=sim.rest_url,
                progress=False)
    want = july[july["symbol"] == "ETHUSDT"]
    got = store.ticks("ETHUSDT")
    assert rep.stored == len(want) == len(got)
    for col in ("ts", "trade_id", "price", "qty", "is_buyer_maker"):
        assert (got[col].to_numpy() == want[col].to_numpy()).all(), col
    assert (got["source"] == "sim:rest-agg").all()   # served by the simulator
    # the trade counts of candles built from them are Binance's
    assert resample(got, "1m")["trades"].sum() == len(want)
    assert store.coverage.missing("ETHUSDT", "aggTrades", "", rep.start_ms, rep.end_ms) == []


def test_interrupted_fetch_resumes_where_it_stopped(sim, july, tmp_path):
    store = Store(tmp_path / "q.db")

    class Interrupting(RestClient):
        calls = 0

        def get(self, path, params=None, **kw):
            if path == "/fapi/v1/aggTrades":
                self.calls += 1
                if self.calls == 3:
                    raise KeyboardInterrupt
            return super().get(path, params, **kw)

    client = Interrupting(sim.rest_url)
    # pages of 1,000 aggregates: ETHUSDT has 13,655 trades in the window
    with pytest.raises(KeyboardInterrupt):
        fetch("ETHUSDT", "aggTrades", None, START, END, store, client=client, workers=1,
              progress=False)
    kept = store.tick_count("ETHUSDT")
    assert kept == 2000  # two pages committed, nothing half-written
    gaps = store.coverage.missing("ETHUSDT", "aggTrades", "", *[
        int(pd.Timestamp(t, tz="UTC").value // 10**6) for t in (START, END)])
    assert len(gaps) == 1 and gaps[0][0] > int(pd.Timestamp(START, tz="UTC").value // 10**6)
    plain = RestClient(sim.rest_url)
    rep = fetch("ETHUSDT", "aggTrades", None, START, END, store, client=plain, progress=False)
    assert store.tick_count("ETHUSDT") == (july["symbol"] == "ETHUSDT").sum()
    assert rep.stored == store.tick_count("ETHUSDT") - kept
    # the resumed run started at the last committed page, not at the beginning
    assert plain.stats()["requests"] < 1 + 14


def test_errors_come_before_any_data_request(sim, tmp_path):
    store = Store(tmp_path / "q.db")
    client = RestClient(sim.rest_url)
    with pytest.raises(FetchError, match="unknown kind"):
        fetch("BTCUSDT", "trades", "1m", START, END, store, client=client)
    with pytest.raises(FetchError, match="bad interval '7m'"):
        fetch("BTCUSDT", "klines", "7m", START, END, store, client=client)
    with pytest.raises(FetchError, match="not before end"):
        fetch("BTCUSDT", "klines", "1m", END, START, store, client=client)
    assert client.stats().get("requests", 0) == 0
    with pytest.raises(FetchError, match="unknown symbol.*NOPEUSDT"):
        fetch("BTCUSDT,NOPEUSDT", "klines", "1m", START, END, store, client=client)
    assert client.stats()["requests"] == 1  # exchangeInfo, no data request
    assert store.stats().empty


def test_cli_fetch_all_symbols(sim, tmp_path, capsys):
    db = tmp_path / "q.db"
    code = cli_main(["fetch", "all", "--kind", "klines", "--timeframe", "5m", "--start", START,
                     "--end", END, "--db", str(db), "--rest-url", sim.rest_url,
                     "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "BTCUSDT" in out and "ETHUSDT" in out
    store = Store(db)
    # the range widens to whole 5m bars: 23:55, 00:00, 00:05
    assert len(store.bars("BTCUSDT", "5m")) == 3 and len(store.bars("ETHUSDT", "5m")) == 3
    code = cli_main(["fetch", "BTCUSDT", "--timeframe", "2m", "--start", START, "--db", str(db),
                     "--rest-url", sim.rest_url])
    assert code == 2 and "bad interval '2m'" in capsys.readouterr().err


def test_the_simulator_says_what_it_serves_in_its_exchange_info(sim):
    from qdash.binance.schema import venue_of

    client = RestClient(sim.rest_url)
    assert client.venue() == "simulated"
    assert venue_of({"symbols": []}) == "exchange"     # Binance's exchangeInfo has no marker


def _store_of_exchange_data(path):
    store = Store(path)
    store.write_ticks(tick_frame("BTCUSDT", [1_000, 2_000], [1, 2], 60_000.0, 0.1, 0, "binance"))
    assert store.venue == "exchange"
    return store


def _contents(store):
    conn = store.connection()
    return [conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("tick_data", "ohlcv_data", "funding", "fetch_coverage")]


@pytest.mark.parametrize("kind", ["klines", "funding", "aggTrades", "mark"])
def test_fetching_from_the_simulator_into_a_store_of_exchange_data_writes_nothing(
        sim, tmp_path, kind):
    store = _store_of_exchange_data(tmp_path / "real.db")
    before = _contents(store)
    with pytest.raises(StoreError, match="holds exchange data; these are simulated"):
        fetch(["BTCUSDT"], kind, "1m", START, END, store, rest_url=sim.rest_url, progress=False)
    assert _contents(store) == before and store.venue == "exchange"


def test_qdash_fetch_from_the_simulator_refuses_a_store_of_exchange_data(sim, tmp_path, capsys):
    db = tmp_path / "real.db"
    before = _contents(_store_of_exchange_data(db))
    code = cli_main(["fetch", "BTCUSDT", "--kind", "funding", "--start", START, "--end", END,
                     "--db", str(db), "--rest-url", sim.rest_url, "--no-progress"])
    assert code == 2 and "holds exchange data" in capsys.readouterr().err
    assert _contents(Store(db)) == before


def test_history_fetched_from_the_simulator_names_the_store_simulated(sim, tmp_path, capsys):
    store = Store(tmp_path / "sim.db")
    fetch(["ETHUSDT"], "aggTrades", None, START, END, store, rest_url=sim.rest_url,
          progress=False)
    assert store.venue == "simulated"
    assert cli_main(["info", "--db", str(store.path)]) == 0
    assert "(simulated data" in capsys.readouterr().out.splitlines()[0]
    assert (store.ticks("ETHUSDT")["source"] == "sim:rest-agg").all()
    with pytest.raises(StoreError, match="holds simulated data; these are exchange"):
        store.write_ticks(tick_frame("ETHUSDT", [1_000], [1], 3_000.0, 0.1, 0, "binance"))
    with pytest.raises(StoreError, match="holds simulated data"):
        store.write_bars(resample(store.ticks("ETHUSDT"), "1m"), "ETHUSDT", "1m", venue="exchange")
