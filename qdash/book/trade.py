"""Trade the windows: THE signal of each selected pair, its break checks, the book's bar loop.

Per window ``[start, end)`` and selected pair: :func:`qdash.analytics.signal.compute_signal`
on the pair's closes from the window's train start to its end (so the signal is warmed up on the
train span and trades from the window's first bar; causal: z at a bar uses no later bar), the
hedge rule :func:`~qdash.analytics.signal.signal_hedge_ok` on the same frame, and the
``coint_break`` rule (:func:`qdash.analytics.pair.coint_broke`: Engle–Granger with the scan's
fixed lags and the CUSUM break test) on the trailing ``break_bars`` bars, checked every
``break_every`` bars of the window: from a failed check on, an open position closes (``break``)
and the pair enters nothing more in the window. Then :func:`qdash.book.kernel.run_window`, the
state of every pair carried from window to window: a pair still selected keeps its position; a
dropped one's position is closed at the next window's first bar (``deselected``), and that
close's PnL, costs and funding count in the window row where it was last selected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analytics.pair import coint_broke
from ..analytics.signal import SignalSpec, compute_signal, signal_hedge_ok
from ..analytics.stats import coint, spread_break
from ..errors import AnalyticsError
from . import kernel as K
from .data import BookData

FIRST_BRACKET_MMR = {"BTCUSDT": 0.004, "ETHUSDT": 0.005}
"""Binance's first-bracket maintenance margin rates (``GET /fapi/v1/leverageBracket``; typical
values, see the reference notes); other symbols get :data:`DEFAULT_MMR`."""
DEFAULT_MMR = 0.01
"""First-bracket maintenance rate assumed for a symbol without a given bracket (1 %: the
first bracket of most smaller USDⓈ-M perpetuals)."""


@dataclass(frozen=True)
class TradeParams:
    """The rule (z levels), the caps (``leverage`` and ``max_symbol_weight`` × equity), the
    costs (taker ``fee_rate``; ``slip_rate`` per fill, or < 0 for the square-root impact with
    coefficient ``impact``; ``liq_rate`` on liquidated notional), ``capital``, whether to close
    what is open at the end, and the break checks (every ``break_every`` bars on the last
    ``break_bars``, Engle–Granger with ``lags``)."""

    entry: float
    exit: float
    stop: float
    leverage: float
    max_symbol_weight: float
    fee_rate: float
    slip_rate: float
    impact: float
    liq_rate: float
    capital: float
    close_at_end: bool
    break_every: int
    break_bars: int
    lags: int = 1


@dataclass
class Window:
    """Grid rows of a window: train ``[lo, start)``, trade ``[start, end)``."""

    lo: int
    start: int
    end: int


@dataclass
class Traded:
    """The book's tables before the metrics: ``windows`` and ``trades`` (the result's
    columns), ``equity`` (the result's columns), ``positions``, ``open`` (positions still open
    at the end, as trades marked at the last close), ``totals`` (traded notional, fees,
    funding, entries refused by the caps, liquidations, notional crossed inside the book)."""

    windows: pd.DataFrame
    trades: pd.DataFrame
    equity: pd.DataFrame
    positions: pd.DataFrame
    open: pd.DataFrame
    totals: dict


def pair_signal(data: BookData, w: Window, y: str, x: str, spec: SignalSpec
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, beta, hedge_ok)`` of ``y``/``x`` on the window's bars (NaN/False where none)."""
    col = {s: j for j, s in enumerate(data.symbols)}
    n = w.end - w.start
    z, beta, ok = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, dtype=np.bool_)
    index = data.index[w.lo:w.end]
    legs = [pd.Series(data.close[w.lo:w.end, col[s]], index=index).dropna() for s in (y, x)]
    try:
        frame = compute_signal(legs[0], legs[1], spec, timeframe_ms=data.bar_ms)
    except AnalyticsError:
        return z, beta, ok
    pos = np.searchsorted(data.times, frame.index.as_unit("ms").asi8) - w.start
    inside = (pos >= 0) & (pos < n)
    z[pos[inside]] = frame["zscore"].to_numpy()[inside]
    beta[pos[inside]] = frame["beta"].to_numpy()[inside]
    ok[pos[inside]] = signal_hedge_ok(frame, spec)[inside]
    return z, beta, ok


