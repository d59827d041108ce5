"""The sequential position loop of the pair mean-reversion backtest (numba-compiled).

Why numba: the position path is inherently sequential (sizing depends on current equity, exits on
the open trade, re-entry on the last exit), so it cannot be vectorised; the same loop in plain
Python costs ~10 s per million bars, compiled ~10-50 ms, which is what lets a backtest re-run on
every slider move and a 1,216-combination sweep finish in about a second. ``cache=True`` keeps the
compiled code on disk between sessions; ``nogil=True`` lets a sweep run kernels in threads.

Everything here works on aligned float64 arrays, one element per bar, and is documented in
:func:`simulate`; :mod:`qdash.backtest.engine` builds those arrays and the DataFrames around them.
"""

from __future__ import annotations

import numba
import numpy as np

# pending order / exit reason codes
REASON_EXIT, REASON_STOP, REASON_TIME, REASON_END, REASON_GAP = 1, 2, 3, 4, 5
REFUSED_STOP, REFUSED_BETA = 1, 2  # why an entry the rule wanted was not placed
REASONS = {REASON_EXIT: "exit", REASON_STOP: "stop", REASON_TIME: "time",
           REASON_END: "end_of_data", REASON_GAP: "gap"}

TRADE_RECORD = np.dtype([
    ("entry_bar", np.int64), ("exit_bar", np.int64), ("side", np.int64), ("entry_z", np.float64),
    ("exit_z", np.float64), ("beta", np.float64), ("qty_y", np.float64), ("qty_x", np.float64),
    ("entry_price_y", np.float64), ("entry_price_x", np.float64), ("exit_price_y", np.float64),
    ("exit_price_x", np.float64), ("pnl_y", np.float64), ("pnl_x", np.float64),
    ("fees", np.float64), ("slippage", np.float64), ("funding", np.float64),
    ("reason", np.int64), ("notional", np.float64)])
"""One round trip: bars of entry and exit (0-based), side (+1 long spread, −1 short), z and β at
the decision, leg quantities, fill prices, leg PnLs, its costs and funding (quote currency),
the exit reason (``REASON_*``) and the exit notional."""

TOTALS_RECORD = np.dtype([("fees", np.float64), ("slippage", np.float64),
                          ("funding", np.float64), ("notional", np.float64),
                          ("open", np.float64), ("no_entry_beta", np.int64),
                          ("no_entry_stop", np.int64)])
"""A run's totals: fees, slippage, funding received, traded notional (quote currency); ``open``
is 1 when a position is left open at the end; ``no_entry_beta`` / ``no_entry_stop``: bars flat
with ``|z| >= entry`` where no entry was placed because the hedge rule refused β / because
``|z| >= stop``."""


@numba.njit(cache=True, nogil=True)
def _grow(trades):
    """Double the trade records (amortised O(1) per trade)."""
    out = np.empty(trades.shape[0] * 2, TRADE_RECORD)
    out[:trades.shape[0]] = trades
    return out


@numba.njit(cache=True, nogil=True)
def _slippage(ny, nx, sy, sx):
    """Slippage cost of legs of notional ``ny``/``nx`` at rates ``sy``/``sx`` (one rate on both
    legs multiplies their gross notional once)."""
    if sy == sx:
        return (ny + nx) * sy
    return ny * sy + nx * sx


@numba.njit(cache=True, nogil=True)
def _close(trades, nt, t, py, px, side, qy, qx, ey, ex, entry_bar, entry_z, exit_z, entry_beta,
           t_fees, t_slip, t_fund, reason, fee_rate, slip_y, slip_x, totals):
    """Close the open position at ``(py, px)`` in bar ``t``: book the exit costs in ``totals``
    and record the round trip as record ``nt`` of ``trades`` (grown when full).

    Returns ``(trades, cash_delta)``: the leg PnLs minus the exit fee and slippage."""
    notional = abs(qy) * py + abs(qx) * px
    fee = notional * fee_rate
    slip = _slippage(abs(qy) * py, abs(qx) * px, slip_y[t], slip_x[t])
    pnl_y = qy * (py - ey)
    pnl_x = qx * (px - ex)
    totals.fees += fee
    totals.slippage += slip
    totals.notional += notional
    if nt == trades.shape[0]:
        trades = _grow(trades)
    r = trades[nt]
    r.entry_bar = entry_bar
    r.exit_bar = t
    r.side = side
    r.entry_z = entry_z
    r.exit_z = exit_z
    r.beta = entry_beta
    r.qty_y = qy
    r.qty_x = qx
    r.entry_price_y = ey
    r.entry_price_x = ex
    r.exit_price_y = py
    r.exit_price_x = px
    r.pnl_y = pnl_y
    r.pnl_x = pnl_x
    r.fees = t_fees + fee
    r.slippage = t_slip + slip
    r.funding = t_fund
    r.reason = reason
    r.notional = notional
    return trades, pnl_y + pnl_x - fee - slip


