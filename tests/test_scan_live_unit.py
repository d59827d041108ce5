"""LiveScanner's bar logic without sockets: closed klines fed as Binance frames trigger a rescan
once every symbol closed the bar; open klines and other intervals do not; bars closing while a
scan runs collapse into one scan through the latest; a scan's failure is reported and the next
bar scans again. History is a planted universe (tests/scan_support.py) put in place by hand."""

import asyncio

import numpy as np
import orjson
import pytest
from scan_support import BAR, T0, planted_universe

from qdash.scan.live import LiveScanner

N = 600


def _scanner(table) -> LiveScanner:
    sc = LiveScanner(["X", "Y"], store=None, rest_url="http://127.0.0.1:9", ws_url="ws://h",
                     timeframe="5m", lookback=N * BAR, grace_s=30.0)
    sc.symbols = sorted(table["symbol"].unique())
    sc.seam_ms = T0 + N * BAR
    for s in sc.symbols:
        part = table[table["symbol"] == s]
        sc._hist[s] = (part["open_time"].to_numpy(), part["close"].to_numpy(),
                       part["quote_volume"].to_numpy())
        sc._live[s] = {}
    return sc


def _frame(symbol: str, t: int, close: float, closed: bool = True, interval: str = "5m"):
    k = {"t": t, "T": t + BAR - 1, "s": symbol, "i": interval, "c": f"{close}", "q": "1000.0",
         "x": closed}
    return orjson.dumps({"stream": f"{symbol.lower()}@kline_{interval}",
                         "data": {"e": "kline", "s": symbol, "k": k}})


def _close_all(sc, t, table, step=1.0):
    last = table.groupby("symbol")["close"].last()
    for s in sc.symbols:
        sc._on_message(_frame(s, t, float(last[s]) * step))


async def _wait(cond, what):
    for _ in range(400):
        if cond():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_bar_closed_by_every_symbol_rescans_and_bars_collapse_while_scanning():
    table, truth = planted_universe(4, n_walks=4, n_pairs=2, n=N)

    async def main():
        sc = _scanner(table)
        sc.loop, sc.running = asyncio.get_running_loop(), True
        seen = []
        sc.callbacks.append(lambda frame: seen.append(frame.attrs["end"]))
        t = sc.seam_ms
        sym = sc.symbols[0]
        sc._on_message(_frame(sym, t, 1.0, closed=False))      # forming: ignored
        sc._on_message(_frame(sym, t, 1.0, interval="1m"))     # another interval: ignored
        assert sc.closed_frames == 0
        _close_all(sc, t, table)
        assert sc.closed_frames == len(sc.symbols)
        await _wait(lambda: sc._want_ms is None, "the first scan to start")
        _close_all(sc, t + BAR, table)        # closes while the first scan runs
        _close_all(sc, t + 2 * BAR, table)
        await _wait(lambda: sc.last_bar_ms == t + 2 * BAR, "the scans")
        sc.running = False
        return sc, seen

    sc, seen = asyncio.run(main())
    t = sc.seam_ms
    assert sc.scans == 2 and sc.error is None      # one for bar t, one for the two after it
    assert [np.datetime64(e[:19]) for e in seen] == [
        np.datetime64(int(t), "ms"), np.datetime64(int(t + 2 * BAR), "ms")]
    ranked = sc.result
    top = {tuple(r) for r in ranked.loc[ranked["pass"], ["y", "x"]].to_numpy()}
    assert {(y, x) for y, x, _ in truth} <= top | {(x, y) for y, x in top}
    assert len(ranked) == len(sc.symbols) * (len(sc.symbols) - 1)
    assert (ranked["n"] == N).all()                # the window keeps its length as bars arrive
    for s in sc.symbols:   # bars that left the window are forgotten
        assert sc._hist[s][0][0] == T0 + 3 * BAR and len(sc._hist[s][0]) + 3 == N


@pytest.mark.integration   # REST to a closed loopback port (retried for a few seconds)
def test_a_failed_scan_is_reported_and_the_next_bar_scans_again():
    table, _ = planted_universe(5, n_walks=2, n_pairs=1, n=N)

    async def main():
        sc = _scanner(table)
        sc.loop, sc.running = asyncio.get_running_loop(), True
        statuses = []
        sc.on_status = lambda text, level: statuses.append((level, text))
        t = sc.seam_ms
        # bar t + BAR closes with bar t missing for every symbol: REST (nothing listens) fails
        _close_all(sc, t + BAR, table)
        await _wait(lambda: sc.error is not None, "the failure")
        assert sc.scans == 0 and statuses[-1][0] == "error"
        assert "failed" in statuses[-1][1]
        for s in sc.symbols:     # the hole is filled (as if REST had answered)
            sc._live[s][t] = sc._live[s][t + BAR]
        _close_all(sc, t + 2 * BAR, table)
        await _wait(lambda: sc.scans == 1, "the next scan")
        sc.running = False
        return sc

    sc = asyncio.run(main())
    assert sc.error is None and sc.last_bar_ms == sc.seam_ms + 2 * BAR


def test_a_lookback_under_100_bars_is_refused():
    from qdash.errors import QdashError

    with pytest.raises(QdashError, match="fewer than 100"):
        LiveScanner("all", store=None, rest_url="", ws_url="", timeframe="1h", lookback="3d")
