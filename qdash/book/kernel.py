"""The book's bar loop over one trade window: every selected pair at once, one account (numba).

It trades THE rule of :func:`qdash.backtest.kernel.simulate` — flat: enter short spread when
``entry <= z < stop``, long when ``-stop < z <= -entry``, only where the hedge rule allows β;
long: stop at ``z <= -stop``, exit at ``z >= -exit``; short mirrored; after a stop the same side
re-arms only once ``|z| < entry`` — with the backtest's timing for close-only bars (decided at a
bar's close, filled at the next bar's close; funding due in a bar is settled on the position held
before its fill) and its costs (``fee_rate`` per leg per fill; slippage booked as a cost, prices
stay the bar's). The single-pair backtest keeps its own loop; a test checks that this one gives
the same trades on one pair without caps.

What the book adds, per bar ``t``:

1. funding on the position held: ``-rate · qty · close`` per leg (received > 0);
2. fills: exits first, then entries. An entry's gross notional (both legs; y holds
   ``1/(1+|β|)`` of it, x ``|β|/(1+|β|)``, as the backtest sizes a log-price β) is ``weight ·
   leverage · E`` (``E`` the account's equity at this close after this bar's exits and their
   costs), then scaled down by one factor ``k ∈ [0, 1]`` (both legs, so the hedge holds) until
   each leg's symbol has ``|net| <= max_symbol_weight · E'`` over every pair and the account's
   gross is ``<= leverage · E'``, with ``E'`` = ``E`` less the full-size costs of every entry of
   the bar (so the caps still hold against the equity after those costs); ``k = 0`` places
   nothing (counted). Exits and liquidations are never refused;
3. marks at the close; maintenance margin ``Σ_symbol |net notional| · mmr`` against the equity
   (the margin balance); at ``equity <= maintenance`` every position is closed at this close
   (reason ``liquidation``) and pays, besides the taker fee and slippage, ``liq_rate`` on its
   share of each symbol's net notional;
4. the decision on ``z[t]`` (and a ``break`` flag: an open pair exits, a broken pair does not
   enter again in the window).

**Orders are netted per symbol.** The fills of one batch (a bar's exits and entries; then its
liquidations; then the last window's closes) are one order per symbol, as one account in
Binance's one-way mode sends them: the symbol's order is the net of every pair's leg fill
(signed notional at the close), and only that order pays. Per symbol, the taker fee is
``fee_rate · |order|`` and the slippage ``slip_rate · |order|`` when ``slip_rate >= 0``, else the
square-root impact ``impact · σ_bar · sqrt(|order| / quote_volume_bar) · |order|`` (Almgren et
al. 2005, Tóth et al. 2011: ``Y · σ_d · sqrt(Q / V_d)`` with daily σ and volume, which equals the
per-bar form since ``σ_d = σ_bar · sqrt(bars a day)`` and ``V_d = V_bar · bars a day``). A
symbol's cost is shared among the pairs' fills in it by their notionals, so every pair (and
every round trip) carries its part; legs that cross inside the book pay nothing. Traded
notional (``totals[0]``, the turnover) counts the orders, not the legs; ``totals[3]`` the legs'
notional that crossed inside the book instead. The entry sizing bounds
the batch's costs by the un-netted sum (the cost grows with the order), so the caps hold after
the netted costs too.

State carried between windows: one row of ``state`` per pair (columns ``S_*``) and the
account's cash in ``acct[0]``.
"""

from __future__ import annotations

import numba
import numpy as np

from ..backtest.kernel import REASON_END, REASON_EXIT, REASON_STOP, exit_reason

REASON_BREAK, REASON_DESELECTED, REASON_LIQUIDATION, REASON_OPEN = 6, 7, 8, 9
"""The book's exit reasons beyond the backtest's (codes after :mod:`qdash.backtest.kernel`'s)."""
REASONS = {REASON_EXIT: "exit", REASON_STOP: "stop", REASON_END: "end_of_data",
           REASON_BREAK: "break", REASON_DESELECTED: "deselected",
           REASON_LIQUIDATION: "liquidation", REASON_OPEN: "open"}

