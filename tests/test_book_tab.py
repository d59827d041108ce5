"""The dashboard's Book tab without a browser: the model (live z by THE signal on the live
scanner's closes, the rule's side, target and held notional per leg, net exposure, margin), the
book read back from its ``--out`` directory, and the panel (tables, one open button per pair)."""

import asyncio
import math

import numpy as np
import orjson
import pandas as pd
import pytest
from book_result_support import BAR, CAPITAL, START, book_result

from qdash.analytics import compute_signal
from qdash.app.book_model import (
    BookModel,
    held_sides,
    latest_window,
    leg_targets,
    live_z,
    margin_now,
    no_closes,
    rule_side,
    signal_spec_of,
)
from qdash.book.files import read_book
from qdash.errors import QdashError
from qdash.scan.live import LiveScanner

pytestmark = pytest.mark.unit

BAR_MS = 300_000
END = START + 3 * pd.Timedelta(days=1) - BAR          # the fixture book's last bar
LIVE_BARS = 40                                         # closes after the book's end


def _closes(n_before: int = 300, seed: int = 11) -> dict[str, pd.Series]:
    """Closes of the fixture's symbols from ``n_before`` bars before the book's end to
    :data:`LIVE_BARS` after it; ETH and BNB cointegrated with BTC."""
    rng = np.random.default_rng(seed)
    n = n_before + LIVE_BARS
    t = pd.date_range(END - (n_before - 1) * BAR, periods=n, freq=BAR, tz="UTC")
    btc = np.cumsum(rng.normal(0, 2e-3, n))
    logs = {"BTCUSDT": btc, "ETHUSDT": 1.1 * btc + np.cumsum(rng.normal(0, 3e-4, n)) * 0.1
            + rng.normal(0, 1e-3, n), "BNBUSDT": 0.8 * btc + rng.normal(0, 1e-3, n),
            "SOLUSDT": np.cumsum(rng.normal(0, 3e-3, n))}
    base = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "BNBUSDT": 600.0, "SOLUSDT": 150.0}
    return {s: pd.Series(base[s] * np.exp(v), index=t, name=s) for s, v in logs.items()}


@pytest.fixture(scope="module")
def result():
    return book_result()


@pytest.fixture(scope="module")
def closes():
    return _closes()


def test_the_rule_enters_beyond_entry_below_stop_and_leaves_at_exit_or_stop():
    levels = (2.0, 0.0, 4.0)
    assert [rule_side(z, 0, *levels) for z in (2.5, -2.5, 1.9, -1.9, 4.0, -4.2)] == \
        [-1, 1, 0, 0, 0, 0]
    assert [rule_side(z, 1, *levels) for z in (-3.0, -0.1, 0.0, 0.5, -4.0)] == [1, 1, 0, 0, 0]
    assert [rule_side(z, -1, *levels) for z in (3.0, 0.1, 0.0, -0.5, 4.0)] == [-1, -1, 0, 0, 0]
    assert rule_side(math.nan, -1, *levels) == -1 and rule_side(math.nan, 0, *levels) == 0
    wide_exit = (2.0, 0.5, 4.0)   # long leaves at z >= -0.5, short at z <= 0.5
    assert [rule_side(z, 1, *wide_exit) for z in (-0.6, -0.4)] == [1, 0]
    assert [rule_side(z, -1, *wide_exit) for z in (0.6, 0.4)] == [-1, 0]


def test_leg_targets_split_the_pairs_gross_in_the_hedge_ratio():
    ty, tx = leg_targets(1, 1.25, 0.4, 3.0, 100_000.0)
    assert abs(ty) + abs(tx) == pytest.approx(0.4 * 3.0 * 100_000.0)
    assert ty > 0 > tx and tx / ty == pytest.approx(-1.25)
    assert leg_targets(-1, 1.25, 0.4, 3.0, 100_000.0) == (-ty, -tx)
    assert leg_targets(0, 1.25, 0.4, 3.0, 100_000.0) == (0.0, 0.0)


def test_the_signal_is_the_runs():
    spec = signal_spec_of({"timeframe": "5m", "hedge": "kalman", "window": 50})
    assert (spec.hedge, spec.beta_window, spec.z_window) == ("kalman", 50, 50)
    given = signal_spec_of({"signal": {"hedge": "huber", "beta_window": 30, "z_window": 20}})
    assert (given.hedge, given.beta_window, given.z_window) == ("huber", 30, 20)


def test_the_latest_window_and_the_open_round_trips(result):
    latest = latest_window(result.windows)
    assert list(zip(latest["y"], latest["x"])) == [("ETHUSDT", "BTCUSDT"), ("BNBUSDT", "BTCUSDT")]
    assert held_sides(result.trades) == {("BNBUSDT", "BTCUSDT"): -1}


