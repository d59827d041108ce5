"""``BookResult``: what a walk-forward book run produces, as frames, CSV files and a report.

Conventions (every table):
* times are tz-aware UTC ``pd.Timestamp`` (CSV: ISO 8601 UTC via :func:`qdash.io.export.write_csv`);
* money is USDT; ``pnl`` is *net* (after fees, slippage and funding);
* ``fees`` is a cost, >= 0: taker fees plus modelled slippage;
* ``funding`` is the cash flow to the account, signed: > 0 received, < 0 paid;
  so the pnl from prices alone is ``pnl + fees - funding``;
* ``notional`` is signed USDT at the bar's close: > 0 long, < 0 short;
* ``half_life`` is in bars of the run's timeframe (``spec["timeframe"]``).

Tables (columns exactly so; :data:`BOOK_TABLES`):
* ``windows``: one row per trade window and selected pair; ``pnl`` is the pair's net pnl inside the
  window, marked to market at the window's bounds; summed over all rows it equals final equity
  minus capital;
* ``trades``: one row per round trip (``side`` +1 long spread, -1 short spread);
* ``equity``: one row per bar; ``margin_ratio`` = maintenance margin / margin balance;
* ``positions``: net position per symbol summed over the pairs that hold it, rows only where it
  changes;
* ``metrics``: ``name, value``; the baselines' figures carry a ``baseline_<name>_`` prefix.

``baselines`` maps a baseline's name (e.g. ``no_coint_gate``, ``hold_BTCUSDT``) to its equity
curve (a float ``pd.Series`` indexed by ``open_time``). ``spec`` is every argument of the run
(JSON-serialisable), ``fingerprint`` a SHA-256 of the input bars and funding, ``versions`` the
library versions that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

BOOK_TABLES: dict[str, tuple[str, ...]] = {
    "windows": ("window_start", "window_end", "y", "x", "beta", "half_life", "coint_q", "weight",
                "pnl", "fees", "funding", "trades"),
    "trades": ("y", "x", "entry_time", "exit_time", "side", "entry_z", "exit_z", "pnl", "fees",
               "funding", "exit_reason"),
    "equity": ("open_time", "equity", "gross_exposure", "net_exposure", "margin_ratio"),
    "positions": ("open_time", "symbol", "notional"),
    "metrics": ("name", "value"),
}


@dataclass
class BookResult:
    """The tables of one book run (see the module docstring for their conventions)."""

    windows: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    positions: pd.DataFrame
    metrics: pd.DataFrame
    baselines: dict[str, pd.Series] = field(default_factory=dict)
    spec: dict = field(default_factory=dict)
    fingerprint: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, columns in BOOK_TABLES.items():
            got = tuple(getattr(self, name).columns)
            if got != columns:
                raise ValueError(f"BookResult.{name}: columns {got}, expected {columns}")

    def metric(self, name: str) -> float:
        """One figure of ``metrics`` by name (KeyError if absent)."""
        row = self.metrics.loc[self.metrics["name"] == name, "value"]
        if row.empty:
            raise KeyError(name)
        return float(row.iloc[0])

    def to_csv(self, out_dir: str | Path) -> list[Path]:
        """Write ``<table>.csv`` for every table into ``out_dir`` (created); returns the paths."""
        from ..io.export import write_csv

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in BOOK_TABLES:
            path = out / f"{name}.csv"
            write_csv(getattr(self, name), path, index=False)
            paths.append(path)
        return paths

    def report(self, path: str | Path) -> Path:
        """Write the standalone HTML report (Bokeh, opens offline) to ``path``; returns it."""
        from .report import write_report

        return write_report(self, Path(path))