(S_SIDE, S_QY, S_QX, S_EY, S_EX, S_ENTRY_BAR, S_ENTRY_Z, S_ENTRY_BETA, S_FEES, S_FUND, S_PEND,
 S_PEND_BETA, S_PEND_Z, S_PEND_REASON, S_BLOCKED, S_CASH) = range(16)
N_STATE = 16
"""Columns of a pair's state: side (+1 long spread), leg quantities, entry prices, entry bar
(global), z and β at the entry decision, fees and funding of the open trade, the pending order
(0 none, ±1 enter, 2 exit) with its β, z and exit reason, the blocked side, and ``S_CASH`` the
pair's cash flows so far (realised PnL − costs + funding): its value is that plus its mark."""

BOOK_TRADE = np.dtype([
    ("pair", np.int64), ("entry_bar", np.int64), ("exit_bar", np.int64), ("side", np.int64),
    ("entry_z", np.float64), ("exit_z", np.float64), ("beta", np.float64),
    ("qty_y", np.float64), ("qty_x", np.float64), ("pnl_y", np.float64), ("pnl_x", np.float64),
    ("fees", np.float64), ("funding", np.float64), ("reason", np.int64)])
"""One round trip of a pair (``pair`` the engine's pair id, bars global): leg PnLs from prices,
``fees`` every cost (taker fees, slippage, liquidation fee), ``funding`` received."""


def new_state(n_pairs: int) -> np.ndarray:
    """Flat pairs: the state rows of ``n_pairs`` pairs never traded."""
    return np.zeros((n_pairs, N_STATE))


@numba.njit(cache=True, nogil=True)
def _slip(notional, s, t, slip_rate, impact, sigma, qv):
    """Slippage cost of a fill of ``notional`` in local symbol ``s`` at bar ``t``."""
    if slip_rate >= 0.0:
        return notional * slip_rate
    v = qv[t, s]
    if not (v > 0.0) or not (sigma[s] == sigma[s]):
        return 0.0
    return impact * sigma[s] * np.sqrt(notional / v) * notional


@numba.njit(cache=True, nogil=True)
def _order(p, qy, qx, t, price, iy, ix, flow, legs, fills):
    """Add pair ``p``'s fill of leg quantities ``qy``/``qx`` (signed) at bar ``t``'s close to
    the batch: ``flow`` the signed notional per symbol (the order), ``legs`` the sum of the
    legs' absolute notionals per symbol, ``fills[p]`` the pair's two absolute notionals."""
    ny, nx = qy * price[t, iy[p]], qx * price[t, ix[p]]
    flow[iy[p]] += ny
    flow[ix[p]] += nx
    legs[iy[p]] += abs(ny)
    legs[ix[p]] += abs(nx)
    fills[p, 0] = abs(ny)
    fills[p, 1] = abs(nx)


@numba.njit(cache=True, nogil=True)
def _order_cost(notional, s, t, fee_rate, slip_rate, impact, sigma, qv):
    """Taker fee and slippage of one order of ``notional`` (absolute) in symbol ``s``."""
    return notional * fee_rate + _slip(notional, s, t, slip_rate, impact, sigma, qv)


