"""The one settings object (``QDASH_*``) and the one periodic-task helper."""

import asyncio

import pytest

from qdash.config import ConfigError, Settings, var_name
from qdash.periodic import PeriodicTask


def test_settings_round_trip_through_the_environment():
    s = Settings(db="/tmp/x.db", symbols=("BTCUSDT", "ETHUSDT"), pair=("ETHUSDT", "BTCUSDT"),
                 timeframe="1h", window=168, debug=True)
    env = {}
    s.export(env)
    assert env == {"QDASH_DB": "/tmp/x.db", "QDASH_SYMBOLS": "BTCUSDT,ETHUSDT",
                   "QDASH_PAIR": "ETHUSDT,BTCUSDT", "QDASH_TIMEFRAME": "1h",
                   "QDASH_WINDOW": "168", "QDASH_DEBUG": "1"}
    assert Settings.from_env(env) == s
    assert Settings.from_env({}) == Settings()
    assert var_name("sim_rest_url") == "QDASH_SIM_REST_URL"


def test_settings_parse_and_name_the_bad_variable():
    assert Settings.from_env({"QDASH_DEBUG": "0"}).debug is False
    assert Settings.from_env({"QDASH_SYMBOLS": " btcusdt, ethusdt ,"}).symbols == (
        "BTCUSDT", "ETHUSDT")
    for var, raw in [("QDASH_WINDOW", "abc"), ("QDASH_WINDOW", "-3"), ("QDASH_PAIR", "ETHUSDT"),
                     ("QDASH_PAIR", "ETHUSDT,ETHUSDT"), ("QDASH_SYMBOLS", ",")]:
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({var: raw})


def test_periodic_task_calls_at_a_fixed_rate_never_overlapping_and_survives_errors():
    calls, errors, active = [], [], []

    async def job():
        assert not active, "two calls overlapped"
        active.append(1)
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.005)
        active.pop()
        if len(calls) == 2:
            raise RuntimeError("boom")

    async def main():
        task = PeriodicTask(job, 0.02, name="t", on_error=errors.append).start()
        assert task.running
        await asyncio.sleep(0.15)
        await task.wait_stopped()
        assert not task.running
        n = len(calls)
        await asyncio.sleep(0.05)
        assert len(calls) == n  # stopped means no more calls

    asyncio.run(main())
    assert 4 <= len(calls) <= 9
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 0.015  # the period is from start to start, not after a sleep of period
    assert [str(e) for e in errors] == ["boom"]


def test_periodic_task_delay_first_and_plain_functions():
    calls = []

    async def main():
        task = PeriodicTask(lambda: calls.append(1), 0.05, delay_first=True).start()
        await asyncio.sleep(0.02)
        assert calls == []  # waits one period first
        await asyncio.sleep(0.05)
        task.stop()

    asyncio.run(main())
    assert calls == [1]
    with pytest.raises(ValueError, match="period_s"):
        PeriodicTask(lambda: None, 0)


def test_depth_interval_setting():
    assert Settings().depth_record_every == 10.0  # unset: the default
    assert Settings.from_env({"QDASH_DEPTH_INTERVAL": "0.25"}).depth_record_every == 0.25
    assert Settings.from_env({"QDASH_DEPTH_INTERVAL": "0"}).depth_record_every is None
    s = Settings(depth_interval=5.0)
    assert Settings.from_env(s.to_env()) == s
    for raw in ("-1", "soon", "inf"):
        with pytest.raises(ConfigError, match="QDASH_DEPTH_INTERVAL"):
            Settings.from_env({"QDASH_DEPTH_INTERVAL": raw})
