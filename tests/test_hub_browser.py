"""A ``qdash dashboard --source hub`` app (Voila + the tick server, a real process on 127.0.0.1
with a temporary store) in headless Chromium: it shows only ticks pushed to its server.

Checked: ticks POSTed to the server reach the page's candles, a file uploaded in the page is
stored, and no kernel is left after 10 open/close cycles of a tab.
"""

from __future__ import annotations

import time

import pytest
from conftest import JULY, JULY_TRADES
from dashboard_support import (
    App,
    PageLog,
    click_tab,
    find_source,
    open_dashboard,
    sources,
    text_of,
    wait_until,
)

from qdash.io import read_ticks
from qdash.store import Store

pytestmark = pytest.mark.browser

WINDOW = 10  # rolling window (bars)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """``qdash dashboard --source hub``: shows only ticks pushed to its server."""
    tmp = tmp_path_factory.mktemp("hub")
    app = App("dashboard", tmp, tmp / "hub.db",
              args=["--source", "hub", "--symbols", "BTCUSDT,ETHUSDT", "--pair", "ETHUSDT,BTCUSDT"],
              env={"QDASH_WINDOW": str(WINDOW)})
    yield app
    app.stop()


def test_pushed_ticks_reach_a_hub_dashboards_candles(browser, hub):
    page, log, _ = open_dashboard(browser, hub.url)
    try:
        now = int(time.time() * 1000)
        ticks = [{"symbol": s, "ts": now, "price": p, "qty": 1.5, "trade_id": 1}
                 for s, p in (("ETHUSDT", 3456.25), ("BTCUSDT", 65432.5))]
        # the kernel's hub subscription connects after the page rendered: push until it shows
        def shown():
            hub.post_ticks([{**t, "trade_id": t["trade_id"] + int(time.time() * 10) % 10**6}
                            for t in ticks])
            highs = [h for c in find_source(sources(page), "open", "high") for h in c["high"]]
            return 3456.25 in highs and 65432.5 in highs

        wait_until(shown, timeout=30, interval=1.0, what="pushed ticks in the hub dashboard")
        assert log.errors() == [] and log.external() == []
    finally:
        page.close()


def test_an_uploaded_file_loads(browser, hub):
    path = JULY / f"{JULY_TRADES}.csv.gz"
    expected = read_ticks(path)["symbol"].value_counts()
    page, log, _ = open_dashboard(browser, hub.url)
    try:
        click_tab(page, "files & downloads")
        # ipywidgets' FileUpload keeps its <input type=file> out of the DOM: use the chooser
        with page.expect_file_chooser() as chooser:
            page.locator(".widget-upload").click()
        chooser.value.set_files(str(path))
        report = wait_until(lambda: "stored" in text_of(page, "pre") and text_of(page, "pre"),
                            timeout=60, what="the load report")
        assert path.name in report and "REJECTED" not in report
        with Store(hub.db) as store:
            for symbol, n in expected.items():
                july = store.ticks(symbol, "2024-07-18", "2024-07-20")
                assert len(july) == n, (symbol, len(july), n)
                assert str(n) in report.replace(",", "")
        assert log.errors() == []
    finally:
        page.close()


def test_no_kernel_is_left_after_ten_tab_cycles(browser, hub):
    """Odd cycles close the tab once the dashboard streams (Voila's unload beacon shuts the kernel
    down); even ones as soon as the page arrives (before the beacon exists: the orphan
    watchdog must find the kernel once it is idle-but-streaming with no connection)."""
    for i in range(10):
        if i % 2:
            page, log, _ = open_dashboard(browser, hub.url, views=1)
        else:
            page = browser.new_page()
            log = PageLog(page)
            page.goto(hub.url, wait_until="commit")
            page.wait_for_selector("#jupyter-config-data", state="attached")
        page.goto("about:blank")  # fires beforeunload (closing the browser would not)
        page.close()
        assert log.errors() == []
    # what is left is the one preheated kernel waiting for the next page (Voila's pool)
    wait_until(lambda: len(hub.kernel_pids()) == 1, timeout=120, interval=0.5,
               what="every page's dashboard kernel to be shut down")
    time.sleep(2 * 4)  # two orphan timeouts later: still that one, nothing came back
    assert len(hub.kernel_pids()) == 1