@numba.njit(cache=True, nogil=True)
def _settle(t, flow, legs, fills, rec, st, iy, ix, fee_rate, slip_rate, impact, sigma, qv,
            acct, pair_fees, trades, totals):
    """Pay the batch's orders (one per symbol, the net ``flow``) and share each symbol's cost
    among the pairs' fills by notional: an exit's part goes to its trade record ``rec[p]``, an
    entry's (``rec[p] == -1``) to the open trade's fees. Empties the batch."""
    cost = np.zeros(flow.shape[0])
    for s in range(flow.shape[0]):
        if legs[s] > 0.0:
            cost[s] = _order_cost(abs(flow[s]), s, t, fee_rate, slip_rate, impact, sigma, qv)
            totals[0] += abs(flow[s])
            totals[3] += legs[s] - abs(flow[s])
    for p in range(rec.shape[0]):
        if rec[p] == -2:
            continue
        sy, sx = iy[p], ix[p]
        c = 0.0
        if legs[sy] > 0.0:
            c += cost[sy] * fills[p, 0] / legs[sy]
        if legs[sx] > 0.0:
            c += cost[sx] * fills[p, 1] / legs[sx]
        acct[0] -= c
        st[p, S_CASH] -= c
        pair_fees[p] += c
        if rec[p] >= 0:
            trades[rec[p]].fees += c
        else:
            st[p, S_FEES] += c
        rec[p] = -2
        fills[p, 0] = 0.0
        fills[p, 1] = 0.0
    flow[:] = 0.0
    legs[:] = 0.0


@numba.njit(cache=True, nogil=True)
def _close(p, t, bar0, reason, exit_z, st, price, iy, ix, pid, extra_fee, trades, nt,
           pair_fees, flow, legs, fills, rec):
    """Close pair ``p`` at bar ``t``'s close as trade record ``nt``: its legs join the batch
    (their costs come at :func:`_settle`), ``extra_fee`` is paid now; returns the cash delta
    (leg PnLs minus ``extra_fee``)."""
    _order(p, -st[p, S_QY], -st[p, S_QX], t, price, iy, ix, flow, legs, fills)
    rec[p] = nt
    pnl_y, pnl_x = _record(p, t, bar0, reason, exit_z, st, price, iy, ix, pid, trades, nt,
                           st[p, S_FEES] + extra_fee)
    delta = pnl_y + pnl_x - extra_fee
    st[p, S_CASH] += delta
    pair_fees[p] += extra_fee
    st[p, S_SIDE] = 0.0
    st[p, S_QY] = 0.0
    st[p, S_QX] = 0.0
    return delta


@numba.njit(cache=True, nogil=True)
def _max_k(net, d, cap):
    """The largest ``k`` in [0, 1] with ``|net + k·d| <= cap`` (0 when none)."""
    if abs(net + d) <= cap:
        return 1.0
    if d > 0.0:
        k = (cap - net) / d
    elif d < 0.0:
        k = (net + cap) / -d
    else:
        return 0.0
    if k <= 0.0:
        return 0.0
    return min(k, 1.0)


@numba.njit(cache=True, nogil=True)
def _book(st, price, iy, ix, n_sym, t):
    """(unrealised PnL, net notional per local symbol, gross notional) at bar ``t``'s close."""
    net = np.zeros(n_sym)
    gross = 0.0
    unreal = 0.0
    for p in range(st.shape[0]):
        if st[p, S_SIDE] != 0.0:
            sy, sx = iy[p], ix[p]
            ny = st[p, S_QY] * price[t, sy]
            nx = st[p, S_QX] * price[t, sx]
            net[sy] += ny
            net[sx] += nx
            gross += abs(ny) + abs(nx)
            unreal += st[p, S_QY] * (price[t, sy] - st[p, S_EY]) + \
                st[p, S_QX] * (price[t, sx] - st[p, S_EX])
    return unreal, net, gross