def breaks(data: BookData, w: Window, y: str, x: str, prm: TradeParams) -> np.ndarray:
    """True from the window's first failed ``coint_break`` check on (module docstring)."""
    col = {s: j for j, s in enumerate(data.symbols)}
    n = w.end - w.start
    out = np.zeros(n, dtype=np.bool_)
    ly, lx = np.log(data.close[:, col[y]]), np.log(data.close[:, col[x]])
    for c in range(w.start, w.end, prm.break_every):
        a, b = ly[max(0, c - prm.break_bars + 1):c + 1], lx[max(0, c - prm.break_bars + 1):c + 1]
        both = np.isfinite(a) & np.isfinite(b)
        try:
            co = coint(a[both], b[both], "c", maxlag=prm.lags, autolag=None)
            _, p_break = spread_break(a[both] - co.beta * b[both] - co.alpha)
        except AnalyticsError:
            continue
        if coint_broke(co.pvalue, p_break):
            out[c - w.start:] = True
            break
    return out


def _mmr(symbols: list[str], brackets: dict | None) -> np.ndarray:
    table = {**FIRST_BRACKET_MMR, **(brackets or {})}
    return np.array([float(table.get(s, DEFAULT_MMR)) for s in symbols])


class _Book:
    """The state carried from window to window (per pair key ``(y, x)``)."""

    def __init__(self, data: BookData, prm: TradeParams, brackets: dict | None, memo: dict):
        self.data, self.prm, self.memo = data, prm, memo
        self.mmr = _mmr(data.symbols, brackets)
        self.close_ff = pd.DataFrame(data.close).ffill().to_numpy()
        self.acct = np.array([prm.capital])
        self.state: dict[tuple[str, str], np.ndarray] = {}
        self.value: dict[tuple[str, str], float] = {}
        self.last_z: dict[tuple[str, str], float] = {}
        self.ids: dict[tuple[str, str], int] = {}
        self.prev_slots: list[tuple[str, str]] = []
        self.qty = np.zeros(len(data.symbols))
        self.totals = np.zeros(4)
        self.costs = np.zeros(2)          # fees, funding
        self.rows: list[dict] = []
        self.row_of: dict[tuple[str, str], dict] = {}
        self.trades: list[np.ndarray] = []
        self.equity: list[pd.DataFrame] = []
        self.positions: list[pd.DataFrame] = []

    def _slots(self, selected: pd.DataFrame) -> tuple[list, list]:
        keys = list(zip(selected["y"], selected["x"]))
        carried = []
        for key in self.prev_slots:
            st = self.state[key]
            if key in keys:
                continue
            if st[K.S_SIDE] != 0.0:
                if st[K.S_PEND] != 2.0:
                    st[K.S_PEND] = 2.0
                    st[K.S_PEND_REASON] = K.REASON_DESELECTED
                    st[K.S_PEND_Z] = self.last_z.get(key, math.nan)
                carried.append(key)
            else:
                st[K.S_PEND] = 0.0
        for key in keys:
            if key not in self.state:
                self.state[key] = K.new_state(1)[0]
                self.ids[key] = len(self.ids)
            elif key not in self.prev_slots:
                self.state[key][K.S_PEND] = 0.0
                self.state[key][K.S_BLOCKED] = 0.0
        return keys, carried

    def run(self, w: Window, selected: pd.DataFrame, weights: np.ndarray, spec: SignalSpec,
            last: bool, window_start: pd.Timestamp, window_end: pd.Timestamp) -> None:
        data, prm = self.data, self.prm
        keys, carried = self._slots(selected)
        slots = keys + carried
        n = w.end - w.start
        col = {s: j for j, s in enumerate(data.symbols)}
        syms = sorted({col[s] for key in slots for s in key})
        local = {j: i for i, j in enumerate(syms)}
        iy = np.array([local[col[y]] for y, _ in slots], dtype=np.int64)
        ix = np.array([local[col[x]] for _, x in slots], dtype=np.int64)
        pid = np.array([self.ids[k] for k in slots], dtype=np.int64)
        weight = np.r_[np.asarray(weights, dtype=float), np.zeros(len(carried))]
        z = np.full((len(slots), n), np.nan)
        beta = np.full((len(slots), n), np.nan)
        ok = np.zeros((len(slots), n), dtype=np.bool_)
        broken = np.zeros((len(slots), n), dtype=np.bool_)
        for i, (y, x) in enumerate(keys):
            if (y, x, w.start) not in self.memo:     # the same in every book of this data
                self.memo[y, x, w.start] = (*pair_signal(data, w, y, x, spec),
                                            breaks(data, w, y, x, prm))
            z[i], beta[i], ok[i], broken[i] = self.memo[y, x, w.start]
        rows = slice(w.start, w.end)
        price = np.ascontiguousarray(self.close_ff[rows][:, syms])
        has_bar = np.isfinite(data.close[rows][:, syms])
        train_qv = data.quote_volume[w.lo:w.start][:, syms]
        mean_qv = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan
                            for c in train_qv.T])
        qv = data.quote_volume[rows][:, syms]
        qv = np.where(qv > 0, qv, mean_qv[None, :])
        r = np.diff(np.log(self.close_ff[w.lo:w.start][:, syms]), axis=0)
        sigma = np.array([np.std(c[np.isfinite(c)], ddof=1) if np.isfinite(c).sum() > 2
                          else np.nan for c in r.T])
        fund = np.ascontiguousarray(data.funding[rows][:, syms])
        st = np.array([self.state[k] for k in slots]).reshape(len(slots), K.N_STATE)
        trades = np.zeros(len(slots) * (n // 2 + 3), K.BOOK_TRADE)
        out = [np.zeros(n) for _ in range(4)]
        out_qty = np.zeros((n, len(syms)))
        fees, fund_p, entries = np.zeros(len(slots)), np.zeros(len(slots)), np.zeros(len(slots))
        last_flag = (1 if prm.close_at_end else -1) if last else 0
        nt = K.run_window(price, has_bar, np.ascontiguousarray(qv), fund, self.mmr[syms], sigma,
                          iy, ix, pid, weight, z, beta, ok, broken, st, self.acct,
                          w.start, last_flag, prm.entry, prm.exit, prm.stop, prm.leverage,
                          prm.max_symbol_weight, prm.fee_rate, prm.slip_rate, prm.impact,
                          prm.liq_rate, trades, *out, out_qty, fees, fund_p, entries,
                          self.totals)
        self.trades.append(trades[:nt])
        self.costs += (fees.sum(), fund_p.sum())
        for i, key in enumerate(slots):
            self.state[key] = st[i].copy()
            mark = st[i, K.S_QY] * (price[-1, iy[i]] - st[i, K.S_EY]) + \
                st[i, K.S_QX] * (price[-1, ix[i]] - st[i, K.S_EX])
            value = st[i, K.S_CASH] + (mark if st[i, K.S_SIDE] != 0.0 else 0.0)
            pnl = value - self.value.get(key, 0.0)
            self.value[key] = value
            self.last_z[key] = z[i, -1]
            if i < len(keys):
                sel = selected.iloc[i]
                row = {"window_start": window_start, "window_end": window_end, "y": key[0],
                       "x": key[1], "beta": float(sel["beta"]),
                       "half_life": float(sel["half_life"]), "coint_q": float(sel["q"]),
                       "weight": float(weight[i]), "pnl": pnl, "fees": fees[i],
                       "funding": fund_p[i], "trades": int(entries[i])}
                self.rows.append(row)
                self.row_of[key] = row
            else:                                    # a dropped pair's close: its last row
                row = self.row_of[key]
                row["pnl"] += pnl
                row["fees"] += fees[i]
                row["funding"] += fund_p[i]
        index = data.index[rows]
        self.equity.append(pd.DataFrame({"open_time": index, "equity": out[0],
                                         "gross_exposure": out[1], "net_exposure": out[2],
                                         "margin_ratio": out[3]}))
        self._positions(index, syms, out_qty, price)
        self.prev_slots = keys + [k for k in carried if self.state[k][K.S_SIDE] != 0.0]

    def _positions(self, index, syms, out_qty, price) -> None:
        prev = np.vstack([self.qty[syms][None, :], out_qty[:-1]])
        changed = out_qty != prev
        t, j = np.nonzero(changed)
        order = np.lexsort((j, t))
        t, j = t[order], j[order]
        names = np.array(self.data.symbols, dtype=object)[np.array(syms, dtype=np.int64)]
        self.positions.append(pd.DataFrame({"open_time": index[t], "symbol": names[j].tolist(),
                                            "notional": out_qty[t, j] * price[t, j]}))
        self.qty[:] = 0.0
        self.qty[syms] = out_qty[-1]

    def result(self) -> Traded:
        keys = {v: k for k, v in self.ids.items()}
        rec = np.concatenate(self.trades) if self.trades else np.zeros(0, K.BOOK_TRADE)
        times = self.data.index
        pnl = rec["pnl_y"] + rec["pnl_x"] - rec["fees"] + rec["funding"]
        frame = pd.DataFrame({
            "y": [keys[p][0] for p in rec["pair"]], "x": [keys[p][1] for p in rec["pair"]],
            "entry_time": times[rec["entry_bar"]], "exit_time": times[rec["exit_bar"]],
            "side": rec["side"], "entry_z": rec["entry_z"], "exit_z": rec["exit_z"],
            "pnl": pnl, "fees": rec["fees"], "funding": rec["funding"],
            "exit_reason": [K.REASONS[int(r)] for r in rec["reason"]]})
        is_open = (rec["reason"] == K.REASON_OPEN)
        cols = ["open_time", "equity", "gross_exposure", "net_exposure", "margin_ratio"]
        totals = dict(zip(("notional", "refused", "liquidations", "crossed", "fees", "funding"),
                          [*self.totals.tolist(), *self.costs.tolist()]))
        return Traded(pd.DataFrame(self.rows, columns=list(_WINDOW_COLUMNS)),
                      frame[~is_open].reset_index(drop=True),
                      pd.concat(self.equity, ignore_index=True)[cols] if self.equity
                      else pd.DataFrame(columns=cols),
                      pd.concat(self.positions, ignore_index=True).astype({"symbol": str}),
                      frame[is_open].reset_index(drop=True), totals)


_WINDOW_COLUMNS = ("window_start", "window_end", "y", "x", "beta", "half_life", "coint_q",
                   "weight", "pnl", "fees", "funding", "trades")


def trade(data: BookData, windows: list[Window], selections: list[pd.DataFrame],
          weights: list[np.ndarray], spec: SignalSpec, prm: TradeParams,
          brackets: dict | None = None, memo: dict | None = None) -> Traded:
    """Run the book over ``windows`` with each window's ``selections`` and ``weights``.
    ``memo``: a dict shared by the books of the same data, ``spec`` and ``prm`` (a pair's
    signal and break flags in a window are computed once for all of them)."""
    book = _Book(data, prm, brackets, {} if memo is None else memo)
    idx = data.index
    end_of = [idx[w.end] if w.end < len(idx) else idx[-1] + pd.Timedelta(milliseconds=data.bar_ms)
              for w in windows]
    for i, (w, sel, wt) in enumerate(zip(windows, selections, weights)):
        book.run(w, sel, wt, spec, i == len(windows) - 1, idx[w.start], end_of[i])
    return book.result()
