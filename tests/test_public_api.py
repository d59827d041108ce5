"""The public API a notebook imports survives the redesign: every exported name resolves, and
the names the README teaches are the objects that do the work."""

import qdash


def test_every_exported_name_resolves():
    missing = [name for name in qdash.__all__ if getattr(qdash, name, None) is None]
    assert missing == []


def test_the_readme_names_are_the_working_objects():
    from qdash.analytics.signal import SignalSpec, compute_signal
    from qdash.app.dashboard import Dashboard
    from qdash.app.monitor import PairMonitor
    from qdash.backtest import run
    from qdash.history.fetch import fetch
    from qdash.io import load
    from qdash.scan.pipeline import scan
    from qdash.store import Store

    assert qdash.Store is Store
    assert qdash.load is load
    assert qdash.SignalSpec is SignalSpec
    assert qdash.compute_signal is compute_signal
    assert qdash.run_backtest is run
    assert qdash.Dashboard is Dashboard
    assert qdash.PairMonitor is PairMonitor
    assert qdash.fetch is fetch
    assert callable(qdash.scan) and qdash.scan.scan is scan
