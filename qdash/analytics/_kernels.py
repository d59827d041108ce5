"""Sequential numeric kernels of the pair analytics, compiled with numba.

Why numba: the Kalman filter and the sliding-window statistics are recursions (each bar depends on
the previous state), so numpy cannot vectorise them. A Python loop costs ~5 µs a bar; the compiled
loop costs a few ns, which is what makes 86,400-bar refreshes and >= 50,000 live updates per second
possible. ``cache=True`` keeps the compiled code on disk, so only the first import on a machine
pays the compile time. ``error_model="numpy"``: a division by zero gives inf/NaN, as numpy's,
instead of raising (every division here is guarded; the check cost a branch per division and
kept unused results alive).

The batch path (:func:`pair_run`) and the live path (:func:`pair_step`, one bar) execute the same
step function on the same state arrays, so feeding bars one at a time reproduces the batch series
exactly.

Sliding moments use Welford-style add/remove updates on deviations from the running mean (no
large-sum cancellation, O(1) a bar). A pair of values is added only when both are finite; a window
statistic is defined only when the window holds ``window`` finite values (pandas'
``min_periods=window`` rule).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# -- bivariate sliding moments: st[o:o+6] = n, mean_x, mean_y, Sxx, Syy, Sxy ----------------------
N_MOM = 6


@njit(cache=True, error_model="numpy", inline="always")
def _mom_add(st, o, x, y):
    n = st[o] + 1.0
    dx = x - st[o + 1]
    dy = y - st[o + 2]
    mx = st[o + 1] + dx / n
    my = st[o + 2] + dy / n
    st[o + 3] += dx * (x - mx)
    st[o + 4] += dy * (y - my)
    st[o + 5] += dx * (y - my)
    st[o] = n
    st[o + 1] = mx
    st[o + 2] = my


@njit(cache=True, error_model="numpy", inline="always")
def _mom_remove(st, o, x, y):
    n1 = st[o] - 1.0
    if n1 <= 0.0:
        for k in range(N_MOM):
            st[o + k] = 0.0
        return
    mx, my = st[o + 1], st[o + 2]
    mx1 = mx - (x - mx) / n1
    my1 = my - (y - my) / n1
    st[o + 3] = max(st[o + 3] - (x - mx1) * (x - mx), 0.0)
    st[o + 4] = max(st[o + 4] - (y - my1) * (y - my), 0.0)
    st[o + 5] -= (x - mx1) * (y - my)
    st[o] = n1
    st[o + 1] = mx1
    st[o + 2] = my1


@njit(cache=True, error_model="numpy", inline="always")
def _slide(st, o, buf, b0, w, count, x, y):
    """Push (x, y) into the window ring buf[b0:b0+2w] (x at even, y at odd slots); drop the oldest.

    ``count`` is how many pairs were pushed before; returns nothing (caller increments)."""
    pos = b0 + 2 * (count % w)
    if count >= w:
        ox, oy = buf[pos], buf[pos + 1]
        if math.isfinite(ox) and math.isfinite(oy):
            _mom_remove(st, o, ox, oy)
    buf[pos] = x
    buf[pos + 1] = y
    if math.isfinite(x) and math.isfinite(y):
        _mom_add(st, o, x, y)


@njit(cache=True, error_model="numpy", inline="always")
def _tiny(s, n, m):
    """True when a sum of squared deviations ``s`` over ``n`` values of mean ``m`` is only noise."""
    return s <= n * 1e-13 * m * m or s <= 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _ols_from(st, o, intercept):
    """(beta, alpha) of y on x from the moments at ``o``; NaN when x has no spread."""
    n = st[o]
    mx, my, sxx, sxy = st[o + 1], st[o + 2], st[o + 3], st[o + 5]
    if intercept:
        if n < 2.0 or _tiny(sxx, n, mx):
            return np.nan, np.nan
        b = sxy / sxx
        return b, my - b * mx
    den = sxx + n * mx * mx
    if n < 1.0 or den <= 0.0:
        return np.nan, 0.0
    return (sxy + n * mx * my) / den, 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _corr_from(st, o):
    n = st[o]
    sxx, syy = st[o + 3], st[o + 4]
    if n < 2.0 or _tiny(sxx, n, st[o + 1]) or _tiny(syy, n, st[o + 2]):
        return np.nan
    return st[o + 5] / math.sqrt(sxx * syy)


@njit(cache=True, error_model="numpy", inline="always")
def _z_from(st, o, v, ddof):
    """z of value v against the window moments at o (x slot used, y slot mirrors x)."""
    n = st[o]
    m, s = st[o + 1], st[o + 3]
    if n - ddof <= 0.0 or _tiny(s, n, m):
        return np.nan
    return (v - m) / math.sqrt(s / (n - ddof))


# -- Kalman: st[o:o+8] = beta, a, P00, P01, P11, x_ref, R, initialised -------------------------
N_KF = 8


@njit(cache=True, error_model="numpy", inline="always")
def _kf_init(st, o, mom, m0, x0, y0, r):
    """Start the filter from the OLS fit held in the moments ``mom[m0:m0+6]`` (values shifted by
    ``x0``, ``y0``). Returns False (filter stays off) when x has no spread in that window.

    Centring: the observation row is ``[x_t − x_ref, 1]`` with ``x_ref`` the window's mean of x, so
    the state ``(beta, a)`` is identified at any price level (``a`` is the spread's level at
    ``x_ref``; ``alpha = a − beta·x_ref``). The prior is the OLS posterior of the window:
    ``(beta, a) = (Sxy/Sxx, mean y)``, ``P = R·diag(1/Sxx, 1/n)``, ``R`` = ``r`` when > 0, else
    the OLS residual variance (ddof 2)."""
    n, mx, my, sxx, syy, sxy = (mom[m0], mom[m0 + 1], mom[m0 + 2], mom[m0 + 3], mom[m0 + 4],
                                mom[m0 + 5])
    if n < 3.0 or _tiny(sxx, n, mx):
        return False
    b = sxy / sxx
    rr = r
    if not rr > 0.0:
        rr = max(syy - sxy * b, 0.0) / (n - 2.0)
        if not rr > 0.0:
            rr = 1e-12 * (1.0 + my * my)
    st[o] = b
    st[o + 1] = my + y0
    st[o + 2] = rr / sxx
    st[o + 3] = 0.0
    st[o + 4] = rr / n
    st[o + 5] = mx + x0
    st[o + 6] = rr
    st[o + 7] = 1.0
    return True


@njit(cache=True, error_model="numpy", inline="always")
def _kf_step(st, o, y, x, inv_keep):
    """One predict/update of the state (beta, a) with H = [x − x_ref, 1].

    Predict: F = I, ``P ← P / (1 − delta)`` (``inv_keep = 1/(1 − delta)``), i.e. the process noise
    is ``Q = delta/(1 − delta)·P``: a discount factor, so beta's memory is about ``1/delta`` bars
    whatever the price level. Update (Joseph form, as filterpy): e = y − H·s, S = H P Hᵀ + R,
    K = P Hᵀ / S, s += K e, P = (I − K H) P (I − K H)ᵀ + R K Kᵀ. Returns (e, S)."""
    h = x - st[o + 5]
    r = st[o + 6]
    b, a = st[o], st[o + 1]
    p00 = st[o + 2] * inv_keep
    p01 = st[o + 3] * inv_keep
    p11 = st[o + 4] * inv_keep
    ph0 = p00 * h + p01
    ph1 = p01 * h + p11
    s = h * ph0 + ph1 + r
    k0 = ph0 / s
    k1 = ph1 / s
    e = y - (h * b + a)
    st[o] = b + k0 * e
    st[o + 1] = a + k1 * e
    m00 = 1.0 - k0 * h
    m01 = -k0
    m10 = -k1 * h
    m11 = 1.0 - k1
    a00 = m00 * p00 + m01 * p01
    a01 = m00 * p01 + m01 * p11
    a10 = m10 * p00 + m11 * p01
    a11 = m10 * p01 + m11 * p11
    st[o + 2] = a00 * m00 + a01 * m01 + r * k0 * k0
    st[o + 3] = a00 * m10 + a01 * m11 + r * k0 * k1
    st[o + 4] = a10 * m10 + a11 * m11 + r * k1 * k1
    return e, s


@njit(cache=True, error_model="numpy")
def kalman_run(y, x, window, inv_keep, r):
    """The pair kernel's Kalman filter alone over a whole series (no segments).

    Starts from the OLS of the first ``window`` finite bars (see :func:`_kf_init`); NaN before.
    A non-finite bar is a predict-only step. Returns (beta, alpha, innovation, innovation
    variance, state) per bar, the state (beta, a, P00, P01, P11, x_ref, R, on) after the last."""
    n = len(y)
    beta = np.full(n, np.nan)
    alpha = np.full(n, np.nan)
    e = np.full(n, np.nan)
    s = np.full(n, np.nan)
    st = np.zeros(N_KF)
    mom = np.zeros(N_MOM)
    x0, y0 = np.nan, np.nan
    for i in range(n):
        ok = math.isfinite(y[i]) and math.isfinite(x[i])
        if ok and not math.isfinite(x0):
            x0, y0 = x[i], y[i]
        if st[7] > 0.0:
            if ok:
                e[i], s[i] = _kf_step(st, 0, y[i], x[i], inv_keep)
            else:
                st[2] *= inv_keep
                st[3] *= inv_keep
                st[4] *= inv_keep
        elif ok:
            _mom_add(mom, 0, x[i] - x0, y[i] - y0)
            if mom[0] >= window:
                _kf_init(st, 0, mom, 0, x0, y0, r)
        if st[7] > 0.0:
            beta[i] = st[0]
            alpha[i] = st[1] - st[0] * st[5]
    return beta, alpha, e, s, st


@njit(cache=True, error_model="numpy")
def rolling_ols_run(y, x, window, min_periods, intercept):
    """Rolling (window > 0) or expanding (window == 0) OLS of y on x; NaN until min_periods."""
    n = len(y)
    beta = np.full(n, np.nan)
    alpha = np.full(n, np.nan)
    st = np.zeros(N_MOM)
    w = window if window > 0 else 1
    buf = np.empty(2 * w)
    # moments of values shifted by the first finite pair: small means, small rounding drift
    x0, y0 = 0.0, 0.0
    if intercept:
        for i in range(n):
            if math.isfinite(x[i]) and math.isfinite(y[i]):
                x0, y0 = x[i], y[i]
                break
    for i in range(n):
        xs, ys = x[i] - x0, y[i] - y0
        if window > 0:
            _slide(st, 0, buf, 0, window, i, xs, ys)
        elif math.isfinite(xs) and math.isfinite(ys):
            _mom_add(st, 0, xs, ys)
        if st[0] >= min_periods:
            b, a = _ols_from(st, 0, intercept)
            beta[i] = b
            alpha[i] = a + y0 - b * x0
    return beta, alpha


@njit(cache=True, error_model="numpy")
def rolling_window_run(a, b, window, corr, ddof):
    """Over the last ``window`` pairs (a_t, b_t) incl. t: the Pearson correlation of a and b
    (``corr`` True) or the z-score ``(a_t − mean) / std`` with ``ddof`` (``corr`` False; pass
    ``b = a``). NaN until the window holds ``window`` finite pairs."""
    n = len(a)
    out = np.full(n, np.nan)
    st = np.zeros(N_MOM)
    buf = np.empty(2 * window)
    for i in range(n):
        _slide(st, 0, buf, 0, window, i, a[i], b[i])
        if st[0] >= window:
            out[i] = _corr_from(st, 0) if corr else _z_from(st, 0, a[i], ddof)
    return out


# -- the gap gate: which aligned bars the pair uses, and where a hole restarts its windows --------
# gate state g = [miss_y, miss_x, broken, started, last_t]; prices carried in gp = [py, px]
N_GATE = 5


def new_gate():
    """Fresh gate state: no bar seen yet."""
    g = np.zeros(N_GATE)
    g[4] = np.nan
    return g, np.full(2, np.nan)


@njit(cache=True, error_model="numpy", inline="always")
def gate_step(g, gp, t, tf, cy, cx, limit):
    """Admit one aligned interval at open time ``t`` (ms) with closes ``cy``/``cx`` (NaN: the leg
    has no bar there). Returns (accept, new_segment, price_y, price_x).

    A leg without a bar carries its previous close for at most ``limit`` bars; ``miss`` counts
    the bars since its last bar, including intervals nobody reported (a time jump of ``k`` bars
    counts ``k − 1`` silent intervals). An interval is used (``accept``) when both legs have a
    price and neither has been missing more than ``limit`` bars. Once a leg has been missing
    longer than that (a hole), the next used interval starts a new segment: every window
    restarts there. The first used interval starts the first segment."""
    dt = 1.0
    if g[4] == g[4]:
        dt = max((t - g[4]) / tf, 1.0)
    g[4] = t
    for leg in range(2):
        c = cy if leg == 0 else cx
        if dt > 1.0 and g[leg] + dt - 1.0 > limit:
            g[2] = 1.0
        if c == c:
            g[leg] = 0.0
            gp[leg] = c
        else:
            g[leg] += dt
    if not (gp[0] == gp[0] and gp[1] == gp[1]) or g[0] > limit or g[1] > limit:
        if gp[0] == gp[0] and gp[1] == gp[1]:
            g[2] = 1.0
        return False, False, np.nan, np.nan
    new = g[2] > 0.0 or g[3] == 0.0
    g[2] = 0.0
    g[3] = 1.0
    return True, new, gp[0], gp[1]


@njit(cache=True, error_model="numpy")
def _unbroken(t, cy, cx, tf):
    """True when both legs have a close at every interval and no step exceeds ``tf``."""
    ok = True
    for i in range(len(t)):
        ok &= (cy[i] == cy[i]) & (cx[i] == cx[i])
        if i:
            ok &= t[i] - t[i - 1] <= tf
    return ok


@njit(cache=True, error_model="numpy")
def gate_run(t, cy, cx, tf, limit, g, gp):
    """:func:`gate_step` over whole arrays from gate state ``g``, ``gp`` (updated in place);
    returns (accept, new_segment, price_y, price_x).

    Shortcut, the usual history: from a fresh gate, bars at most one timeframe apart in which
    both legs traded are all used, as one segment, at their own closes — what the steps would
    give (a test compares), at a tenth of their cost."""
    n = len(t)
    acc = np.zeros(n, np.bool_)
    new = np.zeros(n, np.bool_)
    if n and g[3] == 0.0 and g[4] != g[4] and _unbroken(t, cy, cx, tf):
        acc[:] = True
        new[0] = True
        g[0], g[1], g[2], g[3], g[4] = 0.0, 0.0, 0.0, 1.0, t[n - 1]
        gp[0], gp[1] = cy[n - 1], cx[n - 1]
        return acc, new, cy.copy(), cx.copy()
    py = np.full(n, np.nan)
    px = np.full(n, np.nan)
    for i in range(n):
        acc[i], new[i], py[i], px[i] = gate_step(g, gp, float(t[i]), tf, cy[i], cx[i], limit)
    return acc, new, py, px


# -- the pair kernel ------------------------------------------------------------------------------
# float state layout
S_KF = 0                       # Kalman beta, a, P (3), x_ref, R, initialised
S_MB = S_KF + N_KF             # moments for rolling OLS (beta window)
S_MP = S_MB + N_MOM            # moments of prices (corr window)
S_MR = S_MP + N_MOM            # moments of returns (corr window)
S_MZ = S_MR + N_MOM            # moments of the signal spread (z window)
S_PREV = S_MZ + N_MOM          # previous raw price y, x
S_REF = S_PREV + 2             # the segment's first working y, x (moments: values minus these)
N_STATE = S_REF + 2
# int counters: pushes into the beta, price, return, z rings; bars of the segment
C_B, C_P, C_R, C_Z, C_T = 0, 1, 2, 3, 4
N_COUNT = 5
# signal methods: where the signal's beta comes from
M_ROLLING, M_KALMAN, M_GIVEN = 0, 1, 2

PAIR_RECORD = np.dtype([(name, np.float64) for name in (
    "y", "x", "beta_rolling", "alpha_rolling", "spread_rolling", "beta_kalman", "alpha_kalman",
    "spread_kalman", "innovation", "innovation_var", "innovation_z", "beta", "alpha", "spread",
    "zscore_raw", "spread_mean", "spread_std", "corr_prices", "corr_returns", "segment_bar")])
"""One bar of the pair kernel (:func:`pair_step`): working ``y``, ``x``; the rolling-OLS and
Kalman fits (β, α, spread; the filter's innovation, its variance and z); the signal's ``beta``,
``alpha``, ``spread``, ``zscore_raw`` and its z window's ``spread_mean``/``spread_std``; the
correlations of working prices and of log returns; ``segment_bar`` (0-based bar of the
segment)."""
OUT_COLUMNS = PAIR_RECORD.names


def buffer_size(wb: int, wc: int, wz: int) -> int:
    """Length of the ring-buffer array the pair kernel needs for these windows."""
    return 2 * (wb + 2 * wc + wz)


def new_state():
    """Fresh (float state, int counters) for the pair kernel."""
    st = np.zeros(N_STATE)
    _reset(st, np.zeros(N_COUNT, dtype=np.int64))
    return st, np.zeros(N_COUNT, dtype=np.int64)


@njit(cache=True, error_model="numpy")
def _reset(st, cnt):
    """Forget everything: the next bar starts a new segment (every window empty, filter off)."""
    for k in range(len(st)):
        st[k] = 0.0
    for k in range(len(cnt)):
        cnt[k] = 0
    st[S_PREV] = np.nan
    st[S_PREV + 1] = np.nan
    st[S_REF] = np.nan
    st[S_REF + 1] = np.nan


@njit(cache=True, error_model="numpy", inline="always")
def _enter(st, cnt, py, px, new_segment, use_log):
    """Start the bar: restart every window on ``new_segment``; the working (y, x) values."""
    if new_segment:
        _reset(st, cnt)
    yw = math.log(py) if use_log else py
    xw = math.log(px) if use_log else px
    if not math.isfinite(st[S_REF]):
        st[S_REF] = yw
        st[S_REF + 1] = xw
    return yw, xw


@njit(cache=True, error_model="numpy", inline="always")
def _rolling_step(st, buf, wb, count, yw, xw):
    """Rolling OLS over the beta window (on values shifted by the segment's first bar), after
    pushing the segment's bar number ``count`` into it; the caller counts it (``cnt[C_B]``).

    Helpers that numba inlines take counters by value: one that updated ``cnt`` itself made
    the signal's loop three times slower."""
    y0, x0 = st[S_REF], st[S_REF + 1]
    _slide(st, S_MB, buf, 0, wb, count, xw - x0, yw - y0)
    if st[S_MB] < wb:
        return np.nan, np.nan
    b, a = _ols_from(st, S_MB, True)
    return b, a + y0 - b * x0


@njit(cache=True, error_model="numpy", inline="always")
def _kalman_step(st, wb, inv_keep, r, yw, xw):
    """Kalman filter: starts from the first full beta window's OLS, then one step a bar.
    Returns (beta, alpha, innovation, its variance)."""
    e, s = np.nan, np.nan
    if st[S_KF + 7] > 0.0:
        e, s = _kf_step(st, S_KF, yw, xw, inv_keep)
    elif st[S_MB] >= wb:
        _kf_init(st, S_KF, st, S_MB, st[S_REF + 1], st[S_REF], r)
    if st[S_KF + 7] > 0.0:
        b = st[S_KF]
        return b, st[S_KF + 1] - b * st[S_KF + 5], e, s
    return np.nan, np.nan, e, s


@njit(cache=True, error_model="numpy", inline="always")
def _z_push(st, buf, o_z, wz, count, sp):
    """Push spread number ``count`` of the segment into the z window; its z (NaN until the
    window is full). The window fills once the spread is defined: the caller pushes from the
    first finite spread on and counts it (``cnt[C_Z]``)."""
    _slide(st, S_MZ, buf, o_z, wz, count, sp, sp)
    if st[S_MZ] < wz:
        return np.nan
    return _z_from(st, S_MZ, sp, 1.0)


@njit(cache=True, error_model="numpy")
def pair_step(py, px, new_segment, st, cnt, buf, wb, wc, wz, inv_keep, r, use_log, method,
              given_beta, given_alpha, out, row):
    """Advance the pair state by one aligned bar of raw closes (py, px); write ``out[row]``
    (a :data:`PAIR_RECORD`).

    ``new_segment`` restarts every window first (see :func:`gate_step`). ``method`` picks the
    signal's beta: the rolling OLS (``M_ROLLING``), the Kalman filter (``M_KALMAN``) or
    ``given_beta``/``given_alpha`` (``M_GIVEN``: Huber, Theil–Sen, fixed; NaN until known)."""
    yw, xw = _enter(st, cnt, py, px, new_segment, use_log)
    b_r, a_r = _rolling_step(st, buf, wb, cnt[C_B], yw, xw)
    cnt[C_B] += 1
    b_k, a_k, e, s = _kalman_step(st, wb, inv_keep, r, yw, xw)
    # correlations of prices and of log returns
    o_p = 2 * wb
    o_r = o_p + 2 * wc
    _slide(st, S_MP, buf, o_p, wc, cnt[C_P], xw - st[S_REF + 1], yw - st[S_REF])
    cnt[C_P] += 1
    c_p = _corr_from(st, S_MP) if st[S_MP] >= wc else np.nan
    c_r = np.nan
    if math.isfinite(st[S_PREV]):
        ry = math.log(py / st[S_PREV])
        rx = math.log(px / st[S_PREV + 1])
        _slide(st, S_MR, buf, o_r, wc, cnt[C_R], rx, ry)
        cnt[C_R] += 1
        if st[S_MR] >= wc:
            c_r = _corr_from(st, S_MR)
    st[S_PREV] = py
    st[S_PREV + 1] = px
    if method == M_ROLLING:
        b, a = b_r, a_r
    elif method == M_KALMAN:
        b, a = b_k, a_k
    else:
        b, a = given_beta, given_alpha
    sp = yw - (b * xw + a)
    z = np.nan
    if math.isfinite(sp) or cnt[C_Z] > 0:
        z = _z_push(st, buf, o_r + 2 * wc, wz, cnt[C_Z], sp)
        cnt[C_Z] += 1
    z_mean, z_std = np.nan, np.nan
    if math.isfinite(z):
        z_mean = st[S_MZ + 1]
        z_std = math.sqrt(st[S_MZ + 3] / (st[S_MZ] - 1.0))
    rec = out[row]
    rec.y = yw
    rec.x = xw
    rec.beta_rolling = b_r
    rec.alpha_rolling = a_r
    rec.spread_rolling = yw - (b_r * xw + a_r)
    rec.beta_kalman = b_k
    rec.alpha_kalman = a_k
    rec.spread_kalman = yw - (b_k * xw + a_k)
    rec.innovation = e
    rec.innovation_var = s
    rec.innovation_z = e / math.sqrt(s)
    rec.beta = b
    rec.alpha = a
    rec.spread = sp
    rec.zscore_raw = z
    rec.spread_mean = z_mean
    rec.spread_std = z_std
    rec.corr_prices = c_p
    rec.corr_returns = c_r
    rec.segment_bar = cnt[C_T]
    cnt[C_T] += 1


@njit(cache=True, error_model="numpy")
def pair_update(t, tf, cy, cx, limit, g, gp, st, cnt, buf, wb, wc, wz, inv_keep, r, use_log,
                method, given_beta, given_alpha, out, row, raw, j, qy, qx, ny, nx):
    """The live path in one call: :func:`gate_step` then, when the interval is used,
    :func:`pair_step` and the raw ring ``raw[:, j]`` (price y/x, quote volume y/x, trades y/x).
    Returns True when the pair used the interval."""
    ok, new, py, px = gate_step(g, gp, t, tf, cy, cx, limit)
    if not ok:
        return False
    pair_step(py, px, new, st, cnt, buf, wb, wc, wz, inv_keep, r, use_log, method, given_beta,
              given_alpha, out, row)
    traded_y = cy == cy
    traded_x = cx == cx
    raw[0, j] = py
    raw[1, j] = px
    raw[2, j] = qy if traded_y else 0.0
    raw[3, j] = qx if traded_x else 0.0
    raw[4, j] = ny if traded_y else 0.0
    raw[5, j] = nx if traded_x else 0.0
    return True


@njit(cache=True, error_model="numpy")
def pair_run(py, px, new_segment, st, cnt, buf, wb, wc, wz, inv_keep, r, use_log, method,
             given_beta, given_alpha):
    """Run :func:`pair_step` over whole arrays of aligned raw closes; returns the n records."""
    n = len(py)
    out = np.empty(n, PAIR_RECORD)
    for i in range(n):
        pair_step(py[i], px[i], new_segment[i], st, cnt, buf, wb, wc, wz, inv_keep, r, use_log,
                  method, given_beta[i], given_alpha[i], out, i)
    return out


@njit(cache=True, error_model="numpy")
def signal_run(py, px, new_segment, wb, wz, inv_keep, r, use_log, method, given_beta,
               given_alpha):
    """The signal alone over whole arrays of aligned raw closes, from a fresh state: the same
    steps as :func:`pair_step` for the signal's β, spread and z (bar for bar the same numbers),
    without the diagnostics (the other fits, correlations). Returns per-bar arrays (beta, alpha,
    spread, zscore, segment_bar).

    Segments are run one after the other (state reset and reference values set once a segment,
    as :func:`_enter` does bar by bar), so the loop over bars writes nothing else."""
    n = len(py)
    beta = np.empty(n)
    alpha = np.empty(n)
    spread = np.empty(n)
    z = np.empty(n)
    seg = np.empty(n, np.int64)
    st, cnt = np.zeros(N_STATE), np.zeros(N_COUNT, np.int64)
    buf = np.empty(2 * (wb + wz))            # buffer_size(wb, 0, wz): no correlation rings
    start = 0
    while start < n:
        end = start + 1
        while end < n and not new_segment[end]:
            end += 1
        _enter(st, cnt, py[start], px[start], True, use_log)
        for i in range(start, end):
            yw = math.log(py[i]) if use_log else py[i]
            xw = math.log(px[i]) if use_log else px[i]
            b, a = _rolling_step(st, buf, wb, cnt[C_B], yw, xw)
            cnt[C_B] += 1
            if method == M_KALMAN:
                b, a, _, _ = _kalman_step(st, wb, inv_keep, r, yw, xw)
            elif method == M_GIVEN:
                b, a = given_beta[i], given_alpha[i]
            sp = yw - (b * xw + a)
            beta[i] = b
            alpha[i] = a
            spread[i] = sp
            z[i] = np.nan
            if math.isfinite(sp) or cnt[C_Z] > 0:
                z[i] = _z_push(st, buf, 2 * wb, wz, cnt[C_Z], sp)
                cnt[C_Z] += 1
            seg[i] = i - start
        start = end
    return beta, alpha, spread, z, seg
