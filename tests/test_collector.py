"""The browser collector page in headless Chromium against the simulated exchange: it forwards
MARKET trades that land in the store (NA / INSURANCE_FUND never do), its NDJSON download loads
with ``qdash.io.load``, it works opened as a standalone file, and it makes no external request."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest
from test_server_support import ServerThread, SimThread

from qdash.server.handlers import COLLECTOR_HTML
from qdash.server.service import ServerConfig
from qdash.store import Store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

from playwright.sync_api import sync_playwright  # noqa: E402

pytestmark = pytest.mark.browser

assert Path(CHROMIUM).exists(), (
    "Chromium is needed for the browser tests: the README's test command installs it "
    "(apt-get install -y chromium)")


async def _frame(sim):
    return sim.ledger.frame()


@pytest.fixture(scope="module")
def sim():
    s = SimThread(["BTCUSDT", "ETHUSDT"], rate=400.0, seed=3,   # NA and insurance trades common
                  market_kwargs={"na_prob": 0.05, "insurance_prob": 0.02})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _stats(page) -> dict:
    return page.evaluate("() => ({...window.collector.stats, "
                         "filteredBy: window.collector.filteredBy})")


def _check_against_ledger(store_path, ledger, n_min):
    with Store(store_path) as s:
        stored = {sym: s.ticks(sym) for sym in ("BTCUSDT", "ETHUSDT")}
    total = 0
    for sym, got in stored.items():
        led = ledger[ledger["symbol"] == sym].set_index("trade_id")
        assert got["trade_id"].isin(led.index).all()
        ref = led.loc[got["trade_id"]]
        assert (ref["type"] == "MARKET").all()  # NA / INSURANCE_FUND never stored
        assert got["ts"].tolist() == ref["ts"].tolist()
        assert got["price"].tolist() == ref["price"].tolist()
        assert got["qty"].tolist() == ref["qty"].tolist()
        assert got["is_buyer_maker"].tolist() == ref["is_buyer_maker"].tolist()
        assert got["source"].eq("collector").all()
        total += len(got)
    assert total >= n_min
    return total


def test_collector_forwards_market_trades_into_the_store(sim, browser, tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "col.db"), token="col-token"))
    try:
        page = browser.new_page(accept_downloads=True)
        external = []
        page.on("request", lambda r: external.append(r.url)
                if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "blob:",
                                         "data:")) else None)
        query = urlencode({"token": "col-token", "ws": sim.sim.ws_url + "/public",
                           "symbols": "btcusdt,ethusdt", "mode": "both", "interval": "200",
                           "autostart": "1"})
        page.goto(f"{srv.url}qdash/collector?{query}")
        page.wait_for_function("() => window.collector.stats.stored >= 300 && "
                               "window.collector.stats.filtered >= 5", timeout=60_000)
        page.click("#stop")
        page.wait_for_function("() => !window.collector.pending.length && "
                               "!window.collector.inFlight", timeout=30_000)
        stats = _stats(page)
        assert stats["sendErrors"] == 0 and stats["forwarded"] == stats["kept"]
        assert set(stats["filteredBy"]) <= {"X=NA", "X=INSURANCE_FUND"}
        ledger = sim.on_loop(lambda: _frame(sim.sim))
        total = _check_against_ledger(srv.service.db_path, ledger, 300)
        assert total == stats["stored"] == stats["kept"]
        # the live table and counters show what happened
        assert page.locator("#trades tbody tr").count() > 0
        assert page.locator("#symtable tbody tr").count() == 2
        page.wait_for_function(  # the counters re-render 4 times a second
            "n => document.querySelector('.counter[data-key=stored] b').textContent"
            ".replace(/,/g, '') === String(n)", arg=total, timeout=10_000)
        # the NDJSON download (raw frames) loads with `qdash load` into the same ticks
        with page.expect_download() as dl:
            page.click("#save")
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        assert path.name.startswith("ticks_") and path.suffix == ".ndjson"
        from qdash.io import load

        with Store(tmp_path / "loaded.db") as loaded, Store(srv.service.db_path) as served:
            load([str(path)], store=loaded, progress=False)
            for sym in ("BTCUSDT", "ETHUSDT"):
                a, b = loaded.ticks(sym), served.ticks(sym)
                assert a["trade_id"].tolist() == b["trade_id"].tolist()
                assert a["price"].tolist() == b["price"].tolist()
        assert external == []
        page.close()
    finally:
        srv.stop()


def test_collector_as_a_standalone_file_forwards_with_cors(sim, browser, tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "file.db"), token="file-token"))
    try:
        page = browser.new_page()
        query = urlencode({"token": "file-token", "ws": sim.sim.ws_url + "/public",
                           "symbols": "ethusdt", "server": srv.url, "interval": "200",
                           "autostart": "1"})
        page.goto(COLLECTOR_HTML.as_uri() + "?" + query)
        page.wait_for_function("() => window.collector.stats.stored >= 50", timeout=60_000)
        page.click("#stop")
        page.wait_for_function("() => !window.collector.pending.length && "
                               "!window.collector.inFlight", timeout=30_000)
        with Store(srv.service.db_path) as s:
            assert s.symbols() == ["ETHUSDT"] and s.tick_count() == _stats(page)["kept"]
        page.close()
    finally:
        srv.stop()


def test_collector_with_a_wrong_token_stores_nothing_and_says_so(sim, browser, tmp_path):
    srv = ServerThread(ServerConfig(db=str(tmp_path / "bad.db"), token="right"))
    try:
        page = browser.new_page()
        query = urlencode({"token": "wrong", "ws": sim.sim.ws_url + "/public",
                           "symbols": "btcusdt", "interval": "100", "autostart": "1"})
        page.goto(f"{srv.url}qdash/collector?{query}")
        page.wait_for_function("() => window.collector.stats.sendErrors >= 1", timeout=60_000)
        assert "401" in page.locator("#log").inner_text()
        assert page.evaluate("() => window.collector.pending.length") > 0  # kept for a retry
        with Store(srv.service.db_path) as s:
            assert s.tick_count() == 0
        page.close()
    finally:
        srv.stop()
