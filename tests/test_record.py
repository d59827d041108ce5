"""``qdash record`` end to end: a sim process, a recorder process, a real SQLite file.

Ctrl-C (SIGINT) must lose nothing that was received: the summary's received count equals the
rows in the store."""

import re
import signal
import subprocess
import sys
import time

import pytest

from qdash.store import Store


@pytest.fixture
def sim_port():
    proc = subprocess.Popen([sys.executable, "-m", "qdash.sim.cli", "--port", "0", "--rate",
                             "300", "--seed", "3"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", line).group(1))
    yield port
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=10)[0]
    assert "published" in out


def record_cmd(port, db, *extra):
    return [sys.executable, "-m", "qdash.feeds.record", "BTCUSDT,ETHUSDT", "--db", str(db),
            "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url", f"http://127.0.0.1:{port}",
            *extra]


def summary_counts(out):
    m = re.search(r"recorded (\d+) ticks .*: (\d+) new, (\d+) already stored, (\d+) lost", out)
    assert m, out
    return [int(x) for x in m.groups()]


def test_record_for_a_duration(sim_port, db_path):
    r = subprocess.run(record_cmd(sim_port, db_path, "--duration", "2"), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    received, new, dup, lost = summary_counts(r.stdout)
    assert received > 100 and new == received and dup == 0 and lost == 0
    with Store(db_path) as store:
        assert store.tick_count() == received
        assert set(store.symbols()) == {"BTCUSDT", "ETHUSDT"}
    assert "ticks/s" in r.stderr  # the live status line


def test_ctrl_c_loses_nothing_received(sim_port, db_path):
    proc = subprocess.Popen(record_cmd(sim_port, db_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    received, new, _, lost = summary_counts(out)
    assert received > 100 and lost == 0
    with Store(db_path) as store:
        assert store.tick_count() == received == new
