"""``book()``: the walk-forward book of pairs — scan, select, allocate, trade, roll forward.

Windows: the bars are cut into consecutive trade windows of ``trade`` (e.g. ``"7d"``), the
first starting ``train`` after the first bar; each window's selection is THE scan on the
``train`` span that ends where the window begins (:mod:`qdash.book.select`), its trading is
THE signal and the book's bar loop (:mod:`qdash.book.trade`, :mod:`qdash.book.kernel`). No
decision uses a bar after it, so a run on data cut at any T makes the same selections,
allocations and trades before T (a test checks several T).

Metrics (:mod:`qdash.backtest.metrics`, on the bar equity curve from the first window's first
bar): annualised figures on the 24/7 bar clock (``cagr``, ``annual_volatility``, ``sharpe``,
``sortino``, ``calmar``, and with them ``sharpe_se`` and ``deflated_sharpe``), always given,
with ``span_days`` beside them and ``short_sample`` 1 when the curve spans fewer than
:data:`~qdash.backtest.metrics.SHORT_SAMPLE_DAYS` days (never blank: a short figure is marked,
not left out, as the backtest's are); ``total_return``, ``max_drawdown``, ``turnover`` (traded
notional of the netted orders over the capital), ``crossed`` (the legs' notional that crossed
inside the book instead of trading, on the same scale), ``fees`` (taker fees, slippage and
liquidation fees), ``funding`` (received), ``open_mark`` (the net pnl so far of positions left
open), ``liquidations``, ``refused_entries`` (entries the caps left at zero), ``trials``,
``windows`` and ``pairs_traded`` always. The deflated Sharpe (Bailey and López de Prado) takes
``N`` = every directed pair tested in every window's scan and ``V`` = the variance of the
stage-2 survivors' out-of-sample Sharpes (per bar) pooled over the windows — the trials' own
Sharpes are not kept for the pairs stage 1 rejected (the variance of the Sharpe estimate itself
when fewer than two survivors exist). The same metrics for the two baselines carry the prefix
``baseline_<name>_``: ``no_coint_gate`` (the same book on the top pairs by train-span Sharpe
without the cointegration gate, :mod:`qdash.book.select`) and ``hold_<SYMBOL>`` (BTCUSDT, else
the symbol with the largest quote volume over the first train span, bought with the capital at
the first window's first close, paying the taker fee and its funding).
"""

from __future__ import annotations

import logging
import math
import os
from importlib import metadata

import numpy as np
import pandas as pd

from ..backtest import metrics as mt
from ..backtest.engine import spec_of
from ..errors import QdashError
from ..model import timeframe_ms
from . import select as sel
from . import trade as _trade
from .data import BookData, load
from .result import BOOK_TABLES, BookResult
from .trade import Traded, TradeParams, Window

log = logging.getLogger(__name__)

DEFAULT_LIQUIDATION_FEE = 0.0125
"""Binance's liquidation clearance fee on liquidated notional (the highest it charges, 1.25 %;
an assumption unless ``liquidation_fee`` is given)."""
VERSIONED = ("qdash", "numpy", "pandas", "numba", "scipy", "statsmodels", "dask", "distributed",
             "bokeh")


def _span_ms(value, name: str) -> int:
    try:
        return timeframe_ms(value) if isinstance(value, str) else int(value)
    except (ValueError, TypeError) as exc:
        raise QdashError(f"{name} {value!r}: give a span like 30d, 12h or 7d") from exc


def windows_of(times: np.ndarray, train_ms: int, trade_ms: int) -> list[Window]:
    """The trade windows of a bar grid (module docstring): grid rows of each window's train
    span and trade span; windows without a bar are left out."""
    if not len(times):
        return []
    out = []
    ws = int(times[0]) + train_ms
    while ws <= times[-1]:
        lo, a, b = np.searchsorted(times, [ws - train_ms, ws, ws + trade_ms])
        if b > a:
            out.append(Window(int(lo), int(a), int(b)))
        ws += trade_ms
    return out


