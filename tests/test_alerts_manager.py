"""AlertManager: cooldown and hysteresis on hand-made z-score paths, history evaluation equal to
live replay, the alerts_log history, CSV export and persistence across a restart."""

import asyncio
import json
import logging

import numpy as np
import pandas as pd
import pytest

from qdash.alerts import AlertManager, AlertRule, CallbackSink
from qdash.errors import AlertError
from qdash.store import Store

PAIR = "BTCUSDT/ETHUSDT"
T0 = 1_721_347_200_000  # 2024-07-19T00:00:00Z


def feed(manager, zs, *, step_ms=1000, pair=PAIR, **extra):
    """Feed a z-score path; return the indices of updates where something fired."""
    fired = []
    for i, z in enumerate(zs):
        if manager.update(pair, {"zscore": z, **extra}, T0 + i * step_ms):
            fired.append(i)
    return fired


HOVER = [1.9, 2.1, 1.95, 2.05, 1.98, 2.02] * 10  # 60 updates hovering around 2.0


def test_hovering_zscore_fires_once_with_a_reset_level():
    m = AlertManager(None)
    m.add("zscore > 2 reset 1.5", name="z-high")
    assert feed(m, HOVER) == [1]
    # back below the reset level re-arms; the next excursion fires again
    more = feed(m, [1.4, 2.2, 1.9, 2.3])
    assert more == [1]


def test_hysteresis_without_reset_fires_once_per_excursion():
    m = AlertManager(None)
    m.add("zscore > 2", name="z-high")
    assert feed(m, [2.1, 2.5, 2.2, 3.0, 2.01]) == [0]       # stays above: once
    assert feed(m, HOVER) == list(range(1, 60, 2))          # every up-cross: 30 times
    assert len(HOVER) == 60


def test_without_hysteresis_every_true_update_fires_and_cooldown_limits():
    m = AlertManager(None)
    m.add("zscore > 2", name="every", hysteresis=False)
    m.add("zscore > 2", name="cooled", hysteresis=False, cooldown_s=10)
    above = [2.5] * 25
    fired = {"every": [], "cooled": []}
    for i, z in enumerate(above):
        for alert in m.update(PAIR, {"zscore": z}, T0 + i * 1000):
            fired[alert.rule].append(i)
    assert fired["every"] == list(range(25))
    assert fired["cooled"] == [0, 10, 20]


def test_cooldown_with_hysteresis_fires_when_cooldown_ends_if_still_true():
    m = AlertManager(None)
    m.add("zscore > 2 reset 1.5", name="z", cooldown_s=5)
    # fires at 0; re-armed at 1 (z < 1.5); true at 2 but in cooldown; fires at 5 (5 s later)
    assert feed(m, [2.5, 1.0, 2.5, 2.5, 2.5, 2.5, 2.5]) == [0, 5]


def test_composite_condition_rearms_when_any_part_relaxes():
    m = AlertManager(None)
    m.add("zscore > 2 reset 1.5 and corr > 0.8", name="zc")
    path = [(2.5, 0.9), (2.5, 0.9), (2.5, 0.7), (2.5, 0.9), (1.8, 0.9), (2.5, 0.9)]
    fired = [i for i, (z, c) in enumerate(path)
             if m.update(PAIR, {"zscore": z, "corr": c}, T0 + i)]
    assert fired == [0, 3]  # corr <= 0.8 made the condition false → re-armed; z=1.8 did not


def test_crossing_rule_with_reset():
    m = AlertManager(None)
    m.add("zscore crosses above 2 reset 1", name="x")
    # row 0 has no previous value; the cross at 4 comes before z went below the reset level 1
    assert feed(m, [2.5, 1.5, 2.5, 1.5, 2.5, 0.5, 2.5, 2.6]) == [2, 6]


def test_pairs_have_independent_state_and_pair_filter():
    m = AlertManager(None)
    m.add("zscore > 2", name="any")
    m.add("zscore > 2", name="only-eth", pair="ETHUSDT/SOLUSDT")
    a = m.update(PAIR, {"zscore": 3}, T0)
    b = m.update("ETHUSDT/SOLUSDT", {"zscore": 3}, T0)
    assert [x.rule for x in a] == ["any"]
    assert sorted(x.rule for x in b) == ["any", "only-eth"]
    assert m.update(PAIR, {"zscore": 3}, T0 + 1) == []