@numba.njit(cache=True, nogil=True)
def exit_reason(side, zt, stop, exit_):
    """THE exit rule of an open spread position (+1 long, −1 short) at z ``zt``:
    :data:`REASON_STOP` beyond the stop (long: ``z <= -stop``), :data:`REASON_EXIT` back at the
    exit level (long: ``z >= -exit_``), else 0; short mirrored."""
    if side == 1:
        if zt <= -stop:
            return REASON_STOP
        if zt >= -exit_:
            return REASON_EXIT
    else:
        if zt >= stop:
            return REASON_STOP
        if zt <= exit_:
            return REASON_EXIT
    return 0


@numba.njit(cache=True, nogil=True)
def _flat_at(t, cash, equity, side_out, qy_out, qx_out):
    """Book bar ``t`` as flat after a close at its close: equity is the cash."""
    equity[t] = cash
    side_out[t] = 0
    qy_out[t] = 0.0
    qx_out[t] = 0.0


@numba.njit(cache=True, nogil=True)
def decide(side, zt, beta_t, hedge_ok_t, blocked, held_next, entry, exit_, stop, max_hold):
    """THE rule at one bar's close, for the backtest and the paper trader alike.

    ``side``: the position held (+1 long spread, −1 short, 0 flat); ``zt``/``beta_t``: the
    signal's z and β at the close; ``hedge_ok_t``: the hedge rule at this bar; ``blocked``: the
    side not re-entered until ``|z| < entry`` (0: none); ``held_next``: bars the open trade
    will have been held when the decision fills. Flat → enter short spread if
    ``entry <= z < stop``, long if ``-stop < z <= -entry``, only where the hedge rule allows;
    long → stop if ``z <= -stop``, exit if ``z >= -exit_``, time exit once ``held_next >=
    max_hold``; short mirrored.

    Returns ``(action, reason, blocked, refused)``: ``action`` 0 none, +1/−1 enter long/short
    spread, 2 exit; ``reason`` the exit's ``REASON_*`` (0 for entries); ``blocked`` updated;
    ``refused`` :data:`REFUSED_STOP`/:data:`REFUSED_BETA` when an entry was wanted and refused
    (0 otherwise)."""
    if blocked != 0 and abs(zt) < entry:
        blocked = 0
    if side == 0:
        if not beta_t == beta_t:
            return 0, 0, blocked, 0
        want = 0
        if zt >= entry and blocked != -1:
            want = -1
        elif zt <= -entry and blocked != 1:
            want = 1
        if want != 0 and abs(zt) >= stop:
            return 0, 0, blocked, REFUSED_STOP
        if want != 0 and not hedge_ok_t:
            return 0, 0, blocked, REFUSED_BETA
        return want, 0, blocked, 0
    reason = 0
    if side == 1:
        if zt <= -stop:
            reason = REASON_STOP
        elif zt >= -exit_:
            reason = REASON_EXIT
    else:
        if zt >= stop:
            reason = REASON_STOP
        elif zt <= exit_:
            reason = REASON_EXIT
    if reason == 0 and held_next >= max_hold:
        reason = REASON_TIME
    return (2 if reason != 0 else 0), reason, blocked, 0