def test_live_z_is_the_signals_z_of_the_last_closed_bar(closes):
    spec = signal_spec_of({"timeframe": "5m", "window": 60})
    z = live_z(closes["ETHUSDT"], closes["BTCUSDT"], spec, BAR_MS)
    ref = compute_signal(closes["ETHUSDT"], closes["BTCUSDT"], spec)["zscore"].iloc[-1]
    assert math.isfinite(z) and z == ref
    # causal: the z at bar k is the z of the closes cut at k
    cut = {s: c.iloc[:-7] for s, c in closes.items()}
    full = compute_signal(closes["ETHUSDT"], closes["BTCUSDT"], spec)["zscore"]
    assert live_z(cut["ETHUSDT"], cut["BTCUSDT"], spec, BAR_MS) == full.iloc[-8]
    short = {s: c.iloc[:50] for s, c in closes.items()}     # fewer bars than the warm-up
    assert math.isnan(live_z(short["ETHUSDT"], short["BTCUSDT"], spec, BAR_MS))
    assert math.isnan(live_z(no_closes("ETHUSDT"), closes["BTCUSDT"], spec, BAR_MS))


def test_the_model_reads_the_latest_pairs_against_live_closes(result, closes):
    m = BookModel(result)
    snap = m.snapshot(closes.__getitem__)
    pairs, exposure, margin = snap["pairs"], snap["exposure"], snap["margin"]
    equity = float(result.equity["equity"].iloc[-1])
    move = {s: c.iloc[-1] / c.asof(END) for s, c in closes.items()}
    for r in pairs.itertuples():
        z = live_z(closes[r.y], closes[r.x], m.signal, BAR_MS)
        assert r.z == z and r.side == rule_side(z, r.held_side, 2.0, 0.0, 4.0)
        assert (r.target_y, r.target_x) == leg_targets(r.side, r.beta, r.weight, 3.0, equity)
    bnb = pairs.set_index("y").loc["BNBUSDT"]
    assert bnb["held_side"] == -1                       # its round trip is still open
    held = result.positions.groupby("symbol")["notional"].last()
    assert bnb["held_y"] == pytest.approx(held["BNBUSDT"] * move["BNBUSDT"])
    assert bnb["held_x"] == pytest.approx(held["BTCUSDT"] * move["BTCUSDT"])
    # net target per symbol: summed over the pairs (BTC sits in both)
    e = exposure.set_index("symbol")
    assert e.loc["BTCUSDT", "target"] == pytest.approx(pairs["target_x"].sum())
    assert e.loc["ETHUSDT", "target"] == pytest.approx(pairs.set_index("y").loc["ETHUSDT",
                                                                               "target_y"])
    assert (e["held"] == held.reindex(e.index, fill_value=0.0)).all()
    np.testing.assert_allclose(e["held_live"], e["held"] * pd.Series(move)[e.index])
    # one netted order per symbol: BTC's is the sum of both pairs' x targets less what is held
    assert e.loc["BTCUSDT", "order"] == pytest.approx(
        pairs["target_x"].sum() - held["BTCUSDT"] * move["BTCUSDT"])
    np.testing.assert_allclose(e["held_live"] + e["order"], e["target"])
    live_change = sum(held[s] * (move[s] - 1) for s in held.index)
    assert margin["equity_live"] == pytest.approx(equity + live_change)
    assert margin["margin_ratio"] == result.equity["margin_ratio"].iloc[-1]


def test_margin_scales_the_maintenance_with_gross_over_the_live_balance():
    row = pd.Series({"equity": 100_000.0, "gross_exposure": 50_000.0, "margin_ratio": 0.002})
    held = pd.Series({"A": 30_000.0, "B": -20_000.0})
    live = pd.Series({"A": 33_000.0, "B": -22_000.0})       # A +10 %, B +10 %
    m = margin_now(row, held, live)
    assert m["equity_live"] == 101_000.0 and m["gross_live"] == 55_000.0
    assert m["margin_ratio_live"] == pytest.approx(0.002 * 100_000 * 1.1 / 101_000)


def test_without_live_closes_nothing_is_marked_and_no_z_exists(result):
    snap = BookModel(result).snapshot(no_closes)
    assert snap["pairs"]["z"].isna().all()
    assert (snap["pairs"]["side"] == snap["pairs"]["held_side"]).all()
    assert (snap["exposure"]["held_live"] == snap["exposure"]["held"]).all()
    assert snap["margin"]["margin_ratio_live"] == pytest.approx(snap["margin"]["margin_ratio"])


