"""The Book tab live on the simulated exchange: its z-scores come from the live scanner's kline
streams of the book's symbols (history first, then closed bars), and a pair opens in the pair
monitor."""

import asyncio
import math

import pytest
from book_result_support import book_result, renamed

from qdash.app.book_model import live_z
from qdash.sim.exchange import SimExchange

pytestmark = pytest.mark.integration


async def _wait(cond, timeout: float, what: str):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_the_book_tab_reads_live_z_from_the_kline_streams(tmp_path):
    from qdash.app import Dashboard

    async def main():
        async with SimExchange(["BTCUSDT", "ETHUSDT"], rate=100, seed=0, universe=12, port=0,
                               weight_limit=100_000) as sim:
            clusters = {}
            for s, inst in sim.instruments.items():
                if inst.sym.cluster is not None:
                    clusters.setdefault(inst.sym.cluster, []).append(s)
            members = max(clusters.values(), key=len)
            others = [s for s in sim.instruments if s not in members]
            names = {"BTCUSDT": members[0], "ETHUSDT": members[1],
                     "BNBUSDT": members[2] if len(members) > 2 else others[0],
                     "SOLUSDT": others[-1]}
            book = renamed(book_result(), names, timeframe="1m", window=40)
            d = Dashboard(source="sim", symbols=["BTCUSDT", "ETHUSDT"], timeframe="1m",
                          window=30, db=str(tmp_path / "d.db"), sim_ws_url=sim.ws_url,
                          sim_rest_url=sim.rest_url, book=book)
            panel = d.book_ui
            await panel.start()
            await _wait(lambda: panel.scanner.scans >= 1 or panel.scanner.error, 120,
                        "the history's first scan")
            assert panel.scanner.error is None, panel.status.value
            first = panel.render()["pairs"]
            await _wait(lambda: panel.scanner.closed_frames >= len(panel.scanner.symbols)
                        and panel.scanner.scans >= 2, 150, "a bar closed on the streams")
            snap = panel.render()
            closes = {s: panel.scanner.closes(s) for s in panel.model.symbols()}
            expect = [live_z(closes[y], closes[x], panel.model.signal, 60_000)
                      for y, x in zip(snap["pairs"]["y"], snap["pairs"]["x"])]
            symbols = sorted(panel.scanner.symbols)
            html = panel.pairs.value
            panel.buttons.children[0].click()
            await _wait(lambda: d.session is not None and d.session.ready.is_set(), 120,
                        "the pair monitor on the opened pair")
            shown = (d.y, d.x)
            await d.close()
            assert panel.scanner is None
            return names, first, snap, expect, symbols, html, shown

    names, first, snap, expect, symbols, html, shown = asyncio.run(main())
    # the latest window's legs (SOL left the book before it)
    assert symbols == sorted({names[s] for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT")})
    assert all(math.isfinite(z) for z in first["z"])          # from the history alone
    assert list(snap["pairs"]["z"]) == expect and all(math.isfinite(z) for z in expect)
    assert f"{names['ETHUSDT']}/{names['BTCUSDT']}" in html
    assert shown == (names["ETHUSDT"], names["BTCUSDT"])