@numba.njit(cache=True, nogil=True)
def run_window(price, has_bar, qv, fund, mmr, sigma, iy, ix, pid, weight, z, beta, ok, broken,
               st, acct, bar0, last_window, entry, exit_, stop, leverage, max_symbol_weight,
               fee_rate, slip_rate, impact, liq_rate, trades, out_equity, out_gross, out_net,
               out_ratio, out_qty, pair_fees, pair_fund, pair_entries, totals):
    """Run one window of ``n`` bars (rows of the ``n × symbols`` arrays; bar ``t`` is global bar
    ``bar0 + t``) for the ``P`` pairs of ``st`` (legs ``iy``/``ix`` local symbol columns,
    ``weight`` their share of the gross, ``z``/``beta``/``ok``/``broken`` ``P × n``).

    ``price`` closes (a silent symbol's carried), ``has_bar`` False where a symbol has no bar
    (its fills wait), ``qv`` quote volume per bar (NaN: unknown), ``fund`` funding rates settled
    in the bar, ``mmr`` maintenance rate per symbol, ``sigma`` per-bar log-return volatility per
    symbol. Outputs per bar: equity, gross and net notional, margin ratio (maintenance /
    equity, before a liquidation at that bar) and held quantity per symbol; per pair: costs,
    funding and entries in the window; ``trades`` records (returns how many); ``totals``
    (added to): [traded notional (the netted orders), entries refused by the caps,
    liquidations, the legs' notional crossed inside the book].
    ``last_window``: at its last bar, close what is open (``end_of_data``) when ``> 0``,
    record it as ``open`` (no exit cost) when ``< 0``.
    """
    n, n_sym = price.shape
    n_pairs = st.shape[0]
    nt = 0
    flow, legs = np.zeros(n_sym), np.zeros(n_sym)       # the batch of orders (module doc)
    fills = np.zeros((n_pairs, 2))
    rec = np.full(n_pairs, -2, dtype=np.int64)          # -2 no fill, -1 entry, else exit's record
    for t in range(n):
        # 1. funding on the position held before this bar's fill (fills are at the close)
        for p in range(n_pairs):
            if st[p, S_SIDE] != 0.0:
                f = 0.0
                ry, rx = fund[t, iy[p]], fund[t, ix[p]]
                if ry == ry and ry != 0.0:
                    f -= ry * st[p, S_QY] * price[t, iy[p]]
                if rx == rx and rx != 0.0:
                    f -= rx * st[p, S_QX] * price[t, ix[p]]
                acct[0] += f
                st[p, S_CASH] += f
                st[p, S_FUND] += f
                pair_fund[p] += f
        # 2a. exits (their orders join the bar's batch)
        for p in range(n_pairs):
            if st[p, S_PEND] == 2.0 and has_bar[t, iy[p]] and has_bar[t, ix[p]]:
                acct[0] += _close(p, t, bar0, np.int64(st[p, S_PEND_REASON]), st[p, S_PEND_Z],
                                  st, price, iy, ix, pid, 0.0, trades, nt, pair_fees, flow,
                                  legs, fills, rec)
                nt += 1
                if st[p, S_PEND_REASON] == REASON_STOP:
                    st[p, S_BLOCKED] = trades[nt - 1].side
                st[p, S_PEND] = 0.0
        # 2b. entries, sized on the equity after the exits' costs (un-netted: a bound), capped
        # against it less the full-size costs of every entry of the bar (also a bound)
        unreal, net, gross = _book(st, price, iy, ix, n_sym, t)
        equity = acct[0] + unreal
        for s in range(n_sym):
            if legs[s] > 0.0:
                equity -= _order_cost(legs[s], s, t, fee_rate, slip_rate, impact, sigma, qv)
        bound = legs.copy()                         # per symbol, the batch's legs at full size
        for p in range(n_pairs):
            if (st[p, S_PEND] == 1.0 or st[p, S_PEND] == -1.0) and has_bar[t, iy[p]] and \
                    has_bar[t, ix[p]]:
                b = abs(st[p, S_PEND_BETA])
                g = weight[p] * leverage * equity
                bound[iy[p]] += g / (1.0 + b)
                bound[ix[p]] += g * b / (1.0 + b)
        base = acct[0] + unreal
        for s in range(n_sym):
            if bound[s] > 0.0:
                base -= _order_cost(bound[s], s, t, fee_rate, slip_rate, impact, sigma, qv)
        for p in range(n_pairs):
            side = st[p, S_PEND]
            if not (side == 1.0 or side == -1.0):
                continue
            sy, sx = iy[p], ix[p]
            if not (has_bar[t, sy] and has_bar[t, sx]):
                continue                            # no price this bar: the order waits
            st[p, S_PEND] = 0.0
            b = st[p, S_PEND_BETA]
            py, px = price[t, sy], price[t, sx]
            g = weight[p] * leverage * equity
            if not (base > 0.0 and g > 0.0):
                totals[1] += 1.0
                continue
            ny = side * g / (1.0 + abs(b))          # y's notional; x holds β times it
            nx = -side * b * g / (1.0 + abs(b))
            cap = max_symbol_weight * base
            k = min(_max_k(net[sy], ny, cap), _max_k(net[sx], nx, cap))
            room = leverage * base - gross
            if room < g:
                k = min(k, max(room, 0.0) / g)
            if not k > 0.0:
                totals[1] += 1.0
                continue
            qy = k * ny / py
            qx = k * nx / px
            fy, fx = abs(qy) * py, abs(qx) * px
            _order(p, qy, qx, t, price, iy, ix, flow, legs, fills)
            rec[p] = -1
            st[p, S_SIDE] = side
            st[p, S_QY] = qy
            st[p, S_QX] = qx
            st[p, S_EY] = py
            st[p, S_EX] = px
            st[p, S_ENTRY_BAR] = bar0 + t
            st[p, S_ENTRY_Z] = st[p, S_PEND_Z]
            st[p, S_ENTRY_BETA] = b
            st[p, S_FEES] = 0.0                     # its part of the orders' costs at _settle
            st[p, S_FUND] = 0.0
            pair_entries[p] += 1
            net[sy] += qy * py
            net[sx] += qx * px
            gross += fy + fx
        _settle(t, flow, legs, fills, rec, st, iy, ix, fee_rate, slip_rate, impact, sigma, qv,
                acct, pair_fees, trades, totals)
        # 3. mark, margin, liquidation
        unreal, net, gross = _book(st, price, iy, ix, n_sym, t)
        equity = acct[0] + unreal
        maint = 0.0
        for s in range(n_sym):
            maint += abs(net[s]) * mmr[s]
        out_ratio[t] = maint / equity if equity > 0.0 else (np.inf if maint > 0.0 else 0.0)
        if maint > 0.0 and equity <= maint:
            leg_sum = np.zeros(n_sym)
            for p in range(n_pairs):
                if st[p, S_SIDE] != 0.0:
                    leg_sum[iy[p]] += abs(st[p, S_QY]) * price[t, iy[p]]
                    leg_sum[ix[p]] += abs(st[p, S_QX]) * price[t, ix[p]]
            for p in range(n_pairs):
                if st[p, S_SIDE] != 0.0:
                    sy, sx = iy[p], ix[p]
                    ly, lx = abs(st[p, S_QY]) * price[t, sy], abs(st[p, S_QX]) * price[t, sx]
                    extra = liq_rate * (abs(net[sy]) * ly / leg_sum[sy]
                                        + abs(net[sx]) * lx / leg_sum[sx])
                    acct[0] += _close(p, t, bar0, REASON_LIQUIDATION, z[p, t], st, price, iy,
                                      ix, pid, extra, trades, nt, pair_fees, flow, legs, fills,
                                      rec)
                    nt += 1
                    st[p, S_PEND] = 0.0
            _settle(t, flow, legs, fills, rec, st, iy, ix, fee_rate, slip_rate, impact, sigma,
                    qv, acct, pair_fees, trades, totals)
            totals[2] += 1.0
            unreal, net, gross = _book(st, price, iy, ix, n_sym, t)
            equity = acct[0] + unreal
        if t == n - 1 and last_window != 0:
            for p in range(n_pairs):
                if st[p, S_SIDE] != 0.0:
                    if last_window > 0:
                        acct[0] += _close(p, t, bar0, REASON_END, z[p, t], st, price, iy, ix,
                                          pid, 0.0, trades, nt, pair_fees, flow, legs, fills,
                                          rec)
                    else:
                        _record(p, t, bar0, REASON_OPEN, z[p, t], st, price, iy, ix, pid,
                                trades, nt, st[p, S_FEES])    # marked, still open
                    nt += 1
            _settle(t, flow, legs, fills, rec, st, iy, ix, fee_rate, slip_rate, impact, sigma,
                    qv, acct, pair_fees, trades, totals)
            unreal, net, gross = _book(st, price, iy, ix, n_sym, t)
            equity = acct[0] + unreal
        out_equity[t] = equity
        out_gross[t] = gross
        s_net = 0.0
        for s in range(n_sym):
            s_net += net[s]
            out_qty[t, s] = 0.0
        for p in range(n_pairs):
            out_qty[t, iy[p]] += st[p, S_QY]
            out_qty[t, ix[p]] += st[p, S_QX]
        out_net[t] = s_net
        # 4. decide on z[t]; the order fills at the next bar (the next window's first bar)
        for p in range(n_pairs):
            _decide(p, t, st, z, beta, ok, broken, entry, exit_, stop)
    return nt


