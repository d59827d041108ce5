"""The alerts tab and the monitor's alert and stats model, without a live feed: what a new user
sees where a rule is typed, rules across page loads, the first row of "stats over time"."""

import asyncio
import math
from types import SimpleNamespace

import pandas as pd
import pytest

from qdash.app.alerts_panel import AlertsPanel
from qdash.app.dispatch import Dispatcher
from qdash.app.monitor import PairMonitor
from qdash.errors import QdashError

HOUR = 3_600_000


@pytest.fixture
def monitor(db_path):
    mon = PairMonitor(source="store", symbols=["BTCUSDT", "ETHUSDT"], timeframe="1h",
                      db=str(db_path))
    yield mon
    mon.session = None  # a test's stand-in session is not the monitor's to stop
    asyncio.run(mon.close())


def panel_of(mon, said):
    loop = asyncio.new_event_loop()
    try:
        return AlertsPanel(mon, Dispatcher(loop, said.append), lambda t, lvl: said.append(t))
    finally:
        loop.close()


def test_next_evaluation_is_the_close_of_the_forming_bar():
    from qdash.alerts.schedule import next_evaluation_ms

    t = pd.Timestamp("2026-12-06 05:20:07", tz="UTC").value // 1_000_000
    close = pd.Timestamp("2026-12-06 06:00:00", tz="UTC").value // 1_000_000
    assert next_evaluation_ms(t, HOUR) == close
    assert next_evaluation_ms(close, HOUR) == close + HOUR  # at the open of a bar: its close
    assert next_evaluation_ms(t, HOUR, tolerance_ms=1_000) == close + 1_000


def test_a_new_rule_says_it_sees_closed_bars_and_when_it_first_runs(monitor):
    """On 1h bars a rule added at 05:20:07 first runs at 06:00:01 (close + the session's 1 s
    late-trade allowance); the editor says so where the rule was typed."""
    now = pd.Timestamp("2026-12-06 05:20:07", tz="UTC").value // 1_000_000
    monitor.session = SimpleNamespace(exchange_now_ms=now, tolerance_ms=1_000)
    said = []
    panel = panel_of(monitor, said)
    panel.expression.value = "abs(zscore) > 1"
    panel.add_rule()
    note = panel.feedback.value
    assert "closed 1h bars" in note and "2026-12-06 06:00:01 UTC" in note, note
    assert "qdash-rule-note" in note and panel.expression.value == ""
    monitor.session = None


def test_a_rule_error_shows_where_the_rule_was_typed(monitor):
    said = []
    panel = panel_of(monitor, said)
    panel.expression.value = "abs(zscroe) > 1"
    panel.add_rule()  # no exception reaches the dispatcher's status line
    assert "qdash-rule-error" in panel.feedback.value and "zscroe" in panel.feedback.value
    assert panel.expression.value == "abs(zscroe) > 1"  # kept, to be corrected
    assert said == [] and len(monitor.rules_frame()) == 0


def test_a_rule_added_on_one_page_shows_on_the_next(db_path):
    first = PairMonitor(source="store", symbols=["BTCUSDT", "ETHUSDT"], db=str(db_path))
    first.add_rule("abs(zscore) > 1", name="wide")
    asyncio.run(first.close())
    said = []
    second = PairMonitor(source="store", symbols=["BTCUSDT", "ETHUSDT"], db=str(db_path))
    panel = panel_of(second, said)
    assert "wide" in panel.rules.value and "abs(zscore) &gt; 1" in panel.rules.value
    asyncio.run(second.close())


def test_stats_over_time_has_no_row_before_the_first_bar(monitor):
    metrics = {"ts_ms": None, "bars": 0, "zscore": math.nan}
    monitor.session = SimpleNamespace(metrics=lambda: dict(metrics))
    assert monitor.record_stats() is None
    assert monitor.stats_history_frame().empty
    metrics.update(ts_ms=1_796_000_000_000, bars=3, zscore=1.5)
    row = monitor.record_stats()
    frame = monitor.stats_history_frame()
    assert row["zscore"] == 1.5 and len(frame) == 1
    assert frame.index[0] == pd.Timestamp(1_796_000_000_000, unit="ms", tz="UTC")
    monitor.session = None


def test_a_pair_needs_two_different_legs(db_path, monitor):
    with pytest.raises(QdashError, match="two different symbols"):
        PairMonitor(source="store", symbols=["BTCUSDT", "ETHUSDT"], y="ethusdt", x="ETHUSDT",
                    db=str(db_path))
    with pytest.raises(QdashError, match="two different symbols"):
        asyncio.run(monitor.open_pair("ETHUSDT", "ETHUSDT"))
    assert (monitor.y, monitor.x) == ("ETHUSDT", "BTCUSDT")