def _versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _metrics(equity: np.ndarray, traded: Traded | None, bar_ms: int, capital: float,
             trials: int, trial_var: float, windows: int) -> dict[str, float]:
    """The metrics of one equity curve (module docstring); ``traded`` None for a hold."""
    e = np.asarray(equity, dtype=float)
    ppy = mt.periods_per_year(bar_ms)
    years = (len(e) - 1) * bar_ms / (mt.DAYS_PER_YEAR * mt.DAY_MS)
    trades = traded.trades if traded is not None else None
    pnl = trades["pnl"].to_numpy() if trades is not None else np.zeros(0)
    held = ((trades["exit_time"] - trades["entry_time"]) / pd.Timedelta(milliseconds=bar_ms)
            ).to_numpy() if trades is not None else np.zeros(0)
    tot = traded.totals if traded is not None else {"notional": capital, "fees": 0.0,
                                                     "funding": 0.0}
    side = (traded.equity["gross_exposure"].to_numpy() > 0) if traded is not None else \
        np.ones(len(e))
    m = mt.compute_all(e, side, pnl, held, bar_ms=bar_ms, years=years, initial_capital=capital,
                       traded_notional=tot["notional"], fees=tot["fees"], slippage=0.0,
                       funding=tot["funding"])
    r = mt.bar_returns(e)
    sr = m["sharpe"] / math.sqrt(ppy)
    dsr = math.nan
    if math.isfinite(sr) and len(e) > 2:
        g3, g4 = mt.return_moments(r)
        v = trial_var if math.isfinite(trial_var) else mt.sharpe_se(sr, len(r), g3, g4) ** 2
        dsr = mt.deflated_sharpe(sr, len(e), g3, g4, max(1, trials), v)
    out = {"total_return": m["total_return"], "cagr": m["cagr"],
           "annual_volatility": m["annual_volatility"], "sharpe": m["sharpe"],
           "sharpe_se": m["sharpe_se"], "deflated_sharpe": dsr, "sortino": m["sortino"],
           "calmar": m["calmar"], "max_drawdown": m["max_drawdown"],
           "max_drawdown_hours": m["max_drawdown_hours"], "span_days": m["span_days"],
           "short_sample": float(m["short_sample"]), "turnover": m["turnover"],
           "fees": tot["fees"], "funding": tot["funding"], "trades": float(len(pnl)),
           "win_rate": m["win_rate"], "final_equity": m["final_equity"], "trials": float(trials),
           "windows": float(windows)}
    if traded is not None:
        o = traded.open
        out.update(open_mark=float((o["pnl"]).sum()) if len(o) else 0.0,
                   liquidations=traded.totals["liquidations"],
                   refused_entries=traded.totals["refused"],
                   crossed=traded.totals["crossed"] / capital,
                   pairs_traded=float(len(set(zip(traded.trades["y"], traded.trades["x"]))
                                          | set(zip(o["y"], o["x"])))))
    return out


def _hold(data: BookData, w0: Window, capital: float, fee_rate: float
          ) -> tuple[str, np.ndarray]:
    """The buy-and-hold baseline's symbol and equity over the trade bars."""
    if "BTCUSDT" in data.symbols:
        j = data.symbols.index("BTCUSDT")
    else:
        qv = np.nan_to_num(np.nanmean(np.where(np.isfinite(data.quote_volume[w0.lo:w0.start]),
                                               data.quote_volume[w0.lo:w0.start], 0.0), axis=0))
        j = int(np.argmax(qv))
    p = pd.Series(data.close[w0.start:, j]).ffill().bfill().to_numpy()
    qty = capital * (1.0 - fee_rate) / p[0]
    funding = np.cumsum(-data.funding[w0.start:, j] * qty * p)
    return data.symbols[j], capital * (1.0 - fee_rate) + qty * (p - p[0]) + funding


def _select(data: BookData, windows: list[Window], max_pairs: int, scan_kw: dict, scheduler,
            workers, baselines: bool) -> list[sel.WindowScan]:
    spans = [(w.lo, w.start) for w in windows]
    return sel.scan_windows(data, spans, max_pairs, scan_kw, scheduler, workers, baselines)


def _weights(data: BookData, windows: list[Window], picks: list[pd.DataFrame], method: str
             ) -> list[np.ndarray]:
    col = {s: j for j, s in enumerate(data.symbols)}
    return [sel.allocate(method, sel.spread_returns(data.close[w.lo:w.start], col, p))
            if len(p) else np.zeros(0) for w, p in zip(windows, picks)]