def test_a_book_reads_back_from_its_out_directory(result, tmp_path):
    result.to_csv(tmp_path)
    bare = read_book(tmp_path)                      # CSVs only: no spec yet
    assert bare.spec == {} and bare.fingerprint == ""
    result.report(tmp_path / "report.html")
    back = read_book(tmp_path)
    for name in ("windows", "trades", "equity", "positions", "metrics"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name),
                                      check_dtype=False)
    assert back.trades["exit_time"].isna().sum() == 1
    assert (back.spec, back.fingerprint, back.versions) == (result.spec, result.fingerprint,
                                                            result.versions)
    assert str(back.windows["window_start"].dt.tz) == "UTC"


def test_a_bad_out_directory_is_named(tmp_path):
    with pytest.raises(QdashError, match="not a directory"):
        read_book(tmp_path / "nope")
    book_result().to_csv(tmp_path)
    (tmp_path / "trades.csv").unlink()
    with pytest.raises(QdashError, match="trades.csv is missing"):
        read_book(tmp_path)
    book_result().to_csv(tmp_path)
    (tmp_path / "equity.csv").write_text("open_time,equity\n2026-11-01T00:00:00.000Z,1\n")
    with pytest.raises(QdashError, match="equity.csv has columns"):
        read_book(tmp_path)


# --- the live scanner's closes --------------------------------------------------------------
def _kline(symbol: str, t_ms: int, close: float) -> bytes:
    k = {"t": t_ms, "T": t_ms + BAR_MS - 1, "s": symbol, "i": "5m", "c": f"{close}",
         "q": "1000.0", "x": True}
    return orjson.dumps({"stream": f"{symbol.lower()}@kline_5m",
                         "data": {"e": "kline", "s": symbol, "k": k}})