def test_disabled_rules_are_skipped_and_state_survives_unrelated_changes():
    m = AlertManager(None)
    m.add("zscore > 2", name="z")
    assert feed(m, [3]) == [0]
    m.add("corr > 0.9", name="c", enabled=False)
    assert m.update(PAIR, {"zscore": 3, "corr": 0.95}, T0 + 5) == []  # z still disarmed
    m.enable("c")
    assert [a.rule for a in m.update(PAIR, {"zscore": 3, "corr": 0.95}, T0 + 6)] == ["c"]


def test_bad_values_never_escape_and_other_rules_still_fire(caplog):
    m = AlertManager(None)
    m.add("zscore > 2", name="z")
    m.add("spread > 1", name="s")
    with caplog.at_level(logging.ERROR, logger="qdash.alerts.manager"):
        out = m.update(PAIR, {"zscore": "oops", "spread": 5.0}, T0)
    assert [a.rule for a in out] == ["s"]
    assert "'z' could not be evaluated" in caplog.text
    assert m.update(PAIR, {"spread": None, "zscore": float("nan")}, T0 + 1) == []


def test_alert_record_and_messages():
    m = AlertManager(None)
    m.add("zscore > 2 and corr > 0.8", name="zc", severity="critical")
    m.add("abs(zscore) > 2", name="custom", message="{rule}: z={zscore:.2f} corr={corr} {pair}")
    alerts = m.update(PAIR, {"zscore": 2.345678, "corr": 0.9, "spread": 1}, T0)
    zc, custom = alerts
    assert zc.values == {"zscore": 2.345678, "corr": 0.9} and zc.severity == "critical"
    assert zc.message == "zscore=2.34568, corr=0.9 (zscore > 2 and corr > 0.8)"
    assert zc.time == "2024-07-19T00:00:00.000+00:00" and zc.value == 2.345678
    assert custom.message == f"custom: z=2.35 corr=nan {PAIR}"


def test_add_validation():
    m = AlertManager(None, known_metrics=["zscore", "corr"])
    m.add("zscore > 2", name="z")
    with pytest.raises(AlertError, match="exists"):
        m.add("zscore > 3", name="z")
    assert m.add("zscore > 3", name="z", replace=True).condition.leaves()[0].threshold == 3
    with pytest.raises(AlertError, match="did you mean 'corr'"):
        m.add("cor > 0.5", name="c")
    with pytest.raises(AlertError, match="no alert rule named 'zz'; did you mean 'z'"):
        m.remove("zz")
    assert m.add("corr > 0.5").name == "corr > 0.5"


def random_frame(n=3000, seed=11):
    rng = np.random.default_rng(seed)
    z = np.zeros(n)
    for i in range(1, n):
        z[i] = 0.95 * z[i - 1] + rng.normal(0, 0.45)
    corr = np.clip(0.85 + rng.normal(0, 0.06, n), -1, 1)
    index = pd.date_range("2024-07-19", periods=n, freq="1s", tz="UTC")
    frame = pd.DataFrame({"zscore": z, "corr": corr, "half_life_s": rng.uniform(1, 30, n)},
                         index=index)
    frame.iloc[rng.choice(n, 30, replace=False), 1] = np.nan
    return frame


RULES = [
    dict(name="z-high", condition="zscore > 2 reset 1", cooldown_s=0),
    dict(name="z-both", condition="abs(zscore) > 2.2 and corr > 0.8", cooldown_s=20),
    dict(name="z-x", condition="zscore crosses below -1.5 reset -0.5 or half_life_s < 1.2"),
    dict(name="z-nohyst", condition="zscore < -2 and not corr < 0.75", hysteresis=False,
         cooldown_s=7),
]


