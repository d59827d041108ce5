"""``qdash archive`` killed (SIGKILL) at the worst moments, in a real child process: after the
Parquet file is durable but before SQLite forgets its rows, and in the middle of writing a file.
Nothing is lost, nothing is read twice, and the next run finishes the move."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from test_archive import D0, DAY, candles, ticks

from qdash.store import Store
from qdash.store.parquet import archive

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]

# The child archives the store and kills itself with SIGKILL where ``KILL_AT`` says.
CHILD = textwrap.dedent("""
    import os, signal, sys
    import qdash.store.parquet as A
    from qdash.store import Store

    where = sys.argv[2]
    if where == "before-delete":
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        A._delete_rows = die
    elif where == "before-rename":
        real = os.replace
        def die_on_replace(src, dst):
            os.kill(os.getpid(), signal.SIGKILL)
        A.os.replace = die_on_replace
    A.archive(Store(sys.argv[1]), before="2024-07-21", progress=False)
""")


def run_child(db, where):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(db), where], env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "q.db", synchronous="OFF")
    st.write_ticks(ticks("BTCUSDT", D0, 2))
    st.write_bars(candles(D0, 2), "BTCUSDT", "1m")
    return st


@pytest.mark.parametrize("where", ["before-delete", "before-rename"])
def test_killed_archive_loses_and_duplicates_nothing(store, where):
    t0, b0 = store.ticks("BTCUSDT"), store.bars("BTCUSDT", "1m")
    run_child(store.path, where)
    files = list(Path(f"{store.path}.archive").rglob("*.parquet"))
    if where == "before-delete":
        assert files and store.tick_count() == len(t0)  # in both places now
    else:
        assert not files and store.tick_count() == len(t0)  # only a hidden temp file
        assert list(Path(f"{store.path}.archive").rglob(".*.tmp"))
    pd.testing.assert_frame_equal(store.ticks("BTCUSDT"), t0)  # read once, not twice
    pd.testing.assert_frame_equal(store.bars("BTCUSDT", "1m"), b0)
    rep = archive(store, before="2024-07-21", progress=False)
    assert rep.ticks == len(t0) and rep.candles == len(b0)
    assert store.tick_count() == 0
    assert not list(Path(f"{store.path}.archive").rglob(".*.tmp"))
    pd.testing.assert_frame_equal(store.ticks("BTCUSDT"), t0)
    pd.testing.assert_frame_equal(store.bars("BTCUSDT", "1m"), b0)
    assert int(store.ticks("BTCUSDT", D0 + DAY)["ts"].min()) >= D0 + DAY
