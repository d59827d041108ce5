"""The dashboard's β/z window follows the timeframe: a new timeframe shows its default window
(:mod:`qdash.defaults`, one row per timeframe) unless the user chose their own."""

import asyncio

import pytest

from qdash.app.monitor import PairMonitor
from qdash.defaults import defaults_for


def _monitor(db_path, **kw) -> PairMonitor:
    return PairMonitor(source="store", symbols=["BTCUSDT", "ETHUSDT"], db=str(db_path), **kw)


@pytest.mark.unit
def test_the_default_window_follows_the_timeframe(db_path):
    mon = _monitor(db_path, timeframe="5m")
    assert mon.window == defaults_for("5m").beta_window == 2_016
    assert mon.set_timeframe("1h") == defaults_for("1h").beta_window == 168
    assert mon.pair_config().beta_window == mon.pair_config().z_window == 168
    assert mon.set_timeframe("1s") == defaults_for("1s").beta_window


@pytest.mark.unit
def test_a_window_of_the_user_is_kept_across_timeframes(db_path):
    mon = _monitor(db_path, timeframe="5m")
    mon.set_window(300)
    assert mon.set_timeframe("1h") == 300 and mon.set_timeframe("1m") == 300
    mon.set_window(defaults_for("1m").beta_window)  # typing the default: it follows again
    assert mon.set_timeframe("15m") == defaults_for("15m").beta_window
    given = _monitor(db_path, timeframe="5m", window=50)  # given at construction: the user's
    assert given.set_timeframe("1h") == 50


@pytest.mark.integration  # builds the whole widget tree (Bokeh, ipywidgets): seconds
def test_changing_the_timeframe_box_resets_the_window_box_unless_typed(db_path):
    from qdash.app import Dashboard

    async def scenario():
        d = Dashboard(source="store", symbols=["BTCUSDT", "ETHUSDT"], timeframe="5m",
                      db=str(db_path))
        m = d.market
        seen = [m.window.value]

        async def settle():
            for _ in range(5):  # the controls' handlers run on the loop (the dispatcher)
                await asyncio.sleep(0)

        m.timeframe.value = "1h"
        await settle()
        seen.append(m.window.value)
        m.window.value = 250  # typed by the user
        await settle()
        m.timeframe.value = "1m"
        await settle()
        seen.append(m.window.value)
        return seen, d.monitor.window, d.monitor.timeframe

    seen, window, timeframe = asyncio.run(scenario())
    assert seen == [defaults_for("5m").beta_window, defaults_for("1h").beta_window, 250]
    assert (window, timeframe) == (250, "1m")