def _scanner(closes: dict[str, pd.Series], history_bars: int) -> LiveScanner:
    """A LiveScanner with ``history_bars`` of each series as its history (put in place by hand,
    no socket), the rest fed as closed kline frames of its streams."""
    sc = LiveScanner(sorted(closes), store=None, rest_url="http://127.0.0.1:9", ws_url="ws://h",
                     timeframe="5m", lookback=400 * BAR_MS)
    sc.symbols = sorted(closes)
    first = next(iter(closes.values())).index
    sc.seam_ms = int(first[history_bars].value // 1_000_000)
    sc.loop = asyncio.new_event_loop()
    for s, c in closes.items():
        t = c.index[:history_bars].as_unit("ms").asi8
        sc._hist[s] = (t, c.to_numpy()[:history_bars], np.ones(history_bars))
        sc._live[s] = {}
    for i in range(history_bars, len(first)):
        for s, c in closes.items():
            sc._on_message(_kline(s, int(c.index[i].value // 1_000_000), float(c.iloc[i])))
    sc.loop.close()
    return sc


def test_the_scanners_closes_are_its_history_then_its_stream(closes):
    sc = _scanner(closes, history_bars=250)
    for s, c in closes.items():
        got = sc.closes(s)
        pd.testing.assert_series_equal(got, c, check_freq=False, check_index_type=False)
    assert sc.closes("XRPUSDT").empty and sc.closed_frames == 4 * (len(closes["BTCUSDT"]) - 250)


# --- the panel -----------------------------------------------------------------------------
@pytest.fixture
def loop():
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _panel(loop, db_path, book, opened):
    from qdash.app.book_panel import BookPanel
    from qdash.app.dispatch import Dispatcher
    from qdash.app.monitor import PairMonitor

    async def open_pair(y, x):
        opened.append((y, x))

    mon = PairMonitor(source="store", symbols=["BTCUSDT", "ETHUSDT"], db=str(db_path))
    errors = []
    return BookPanel(mon, Dispatcher(loop, errors.append), open_pair=open_pair, book=book), errors


def test_the_panel_shows_the_latest_pairs_live_and_opens_each_in_the_pair_monitor(
        result, closes, loop, db_path, tmp_path):
    result.to_csv(tmp_path / "out")
    result.report(tmp_path / "out" / "report.html")
    opened = []
    panel, errors = _panel(loop, db_path, None, opened)
    panel.path.value = str(tmp_path / "out")
    panel.load_button.click()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert panel.model is not None and "2 pairs in the latest window" in panel.status.value
    assert "ETHUSDT/BTCUSDT" in panel.pairs.value and "BNBUSDT/BTCUSDT" in panel.pairs.value
    assert "SOLUSDT/ETHUSDT" not in panel.pairs.value      # not in the latest window
    assert "margin ratio" in panel.summary.value and "BNBUSDT" in panel.exposure.value
    panel.scanner = _scanner(closes, history_bars=250)     # its kline streams' closes
    snap = panel.render()
    z = live_z(closes["ETHUSDT"], closes["BTCUSDT"], panel.model.signal, BAR_MS)
    assert snap["pairs"]["z"].iloc[0] == z and f"{z:.3g}" in panel.pairs.value
    assert [b.description for b in panel.buttons.children] == ["open ETHUSDT/BTCUSDT",
                                                               "open BNBUSDT/BTCUSDT"]
    panel.buttons.children[1].click()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert opened == [("BNBUSDT", "BTCUSDT")] and errors == []
    panel.scanner = None
    loop.run_until_complete(panel.monitor.close())


def test_the_panel_says_what_is_wrong_with_a_book_and_live_on_stored_data(loop, db_path,
                                                                          tmp_path, result):
    panel, errors = _panel(loop, db_path, None, [])
    panel.path.value = str(tmp_path / "missing")
    panel.load_button.click()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert panel.model is None and "not a directory" in panel.status.value
    panel.load(result)
    panel.run.value = True                       # start live on a store source: refused, said
    loop.run_until_complete(asyncio.sleep(0.01))
    assert panel.scanner is None and panel.run.value is False
    assert errors and "kline streams" in str(errors[0])
    loop.run_until_complete(panel.monitor.close())


def test_the_fixture_is_consistent(result):
    assert result.windows["pnl"].sum() == pytest.approx(result.equity["equity"].iloc[-1] - CAPITAL)


@pytest.mark.integration  # builds the whole widget tree (Bokeh, ipywidgets): seconds
def test_the_dashboards_book_tab_opens_a_pair_in_the_pair_monitor(result, db_path):
    from qdash.app import Dashboard

    async def scenario():
        d = Dashboard(source="store", symbols=["BTCUSDT", "ETHUSDT"], db=str(db_path),
                      book=result)
        tabs = d.widget.children[-1]
        titles = [tabs.get_title(i) for i in range(len(tabs.children))]
        assert "book_ui" not in d.__dict__                  # built when first opened
        tabs.selected_index = titles.index("book")
        await asyncio.sleep(0.05)
        panel = d.book_ui
        assert tabs.children[tabs.selected_index].children[0] is not None
        assert "BNBUSDT/BTCUSDT" in panel.pairs.value
        panel.buttons.children[1].click()                   # "open BNBUSDT/BTCUSDT"
        await asyncio.sleep(0.3)
        shown = (d.y, d.x, list(d.symbols))
        await d.close()
        return titles, shown

    titles, (y, x, symbols) = asyncio.run(scenario())
    assert titles[-1] == "book"
    assert (y, x) == ("BNBUSDT", "BTCUSDT") and {"BNBUSDT", "BTCUSDT"} <= set(symbols)


@pytest.mark.integration  # runs the engine: seconds
def test_a_real_runs_out_directory_reads_back_into_the_tab(tmp_path):
    from book_support import planted

    from qdash.book import book

    table, _ = planted(days=45, seed=2)
    result = book(table, timeframe="1h", train="30d", trade="7d", max_pairs=3, window=48,
                  scheduler=None, close_at_end=False)
    result.to_csv(tmp_path)
    result.report(tmp_path / "report.html")
    back = read_book(tmp_path)
    assert (back.spec, back.fingerprint, back.versions) == (result.spec, result.fingerprint,
                                                            result.versions)
    for name in ("windows", "trades", "equity", "positions"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(result, name),
                                      check_dtype=False)
    m = BookModel(tmp_path)
    assert m.signal.beta_window == m.signal.z_window == 48
    assert m.timeframe == "1h" and m.leverage == result.spec["leverage"]
    closes = {s: pd.Series(g["close"].to_numpy(), index=pd.to_datetime(g["open_time"], unit="ms",
                                                                       utc=True))
              for s, g in table.groupby("symbol")}
    snap = m.snapshot(closes.__getitem__)
    latest = result.windows[result.windows["window_start"] == result.windows["window_start"].max()]
    assert list(snap["pairs"]["y"]) == list(latest["y"]) and snap["pairs"]["z"].notna().all()
    # the book's own z at its last bar: the tab's live z on the same closes
    for r in snap["pairs"].itertuples():
        assert r.z == live_z(closes[r.y], closes[r.x], m.signal, 3_600_000)
    held = result.positions.groupby("symbol")["notional"].last()
    e = snap["exposure"].set_index("symbol")
    assert (e["held"] == held.reindex(e.index, fill_value=0.0)).all()
    assert (e["price_move"] == 1.0).all()        # the closes end at the book's last bar


def test_a_book_read_back_without_baselines_writes_its_report_again(result, tmp_path):
    from qdash.book.report import read_provenance

    result.to_csv(tmp_path)
    result.report(tmp_path / "report.html")
    again = read_book(tmp_path).report(tmp_path / "again.html").read_text()
    assert read_provenance(again) == read_provenance((tmp_path / "report.html").read_text())