def test_history_evaluation_equals_live_replay():
    frame = random_frame()
    hist_mgr, live_mgr = AlertManager(None), AlertManager(None)
    for spec in RULES:
        hist_mgr.add(dict(spec))
        live_mgr.add(dict(spec))
    hist = hist_mgr.evaluate_history(frame, pair=PAIR)
    ts = frame.index.as_unit("ms").asi8
    live = []
    for t, row in zip(ts, frame.to_dict("records")):
        live += [(a.ts, a.rule, a.message) for a in live_mgr.update(PAIR, row, int(t))]
    assert len(live) > 40 and set(r for _, r, _ in live) == {s["name"] for s in RULES}
    assert list(zip(hist["ts"], hist["rule"], hist["message"])) == live
    assert hist.index.tz is not None and (hist.index.as_unit("ms").asi8 == hist["ts"]).all()
    # the same with an int 'ts' column instead of the index
    by_col = hist_mgr.evaluate_history(frame.reset_index(drop=True).assign(ts=ts), pair=PAIR)
    assert by_col["ts"].tolist() == hist["ts"].tolist()
    with pytest.raises(AlertError, match="no column 'corr'"):
        hist_mgr.evaluate_history(frame[["zscore", "half_life_s"]])


def test_log_history_csv_and_persistence_across_restart(db_path, tmp_path):
    got = []

    async def scenario():
        store = Store(db_path)
        m = AlertManager(store, sinks=[CallbackSink(got.append, name="cb")])
        m.add("zscore > 2 reset 1", name="z-high", severity="critical")
        m.add("corr < 0.5", name="corr-low", enabled=False, cooldown_s=30)
        m.start()
        fired = feed(m, [0.5, 2.5, 2.7, 0.8, 3.1, 1.5])
        await m.join()
        await m.stop()
        store.close()
        return fired

    assert asyncio.run(scenario()) == [1, 4]
    assert [a.ts for a in got] == [T0 + 1000, T0 + 4000]

    store = Store(db_path)  # a new process would do the same
    m = AlertManager(store)
    assert [r.name for r in m.rules] == ["corr-low", "z-high"]
    assert m.get("corr-low").enabled is False and m.get("corr-low").cooldown_s == 30
    assert m.get("z-high") == AlertRule("z-high", "zscore > 2 reset 1", severity="critical")
    hist = m.history()
    assert hist["rule"].tolist() == ["z-high", "z-high"]
    assert hist["ts"].tolist() == [T0 + 1000, T0 + 4000]
    assert hist.index[0] == pd.Timestamp("2024-07-19T00:00:01Z")
    assert hist["values"].tolist() == [{"zscore": 2.5}, {"zscore": 3.1}]
    assert hist["delivery"].iloc[0]["cb"] == {"status": "sent", "attempts": 1, "retries": 0,
                                              "error": None, "code": None}
    assert hist["status"].tolist() == ["cb: sent", "cb: sent"]
    assert len(m.history(start="2024-07-19T00:00:02Z")) == 1
    assert len(m.history(rule="corr-low")) == 0
    path = m.to_csv(tmp_path / "alerts.csv")
    back = pd.read_csv(path)
    assert back["rule"].tolist() == ["z-high", "z-high"]
    assert json.loads(back["values"].iloc[1]) == {"zscore": 3.1}
    assert back["time"].iloc[0] == "2024-07-19T00:00:01.000Z"  # as every qdash CSV writes it
    m.remove("corr-low")
    assert [r.name for r in AlertManager(Store(db_path)).rules] == ["z-high"]


def test_manager_without_loop_buffers_log_until_flush(db_path):
    store = Store(db_path)
    m = AlertManager(store)
    m.add("zscore > 2", name="z")
    feed(m, [3.0])
    assert len(m.history()) == 0
    with pytest.raises(AlertError, match="needs a running event loop"):
        m.start()
    m.flush()
    assert m.history()["rule"].tolist() == ["z"]


def test_in_memory_history_without_store():
    m = AlertManager(None)
    m.add("zscore > 2", name="z", hysteresis=False)
    feed(m, [3.0, 3.0, 1.0, 3.0])
    hist = m.history(start=pd.Timestamp(T0 + 1000, unit="ms", tz="UTC"))
    assert hist["ts"].tolist() == [T0 + 1000, T0 + 3000]
    assert hist["status"].tolist() == ["", ""]
