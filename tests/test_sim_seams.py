"""The simulator's seams: its handlers see the exchange only through ``ExchangeContext`` and never
import the facade; the facade provides everything the protocol names; the one OHLCV reduction
(``qdash.bars.reduce_trades``) gives the simulator's kline columns."""

import ast
import pathlib

import numpy as np

import qdash.sim
from qdash.bars import reduce_trades
from qdash.sim.context import ExchangeContext
from qdash.sim.exchange import SimExchange
from qdash.sim.minutes import trade_bars

SIM = pathlib.Path(qdash.sim.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_module_of_the_simulator_imports_the_facade():
    """(Its command, ``qdash/cli/sim.py``, does.)"""
    importers = sorted(p.name for p in SIM.glob("*.py")
                       if {".exchange", "qdash.sim.exchange"} & _imports(p))
    assert importers == []
    assert "..sim.exchange" in _imports(SIM.parent / "cli" / "sim.py")  # the check sees imports


def test_the_facade_provides_the_context():
    sim = SimExchange(["BTCUSDT"], start_ms=1_721_390_000_000, warmup_s=60)
    names = {n for n in dir(ExchangeContext) if not n.startswith("_")}
    names |= set(ExchangeContext.__annotations__)
    assert names and all(hasattr(sim, n) for n in names), sorted(
        n for n in names if not hasattr(sim, n))


def test_trade_bars_are_the_shared_reduction():
    t = np.array([0, 0, 60_000, 60_000, 60_000], np.int64)
    price = np.array([10.0, 12.0, 11.0, 9.0, 10.5])
    qty = np.array([1.0, 2.0, 1.0, 1.0, 3.0])
    m = np.array([0, 1, 0, 0, 1], np.int8)
    bars, starts, ends = trade_bars(t, price, qty, m)
    agg, s2, e2 = reduce_trades(t, price, qty, m)
    assert starts.tolist() == s2.tolist() == [0, 2] and ends.tolist() == e2.tolist() == [2, 5]
    assert bars["open"].tolist() == [10.0, 11.0] and bars["close"].tolist() == [12.0, 10.5]
    assert bars["high"].tolist() == [12.0, 11.0] and bars["low"].tolist() == [10.0, 9.0]
    assert bars["trades"].tolist() == [2, 3]
    assert bars["taker_buy_volume"].tolist() == agg["buy_volume"].tolist() == [1.0, 2.0]
    assert bars["taker_buy_quote_volume"].tolist() == [10.0, 20.0]
    assert bars["quote_volume"].tolist() == [34.0, 51.5]