@numba.njit(cache=True, nogil=True)
def _record(p, t, bar0, reason, exit_z, st, price, iy, ix, pid, trades, nt, fees):
    """Write pair ``p``'s position as trade record ``nt``, marked at bar ``t``'s close, with
    ``fees`` (every cost of the round trip); returns the leg PnLs."""
    pnl_y = st[p, S_QY] * (price[t, iy[p]] - st[p, S_EY])
    pnl_x = st[p, S_QX] * (price[t, ix[p]] - st[p, S_EX])
    r = trades[nt]
    r.pair = pid[p]
    r.entry_bar = np.int64(st[p, S_ENTRY_BAR])
    r.exit_bar = bar0 + t
    r.side = np.int64(st[p, S_SIDE])
    r.entry_z = st[p, S_ENTRY_Z]
    r.exit_z = exit_z
    r.beta = st[p, S_ENTRY_BETA]
    r.qty_y = st[p, S_QY]
    r.qty_x = st[p, S_QX]
    r.pnl_y = pnl_y
    r.pnl_x = pnl_x
    r.fees = fees
    r.funding = st[p, S_FUND]
    r.reason = reason
    return pnl_y, pnl_x


@numba.njit(cache=True, nogil=True)
def _decide(p, t, st, z, beta, ok, broken, entry, exit_, stop):
    """The rule on ``z[p, t]``: set pair ``p``'s pending order (as the backtest's kernel)."""
    if st[p, S_PEND] != 0.0:
        return                                       # an order waits for its fill
    side = st[p, S_SIDE]
    zt = z[p, t]
    if side != 0.0:
        if broken[p, t]:
            st[p, S_PEND] = 2.0
            st[p, S_PEND_REASON] = REASON_BREAK
            st[p, S_PEND_Z] = zt
            return
        reason = exit_reason(side, zt, stop, exit_)
        if reason != 0:
            st[p, S_PEND] = 2.0
            st[p, S_PEND_REASON] = reason
            st[p, S_PEND_Z] = zt
        return
    blocked = st[p, S_BLOCKED]
    if blocked != 0.0 and abs(zt) < entry:
        st[p, S_BLOCKED] = 0.0
        blocked = 0.0
    b = beta[p, t]
    if broken[p, t] or not (b == b):
        return
    want = 0.0
    if zt >= entry and blocked != -1.0:
        want = -1.0
    elif zt <= -entry and blocked != 1.0:
        want = 1.0
    if want != 0.0 and abs(zt) < stop and ok[p, t]:
        st[p, S_PEND] = want
        st[p, S_PEND_BETA] = b
        st[p, S_PEND_Z] = zt
