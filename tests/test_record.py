"""``qdash record`` end to end: a simulated exchange, a recorder process, a real SQLite file.

Ctrl-C (SIGINT) loses nothing that was received; ``kill -9`` and a restart on the same store
leave no hole and no duplicate against the exchange's ledger."""

import asyncio
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from qdash.feeds.record import stored_positions
from qdash.model import tick_frame
from qdash.sim.exchange import SimExchange
from qdash.store import Store

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def sim_port():
    proc = subprocess.Popen([sys.executable, "-m", "qdash", "sim", "--port", "0", "--rate",
                             "300", "--seed", "3"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", line).group(1))
    yield port
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=10)[0]
    assert "published" in out


def record_cmd(port, db, *extra):
    return [sys.executable, "-m", "qdash", "record", ",".join(SYMBOLS), "--db", str(db),
            "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
            *extra]


def summary_counts(out):
    m = re.search(r"recorded (\d+) ticks .*: (\d+) new, (\d+) already stored, (\d+) lost", out)
    assert m, out
    return [int(x) for x in m.groups()]


def stored(db):
    with Store(db) as store:
        return store.tick_count()


def wait_until(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_record_for_a_duration(sim_port, db_path):
    r = subprocess.run(record_cmd(sim_port, db_path, "--duration", "2"), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    received, new, dup, lost = summary_counts(r.stdout)
    assert received > 100 and new == received and dup == 0 and lost == 0
    with Store(db_path) as store:
        assert store.tick_count() == received
        assert set(store.symbols()) == set(SYMBOLS)
    assert "ticks/s" in r.stderr  # the live status line


def test_ctrl_c_loses_nothing_received(sim_port, db_path):
    proc = subprocess.Popen(record_cmd(sim_port, db_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: db_path.exists() and stored(db_path) > 100)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    received, new, _, lost = summary_counts(out)
    assert received > 100 and lost == 0
    with Store(db_path) as store:
        assert store.tick_count() == received == new


def test_kill_9_and_restart_leave_no_hole_and_no_duplicate(db_path):
    """The recorder is killed mid-stream; while it is down the exchange trades on (more than
    the last 1,000 trades, so the outage needs aggTrades by id); the restarted recorder resumes
    from the store. Every MARKET trade from the first stored one on is stored exactly once."""

    async def scenario():
        sim = SimExchange(SYMBOLS, rate=600, seed=11,
                          market_kwargs={"na_prob": 0.01, "insurance_prob": 0.005})
        await sim.start()
        port = int(sim.ws_url.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()

        async def until(cond, timeout=90.0):
            deadline = loop.time() + timeout
            while not cond():
                assert loop.time() < deadline, "condition not reached"
                await asyncio.sleep(0.1)

        def last_stored():
            with Store(db_path) as store:
                return stored_positions(store, SYMBOLS, "sim")

        def ledger_last(s):
            return int(sim.ledger.frame(s, market_only=True)["trade_id"].iloc[-1])

        try:
            first = await asyncio.create_subprocess_exec(
                *record_cmd(port, db_path), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            await until(lambda: db_path.exists() and stored(db_path) > 500)
            first.kill()  # SIGKILL: no flush, no goodbye
            await first.wait()
            at_kill = last_stored()
            assert set(at_kill) == set(SYMBOLS)
            # the exchange trades on for more than /trades' 1,000 recent trades per symbol
            await until(lambda: all(ledger_last(s) - at_kill[s][0] > 1300 for s in SYMBOLS))
            second = await asyncio.create_subprocess_exec(
                *record_cmd(port, db_path), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            await until(lambda: all(last_stored().get(s, (0,))[0] > ledger_last(s) - 50
                                    for s in SYMBOLS))
            sim.pause()
            target = {s: ledger_last(s) for s in SYMBOLS}
            await until(lambda: all(last_stored()[s][0] == target[s] for s in SYMBOLS))
            second.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(second.communicate(), 60)
            assert second.returncode == 0, err.decode()
            return sim, at_kill, out.decode(), err.decode()
        finally:
            await sim.stop()

    sim, at_kill, out, err = asyncio.run(scenario())
    assert "resuming after stored trade" in err
    assert re.search(r"2 symbols resumed from the store", out), out
    with Store(db_path) as store:
        for s in SYMBOLS:
            got = store.ticks(s)
            want = sim.ledger.frame(s, market_only=True)
            want = want[want["trade_id"] >= got["trade_id"].iloc[0]]
            want = want[want["trade_id"] <= got["trade_id"].iloc[-1]]
            assert got["trade_id"].is_unique, f"{s}: duplicates"
            assert got["trade_id"].tolist() == want["trade_id"].tolist(), f"{s}: holes"
            np.testing.assert_array_equal(got["ts"], want["ts"])
            np.testing.assert_array_equal(got["price"], want["price"])
            outage = got[(got["trade_id"] > at_kill[s][0])]
            # the outage came from REST: exact /trades where recent, aggTrades by id before that
            assert (outage["source"] == "sim:rest-agg").sum() > 200


def test_recording_the_simulator_stores_simulated_trades_and_refuses_an_exchange_store(
        sim_port, tmp_path):
    ws_only = [sys.executable, "-m", "qdash", "record", "BTCUSDT", "--ws-url",
               f"ws://127.0.0.1:{sim_port}", "--duration", "1.5"]
    real = tmp_path / "real.db"
    with Store(real) as store:
        store.write_ticks(tick_frame("BTCUSDT", [1_000, 2_000], [1, 2], 60_000.0, 0.1, 0,
                                     "binance"))
    r = subprocess.run([*ws_only, "--db", str(real)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "holds exchange data; these are simulated trades" in r.stderr
    with Store(real) as store:
        assert store.tick_count() == 2 and store.venue == "exchange"
    sim_db = tmp_path / "sim.db"
    r = subprocess.run([*ws_only, "--db", str(sim_db)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    with Store(sim_db) as store:
        assert store.venue == "simulated"
        got = store.ticks("BTCUSDT")
        assert len(got) > 10 and (got["source"] == "sim").all()