def book(bars=None, *, db=None, symbols: list[str] | None = None, timeframe: str = "5m",
         start=None, end=None, train="30d", trade="7d", fdr: float = 0.05,
         max_pairs: int = 20, entry: float = 2.0, exit: float = 0.0, stop: float = 4.0,
         hedge: str = "rolling-ols", window: int | None = None, allocation: str = "equal",
         capital: float = 100_000.0, leverage: float = 3.0, max_symbol_weight: float = 0.25,
         fee_bps: float = 5.0, slippage_bps: float | None = None, impact: float = 1.0,
         funding: bool = True, funding_rates: dict | None = None, brackets: dict | None = None,
         liquidation_fee: float = DEFAULT_LIQUIDATION_FEE, close_at_end: bool = True,
         scheduler="local", workers: int | None = None, baselines: bool = True) -> BookResult:
    """Run the walk-forward book (module docstring) and return its :class:`BookResult`.

    ``bars``: a long bar DataFrame (``symbol, open_time, close[, quote_volume]``), a CSV/Parquet
    path, or a :class:`~qdash.store.Store`; or ``db``: a store path (read-only). ``symbols``
    (None: all), ``timeframe``, ``start``/``end`` (ISO, UTC; end exclusive). ``train`` and
    ``trade``: spans such as ``"30d"``, ``"7d"``. The scan: ``fdr``
    (stage 1's Benjamini–Hochberg rate), at most ``max_pairs`` kept. The signal: ``hedge``,
    ``window`` (β and z window in bars; default the timeframe's), levels ``entry``/``exit``/
    ``stop`` (|z|). ``allocation``: ``equal``, ``inverse-vol`` or ``risk-parity``. ``capital``
    (USDT), ``leverage`` (gross cap, × equity), ``max_symbol_weight`` (net cap per symbol, ×
    equity). Costs: ``fee_bps`` taker fee per leg per fill (Binance VIP 0: 5), slippage
    ``slippage_bps`` per fill or, when None, the square-root impact with coefficient
    ``impact`` on each bar's quote volume; ``funding`` (False: none) from the store or
    ``funding_rates`` (symbol → Series of rates by settlement time); ``brackets`` (symbol →
    maintenance rate; default Binance's first brackets), ``liquidation_fee`` (fraction of
    liquidated notional). ``close_at_end``: close what is open at the last bar
    (``end_of_data``), else leave it open (its mark is the ``open_mark`` metric).
    ``scheduler``/``workers``: where the window scans run (``"local"``, an address, None or
    ``"none"``). ``baselines``: also run the two baselines (module docstring).
    """
    if bars is None and db is None:
        raise QdashError("book needs bars (a DataFrame, a file or a Store) or db (a store path)")
    opened = bars is None
    if opened:
        from ..store import Store
        bars = Store(db, readonly=True)
    _check(max_pairs, entry, exit, stop, leverage, max_symbol_weight, capital, fee_bps,
           slippage_bps, allocation)
    if isinstance(scheduler, str) and scheduler.lower() == "none":
        scheduler = None
    spec_args = {k: v for k, v in locals().items()
                 if k not in ("bars", "funding_rates", "opened")}
    spec_args["source"] = (os.fspath(bars) if isinstance(bars, (str, os.PathLike)) else
                           type(bars).__name__)
    train_ms, trade_ms = _span_ms(train, "train"), _span_ms(trade, "trade")
    try:
        data = load(bars, symbols=symbols, timeframe=timeframe, start=start, end=end,
                    funding=funding_rates, use_funding=funding)
    finally:
        if opened:
            bars.close()
    windows = windows_of(data.times, train_ms, trade_ms)
    if not windows:
        raise QdashError(f"book: the data ({len(data.times)} bars of {timeframe}) is no longer "
                         f"than the train span {train}: nothing to trade")
    spec = spec_of(None, hedge=hedge, window=window, bar_ms=data.bar_ms)
    train_bars = train_ms // data.bar_ms
    if spec.warmup_bars > train_bars:
        raise QdashError(f"the signal needs {spec.warmup_bars} bars to warm up "
                         f"({spec.warmup_windows}), more than the train span's {train_bars}: "
                         "use a longer --train or a shorter --window")
    scan_kw = {"timeframe": timeframe, "fdr": fdr, "entry": entry, "exit": exit,
               "fee_bps": fee_bps}
    scans = _select(data, windows, max_pairs, scan_kw, scheduler, workers, baselines)
    prm = TradeParams(entry=entry, exit=exit, stop=stop, leverage=leverage,
                      max_symbol_weight=max_symbol_weight, fee_rate=fee_bps / 1e4,
                      slip_rate=-1.0 if slippage_bps is None else slippage_bps / 1e4,
                      impact=impact, liq_rate=liquidation_fee, capital=capital,
                      close_at_end=close_at_end, break_every=max(1, mt.DAY_MS // data.bar_ms),
                      break_bars=max(20, trade_ms // data.bar_ms, train_bars // 2))
    picks: list[pd.DataFrame] = []
    for s in scans:
        held = set(zip(picks[-1]["y"], picks[-1]["x"])) if picks else set()
        picks.append(sel.choose(s.passing, max_pairs, held))
    memo: dict = {}
    traded = _trade.trade(data, windows, picks, _weights(data, windows, picks, allocation),
                          spec, prm, brackets, memo)
    trials = int(sum(s.tested for s in scans))
    ppy = mt.periods_per_year(data.bar_ms)
    oos = np.concatenate([s.oos_sharpe for s in scans]) / math.sqrt(ppy)
    trial_var = float(np.var(oos, ddof=1)) if len(oos) > 1 else math.nan
    metrics = _metrics(traded.equity["equity"].to_numpy(), traded, data.bar_ms, capital,
                       trials, trial_var, len(windows))
    index = pd.DatetimeIndex(traded.equity["open_time"])
    curves: dict[str, pd.Series] = {}
    if baselines:
        base_picks: list[pd.DataFrame] = []
        for s in scans:
            held = set(zip(base_picks[-1]["y"], base_picks[-1]["x"])) if base_picks else set()
            base_picks.append(sel.keep_orientation(s.baseline, held))
        base = _trade.trade(data, windows, base_picks,
                     _weights(data, windows, base_picks, allocation), spec, prm, brackets,
                     memo)
        curves["no_coint_gate"] = pd.Series(base.equity["equity"].to_numpy(), index=index)
        for k, v in _metrics(base.equity["equity"].to_numpy(), base, data.bar_ms, capital,
                             trials, trial_var, len(windows)).items():
            metrics[f"baseline_no_coint_gate_{k}"] = v
        sym, hold = _hold(data, windows[0], capital, prm.fee_rate)
        curves[f"hold_{sym}"] = pd.Series(hold, index=index)
        for k, v in _metrics(hold, None, data.bar_ms, capital, 1, math.nan,
                             len(windows)).items():
            metrics[f"baseline_hold_{sym}_{k}"] = v
    errors = {str(data.index[w.start]): s.error for w, s in zip(windows, scans) if s.error}
    for when, text in errors.items():
        log.warning("book: the window starting %s selects nothing: %s", when, text)
    spec_args.update(bar_ms=data.bar_ms, signal=spec.to_dict(), windows=len(windows),
                     window_errors=errors,
                     symbols=symbols, skipped=sorted({d["symbol"] for s in scans
                                                      for d in s.skipped}))
    return BookResult(
        windows=traded.windows, trades=traded.trades, equity=traded.equity,
        positions=traded.positions,
        metrics=pd.DataFrame({"name": list(metrics), "value": list(metrics.values())}),
        baselines=curves, spec=_jsonable(spec_args), fingerprint=data.fingerprint(),
        versions=_versions())


def _check(max_pairs, entry, exit, stop, leverage, max_symbol_weight, capital, fee_bps,
           slippage_bps, allocation) -> None:
    """Raise :class:`QdashError` naming the first bad argument."""
    rules = [(max_pairs >= 1, f"max_pairs must be >= 1, got {max_pairs}"),
             (entry > 0, f"entry must be > 0 (a |z| level), got {entry}"),
             (-entry < exit < entry, f"exit must lie strictly between -entry and entry, got "
                                     f"{exit}"),
             (stop > entry, f"stop must be > entry ({entry}), got {stop}"),
             (leverage > 0, f"leverage must be > 0, got {leverage}"),
             (0 < max_symbol_weight, f"max_symbol_weight must be > 0, got {max_symbol_weight}"),
             (capital > 0, f"capital must be > 0, got {capital}"),
             (fee_bps >= 0, f"fee_bps must be >= 0, got {fee_bps}"),
             (slippage_bps is None or slippage_bps >= 0,
              f"slippage_bps must be >= 0, got {slippage_bps}"),
             (allocation in sel.ALLOCATIONS,
              f"allocation {allocation!r}: use one of {', '.join(sel.ALLOCATIONS)}")]
    for ok, text in rules:
        if not ok:
            raise QdashError(text)


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (str, int, float, bool, type(None), list, dict)):
            out[k] = v
        elif isinstance(v, os.PathLike):
            out[k] = os.fspath(v)
        else:
            out[k] = str(v)
    return out


__all__ = ["book", "windows_of", "BOOK_TABLES"]