@numba.njit(cache=True, nogil=True)
def entry_size(side, beta, py, px, cash, alloc_frac, leverage, log_beta):
    """Signed leg quantities ``(qty_y, qty_x)`` of an entry on ``side`` at prices ``(py, px)``
    with ``cash`` of equity (quote currency); ``(0, 0)`` when nothing can be bought. See
    :func:`simulate` for the formulas (gross notional = ``alloc_frac × leverage × cash``)."""
    denom = py * (1.0 + abs(beta)) if log_beta else py + abs(beta) * px
    if not (cash > 0.0 and denom > 0.0):
        return 0.0, 0.0
    q = alloc_frac * leverage * cash / denom
    return side * q, -side * beta * q * (py / px if log_beta else 1.0)


@numba.njit(cache=True, nogil=True)
def simulate(exec_y, exec_x, mark_y, mark_x, beta, z, hedge_ok, seg_end, fund_y, fund_x, entry,
             exit_, stop, max_hold, capital, alloc_frac, leverage, fee_rate, slip_y, slip_x,
             fill_then_fund, close_at_end, log_beta):
    """Run the pair mean-reversion rule bar by bar.

    Arrays (length n, aligned by bar): ``exec_y/exec_x`` fill prices (the bar's open, or close
    when only closes exist), ``mark_y/mark_x`` closes (equity is marked there), ``beta`` hedge
    ratio known at the bar's close, ``z`` spread z-score at the bar's close, ``hedge_ok`` True
    where the hedge rule allows an entry with that β
    (:func:`qdash.analytics.signal.hedge_ok`), ``seg_end`` True at
    the last bar before a hole in the data, ``fund_y/fund_x`` funding rate settled during the bar
    (0 when none), ``slip_y/slip_x`` each leg's slippage rate (a fraction of the fill's
    notional) for fills in the bar.

    Per bar ``t``: (1) the order decided at ``t-1`` fills at ``exec[t]``; funding due in bar ``t``
    is settled on the position held at that moment (``fill_then_fund`` True when fills happen at
    the open, i.e. before a funding time inside the bar); (2) equity is marked at the close;
    (3) the rule looks at ``z[t]``: flat → enter short spread if ``entry <= z < stop``, long
    spread if ``-stop < z <= -entry``, and only where ``hedge_ok[t]`` (a bar already beyond the
    stop, or with a refused β, is counted in the totals and not entered); long → stop if
    ``z <= -stop``, exit if ``z >= -exit_``, time exit once the trade will have been held
    ``max_hold`` bars; short mirrored. After a stop or time exit the
    same side is re-armed only once ``|z| < entry``, so a still-stretched spread is not re-entered
    at once. At the last bar before a hole (``seg_end``) a position is closed at that bar's close
    (reason gap) and nothing is decided; after the hole the signal restarts, so nothing is
    entered before its windows refill. An order decided at the last bar has no next bar and is
    dropped; a position still open then is closed at the last close (reason end_of_data) when
    ``close_at_end``.

    Sizing at entry (gross notional = allocation): with a price-space beta (``log_beta``
    False) ``q = alloc_frac * leverage * equity / (py + |beta| * px)``, ``qty_y = side * q``,
    ``qty_x = -side * beta * q``; with a log-price beta (an elasticity) the x leg holds beta
    times y's notional: ``q = alloc_frac * leverage * equity / (py * (1 + |beta|))``,
    ``qty_x = -side * beta * q * py / px``. Costs per leg per fill:
    fee ``fee_rate * notional``, slippage ``slip[t] * notional`` (both booked as costs; prices
    stay the raw bar prices). Funding received = ``-rate * qty * exec price`` per leg.

    Returns ``(equity, side, qty_y, qty_x, trades, n_trades, totals)``: ``trades`` an array
    of :data:`TRADE_RECORD` (its first ``n_trades`` are the round trips), ``totals`` one
    :data:`TOTALS_RECORD` (an array of length 1).
    """
    n = exec_y.shape[0]
    equity = np.empty(n)
    side_out = np.zeros(n, np.int8)
    qy_out = np.zeros(n)
    qx_out = np.zeros(n)
    trades = np.empty(64, TRADE_RECORD)
    run_totals = np.zeros(1, TOTALS_RECORD)
    totals = run_totals[0]
    nt = 0

    cash = capital  # initial capital + realised PnL - costs + funding
    side = 0
    qy = 0.0
    qx = 0.0
    ey = 0.0
    ex = 0.0
    entry_bar = 0
    t_fees = 0.0
    t_slip = 0.0
    t_fund = 0.0
    pending = 0  # +1/-1 enter long/short spread, 2 exit
    pend_beta = 0.0
    pend_z = 0.0
    pend_reason = 0
    blocked = 0  # side not re-entered until |z| < entry
    entry_z = 0.0
    entry_beta = 0.0

    for t in range(n):
        for step in range(2):
            if (step == 0) != fill_then_fund:
                # ---- funding settled on the position held now
                if side != 0:
                    f = 0.0
                    if fund_y[t] == fund_y[t] and fund_y[t] != 0.0:
                        f -= fund_y[t] * qy * exec_y[t]
                    if fund_x[t] == fund_x[t] and fund_x[t] != 0.0:
                        f -= fund_x[t] * qx * exec_x[t]
                    cash += f
                    t_fund += f
                    totals.funding += f
                continue
            # ---- fill the order decided at t-1
            if pending == 0:
                continue
            py = exec_y[t]
            px = exec_x[t]
            if not (py == py and px == px):
                continue  # no price this bar: the order waits for the next one
            if pending == 2:
                trades, delta = _close(trades, nt, t, py, px, side, qy, qx, ey, ex, entry_bar,
                                       entry_z, pend_z, entry_beta, t_fees, t_slip, t_fund,
                                       pend_reason, fee_rate, slip_y, slip_x,
                                       totals)
                cash += delta
                nt += 1
                if pend_reason == REASON_STOP or pend_reason == REASON_TIME:
                    blocked = side
                side = 0
                qy = 0.0
                qx = 0.0
            else:
                sy, sx = entry_size(pending, pend_beta, py, px, cash, alloc_frac, leverage,
                                    log_beta)
                if sy != 0.0:
                    side = pending
                    qy = sy
                    qx = sx
                    ey = py
                    ex = px
                    entry_bar = t
                    entry_z = pend_z
                    entry_beta = pend_beta
                    notional = abs(qy) * py + abs(qx) * px
                    fee = notional * fee_rate
                    slip = _slippage(abs(qy) * py, abs(qx) * px, slip_y[t], slip_x[t])
                    cash -= fee + slip
                    t_fees = fee
                    t_slip = slip
                    t_fund = 0.0
                    totals.fees += fee
                    totals.slippage += slip
                    totals.notional += notional
            pending = 0

        # ---- mark at the close
        equity[t] = cash + qy * (mark_y[t] - ey) + qx * (mark_x[t] - ex)
        side_out[t] = side
        qy_out[t] = qy
        qx_out[t] = qx

        # ---- decide on z[t]; fills at t+1
        if t == n - 1:
            break
        if seg_end[t]:
            # a hole follows: flat at this close, decide nothing until the signal restarts
            if side != 0:
                trades, delta = _close(trades, nt, t, mark_y[t], mark_x[t], side, qy, qx, ey,
                                       ex, entry_bar, entry_z, z[t], entry_beta, t_fees, t_slip,
                                       t_fund, REASON_GAP, fee_rate, slip_y, slip_x,
                                       totals)
                cash += delta
                nt += 1
                _flat_at(t, cash, equity, side_out, qy_out, qx_out)
                side = 0
                qy = 0.0
                qx = 0.0
            blocked = 0
            continue
        zt = z[t]
        action, reason, blocked, refused = decide(side, zt, beta[t], hedge_ok[t], blocked,
                                                  t + 1 - entry_bar, entry, exit_, stop,
                                                  max_hold)
        if refused == REFUSED_STOP:
            totals.no_entry_stop += 1
        elif refused == REFUSED_BETA:
            totals.no_entry_beta += 1
        if action != 0:
            pending = action
            pend_beta = beta[t]
            pend_z = zt
            pend_reason = reason

    if side != 0 and close_at_end and n > 0:
        t = n - 1
        trades, delta = _close(trades, nt, t, mark_y[t], mark_x[t], side, qy, qx, ey, ex,
                               entry_bar, entry_z, z[t], entry_beta, t_fees, t_slip, t_fund,
                               REASON_END, fee_rate, slip_y, slip_x, totals)
        cash += delta
        nt += 1
        _flat_at(t, cash, equity, side_out, qy_out, qx_out)
    elif side != 0:
        totals.open = 1.0
    return equity, side_out, qy_out, qx_out, trades, nt, run_totals
