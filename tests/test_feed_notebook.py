"""The feed inside a real Jupyter kernel (nbclient): start() returns at once, ticks arrive while
other cells run, ``await feed.stop()`` in the last cell ends it cleanly."""

import pytest

pytestmark = pytest.mark.integration

CELLS = [
    """
import asyncio, time
from qdash.sim.exchange import SimExchange
from qdash.feeds.binance import BinanceFutures
sim = await SimExchange(["BTCUSDT", "ETHUSDT"], rate=200, seed=9).start()
""",
    """
t0 = time.monotonic()
feed = BinanceFutures(["BTCUSDT", "ETHUSDT"], ws_url=sim.ws_url, rest_url=sim.rest_url,
                      stale_timeout=2, max_lag=None)
received = []
feed.on_ticks(lambda b: received.append(len(b)))
feed.start()
start_took = time.monotonic() - t0
assert start_took < 0.5, start_took
""",
    "n_after_start = sum(received)",
    "squares = [i * i for i in range(200_000)]",  # an ordinary cell while the feed runs
    "await asyncio.sleep(1.5)",
    "n_between = sum(received)\nassert n_between > n_after_start, (n_after_start, n_between)",
    "x = sum(squares)",
    """
await feed.stop()
await sim.stop()
stats = feed.stats()
assert not stats["running"] and stats["ticks"] == sum(received) > 0
print("ticks", stats["ticks"], "between", n_between - n_after_start)
""",
]


def test_feed_runs_in_a_kernel_between_cells():
    import nbformat  # here, not at collection: the unit tier does not pay for Jupyter's imports
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in CELLS]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    out = nb.cells[-1].outputs[0]["text"]
    assert out.startswith("ticks ")
    assert int(out.split()[-1]) > 0
