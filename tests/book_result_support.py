"""A synthetic but consistent :class:`~qdash.book.result.BookResult` for the report and Book-tab
tests: 5m bars, three 1-day trade windows, pairs that share legs, round trips inside and across
windows, and the identities the contract states (the windows' pnl adds up to the equity's change,
``price = pnl + fees - funding``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from qdash.book.result import BookResult

CAPITAL = 100_000.0
START = pd.Timestamp("2026-11-01", tz="UTC")
BAR = pd.Timedelta(minutes=5)
DAY = pd.Timedelta(days=1)
PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0, "SOLUSDT": 150.0, "BNBUSDT": 600.0}
# (window, y, x, beta, half_life in bars, weight)
SELECTED = [(0, "ETHUSDT", "BTCUSDT", 1.1, 40.0, 0.5), (0, "SOLUSDT", "ETHUSDT", 0.9, 25.0, 0.5),
            (1, "ETHUSDT", "BTCUSDT", 1.05, 45.0, 0.34),
            (1, "SOLUSDT", "ETHUSDT", 0.95, 30.0, 0.33), (1, "BNBUSDT", "BTCUSDT", 0.8, 60.0, 0.33),
            (2, "ETHUSDT", "BTCUSDT", 1.0, 50.0, 0.5), (2, "BNBUSDT", "BTCUSDT", 0.85, 55.0, 0.5)]
# (y, x, entry bar, exit bar or None, side, pnl, fees, funding, exit reason)
TRADES = [("ETHUSDT", "BTCUSDT", 10, 60, 1, 120.0, 8.0, -1.5, "exit"),
          ("SOLUSDT", "ETHUSDT", 30, 70, -1, -40.0, 6.0, 0.5, "stop"),
          ("ETHUSDT", "BTCUSDT", 250, 330, -1, 210.0, 9.0, 2.0, "exit"),   # across windows 0/1
          ("BNBUSDT", "BTCUSDT", 400, 480, 1, 55.0, 7.0, -0.8, "exit"),
          ("SOLUSDT", "ETHUSDT", 500, 576, 1, -30.0, 5.0, 0.0, "deselected"),
          ("ETHUSDT", "BTCUSDT", 600, 700, 1, 90.0, 8.5, 1.2, "break"),
          ("BNBUSDT", "BTCUSDT", 800, None, -1, 0.0, 4.0, 0.0, "")]         # still open


def book_result(spec: dict | None = None) -> BookResult:
    """The fixture (see the module docstring); ``spec`` updates the default spec."""
    bars = 3 * 288
    times = pd.date_range(START, periods=bars, freq=BAR)
    windows = []
    for w, y, x, beta, hl, weight in SELECTED:
        start = START + w * DAY
        windows.append({"window_start": start, "window_end": start + DAY, "y": y, "x": x,
                        "beta": beta, "half_life": hl, "coint_q": 0.01 * (1 + w), "weight": weight,
                        "pnl": 0.0, "fees": 0.0, "funding": 0.0, "trades": 0})
    windows = pd.DataFrame(windows)
    trades = pd.DataFrame([{
        "y": y, "x": x, "entry_time": times[a], "exit_time": times[b] if b else pd.NaT,
        "side": side, "entry_z": -2.1 * side, "exit_z": 0.1 * side if b else np.nan, "pnl": pnl,
        "fees": fees, "funding": fund, "exit_reason": reason}
        for y, x, a, b, side, pnl, fees, fund, reason in TRADES])
    trades["exit_time"] = pd.to_datetime(trades["exit_time"], utc=True)
    # each trade's pnl, fees and funding booked to the window of its entry (the fixture's split)
    for t in trades.itertuples():
        hit = ((windows["y"] == t.y) & (windows["x"] == t.x) & (windows["window_start"]
               <= t.entry_time) & (t.entry_time < windows["window_end"]))
        i = windows.index[hit][0]
        windows.loc[i, ["pnl", "fees", "funding"]] += [t.pnl, t.fees, t.funding]
        windows.loc[i, "trades"] += 1
    windows["trades"] = windows["trades"].astype(int)
    step = np.zeros(bars)
    for t in trades.itertuples():
        if pd.notna(t.exit_time):
            step[times.get_loc(t.exit_time)] += t.pnl
    equity = CAPITAL + np.cumsum(step)
    equity[-1] = CAPITAL + windows["pnl"].sum()     # the open trade's mark (0 here)
    positions = _positions(trades, windows)
    held = (positions.pivot_table(index="open_time", columns="symbol", values="notional")
            .reindex(times).ffill().fillna(0.0))
    gross = held.abs().sum(axis=1).to_numpy()
    equity_df = pd.DataFrame({"open_time": times, "equity": equity, "gross_exposure": gross,
                              "net_exposure": held.sum(axis=1).to_numpy(),
                              "margin_ratio": 0.004 * gross / equity})
    metrics = pd.DataFrame({"name": ["total_return", "sharpe", "max_drawdown", "fees", "funding",
                                     "windows", "pairs_traded",
                                     "baseline_no_coint_gate_total_return",
                                     "baseline_hold_BTCUSDT_total_return"],
                            "value": [equity[-1] / CAPITAL - 1, 1.8, 0.004,
                                      trades["fees"].sum(), trades["funding"].sum(), 3.0, 3.0,
                                      -0.01, 0.02]})
    rng = np.random.default_rng(3)
    baselines = {"no_coint_gate": pd.Series(CAPITAL + np.cumsum(rng.normal(-2, 30, bars)),
                                            index=times),
                 "hold_BTCUSDT": pd.Series(CAPITAL * np.exp(np.cumsum(rng.normal(0, 0.002, bars))),
                                           index=times)}
    full_spec = {"timeframe": "5m", "train": "30d", "trade": "1d", "fdr": 0.05, "max_pairs": 20,
                 "entry": 2.0, "exit": 0.0, "stop": 4.0, "hedge": "rolling-ols", "window": 60,
                 "allocation": "equal", "capital": CAPITAL, "leverage": 3.0,
                 "max_symbol_weight": 0.25, "symbols": sorted(PRICES)} | (spec or {})
    return BookResult(windows=windows, trades=trades, equity=equity_df, positions=positions,
                      metrics=metrics, baselines=baselines, spec=full_spec,
                      fingerprint="9f" * 32,
                      versions={"qdash": "0.1.0", "numpy": np.__version__,
                                "pandas": pd.__version__})


def _positions(trades: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """Net notional per symbol where it changes: each trade holds ``side * 10_000 * weight`` in y
    and ``-side * beta`` times that in x from entry to exit."""
    events = []
    for t in trades.itertuples():
        w = windows[(windows["y"] == t.y) & (windows["x"] == t.x)
                    & (windows["window_start"] <= t.entry_time)].iloc[-1]
        ny = t.side * 10_000.0 * w["weight"]
        for sym, n in ((t.y, ny), (t.x, -w["beta"] * ny)):
            events.append((t.entry_time, sym, n))
            if pd.notna(t.exit_time):
                events.append((t.exit_time, sym, -n))
    ev = pd.DataFrame(events, columns=["open_time", "symbol", "delta"]).sort_values(
        ["open_time", "symbol"], kind="stable")
    ev = ev.groupby(["open_time", "symbol"], as_index=False)["delta"].sum()
    ev["notional"] = ev.groupby("symbol")["delta"].cumsum().round(6)
    return ev[["open_time", "symbol", "notional"]].reset_index(drop=True)


def renamed(result: BookResult, names: dict[str, str], **spec) -> BookResult:
    """``result`` with its symbols renamed by ``names`` (and ``spec`` updated): the fixture on
    another universe's symbols, e.g. the simulator's."""
    def rn(frame: pd.DataFrame, cols) -> pd.DataFrame:
        out = frame.copy()
        for c in cols:
            out[c] = out[c].map(lambda s: names.get(s, s))
        return out

    return BookResult(windows=rn(result.windows, ("y", "x")), trades=rn(result.trades, ("y", "x")),
                      equity=result.equity, positions=rn(result.positions, ("symbol",)),
                      metrics=result.metrics, baselines=result.baselines,
                      spec=result.spec | spec, fingerprint=result.fingerprint,
                      versions=result.versions)
