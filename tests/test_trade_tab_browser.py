"""The dashboard's trade tab in headless Chromium: ``qdash dashboard --sim-url`` on a simulator
with a paper account (its key and secret reach the app through ``$QDASH_API_KEY``/
``$QDASH_API_SECRET`` only), the entry level lowered in the page so that the pair trades within
seconds; the trader armed from the tab, its positions and fills drawn, then the kill switch
pressed and the account checked flat on the simulator itself (its own records, not the page).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO
from dashboard_support import CHROMIUM, App, click_tab, open_dashboard, text_of, wait_until
from test_server_support import SimThread

pytestmark = pytest.mark.browser

assert Path(CHROMIUM).exists(), (
    "Chromium is needed for the browser tests: the README's test command installs it "
    "(apt-get install -y chromium)")

ARTIFACTS = REPO / "tests" / "artifacts"
KEY, SECRET = "tradeTabKey" + "k" * 20, "tradeTabSecret" + "s" * 30
Y, X = "ETHUSDT", "BTCUSDT"


def holdings(sim: SimThread) -> tuple[dict[str, float], list[str]]:
    """The paper account's positions (symbol → signed amount) and open orders' client ids, read
    on the simulator's loop."""
    async def read():
        acc = sim.sim.accounts.by_api_key(KEY)
        return ({s: p.amt for s, p in acc.positions.items()},
                [o.client_id for o in acc.open_orders()])
    return sim.on_loop(read)


@pytest.fixture(scope="module")
def sim():
    s = SimThread([Y, X], rate=400.0, seed=7, warmup_s=120, accounts=[(KEY, SECRET, 1e6)])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def app(sim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trade-tab")
    a = App("dashboard", tmp, tmp / "trade.db",
            args=["--sim-url", sim.sim.rest_url, "--symbols", f"{Y},{X}", "--pair", f"{Y},{X}",
                  "--timeframe", "1s", "--window", "10"],
            env={"QDASH_API_KEY": KEY, "QDASH_API_SECRET": SECRET})
    yield a
    a.stop()


def _positions(page) -> str:
    return text_of(page, ".qdash-trade-positions")


def test_arm_trade_and_kill_switch_leave_the_account_flat(browser, app, sim):
    page, log, _ = open_dashboard(browser, app.url, viewport=(1400, 1600))
    try:
        entry = page.locator(".widget-text", has_text="entry z").locator("input")
        entry.fill("0.3")
        entry.press("Enter")
        click_tab(page, "trade")
        arm = page.get_by_role("button", name="armed: off")
        wait_until(lambda: arm.count(), timeout=30, what="the trade tab's arm button")
        arm.click()
        wait_until(lambda: _positions(page), timeout=30, what="the positions table")

        # an entry needs a closed bar with |z| past 0.3 and a hedge ratio inside the hedge
        # rule's band (qdash.analytics.signal.hedge_ok): most bars, not every one
        wait_until(lambda: any(holdings(sim)[0].values()), timeout=90, interval=0.5,
                   what="an entry on the simulator")

        def drawn():
            """The tab's positions when they are the simulator's (trader's and exchange's
            column), both legs held, opposite sides, and both legs' fills listed."""
            page.get_by_role("button", name="refresh").click()
            fills = text_of(page, ".qdash-trade-fills")
            rows = " ".join(_positions(page).split())
            held = holdings(sim)[0]
            if not (Y in fills and X in fills) or not all(held.get(s) for s in (Y, X)):
                return None
            shown = all(f"{s} {held[s]:g} {held[s]:g} " in rows for s in (Y, X))
            return shown and held

        held = wait_until(drawn, timeout=30, interval=0.5, what="the simulator's positions "
                          "and both legs' fills in the tab")
        assert held[Y] * held[X] < 0, held                  # a spread: opposite sides
        assert page.locator(".qdash-trade-orders").count() == 1    # the open orders table
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "trade_tab.png"), full_page=True)

        page.get_by_role("button", name="kill switch").click()
        wait_until(lambda: "kill switch:" in page.locator("body").text_content(), timeout=30,
                   what="the kill switch's report in the status line")
        wait_until(lambda: page.get_by_role("button", name="armed: off").count(), timeout=10,
                   what="the trader disarmed")
        amounts, open_orders = holdings(sim)
        assert all(a == 0 for a in amounts.values()), amounts
        assert open_orders == []
        assert log.errors() == [], log.errors()
    except AssertionError as e:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "trade_tab_failed.png"), full_page=True)
        tab = page.locator(".qdash-trade-status").locator("..")
        shown = " ".join(tab.inner_text(timeout=5_000).split()) if tab.count() else "not drawn"
        raise AssertionError(f"{e}; the trade tab showed: {shown}") from e
    finally:
        page.close()
