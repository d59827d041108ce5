"""The ``@trade`` and ``@aggTrade`` payloads of trades the simulated exchange publishes.

Inputs are the column arrays of one symbol's trades in id order: trade time ``ts`` and event
time ``event_ts`` (int64 ms UTC), ``ids``, ``price``, ``qty``, ``m`` (1 buyer is maker, 0 not,
-1 unknown), ``x`` (trade type, :data:`qdash.sim.market.X_NAMES`) and ``agg`` (aggregate id, -1
for none). ``decimals`` = (price, qty) decimals print numbers fixed-point as Binance does; None
prints them with ``repr`` (a replay keeps the recorded values). Output: (trade time, stream,
payload) triples, Binance's field names and order.
"""

from __future__ import annotations

import numpy as np

from .market import X_MARKET, X_NAMES


def _formatter(decimals: tuple[int, int] | None):
    if decimals is None:
        return repr, repr
    pdec, qdec = decimals
    return f"{{:.{pdec}f}}".format, f"{{:.{qdec}f}}".format


def trade_frames(symbol: str, ts, event_ts, ids, price, qty, m, x,
                 decimals: tuple[int, int] | None) -> list[tuple[int, str, str]]:
    """One ``trade`` event per trade (every type: MARKET, INSURANCE_FUND, ADL, NA)."""
    fp, fq = _formatter(decimals)
    stream = f"{symbol.lower()}@trade"
    out = []
    for e, t, i, p, q, mm, xx in zip(event_ts.tolist(), ts.tolist(), ids.tolist(),
                                     price.tolist(), qty.tolist(), m.tolist(), x.tolist()):
        side = ',"m":true' if mm == 1 else ',"m":false' if mm == 0 else ""
        ps = "0" if p == 0 else fp(p)
        qs = "0" if q == 0 else fq(q)
        out.append((t, stream, f'{{"e":"trade","E":{e},"T":{t},"s":"{symbol}","t":{i},'
                               f'"p":"{ps}","q":"{qs}","X":"{X_NAMES[xx]}"{side}}}'))
    return out


def agg_trade_frames(symbol: str, ts, event_ts, ids, price, qty, m, x, agg,
                     decimals: tuple[int, int] | None) -> list[tuple[int, str, str]]:
    """One ``aggTrade`` event per run of MARKET trades with the same aggregate id."""
    fp, fq = _formatter(decimals)
    stream = f"{symbol.lower()}@aggTrade"
    mk = (x == X_MARKET) & (agg >= 0)
    a = agg[mk]
    if len(a) == 0:
        return []
    starts = np.r_[0, np.flatnonzero(np.diff(a)) + 1]
    ends = np.r_[starts[1:], len(a)]
    q = np.add.reduceat(qty[mk], starts)
    out = []
    for aid, e, t, f, ll, p, qq, mm in zip(
            a[starts].tolist(), event_ts[mk][starts].tolist(), ts[mk][starts].tolist(),
            ids[mk][starts].tolist(), ids[mk][ends - 1].tolist(),
            price[mk][starts].tolist(), q.tolist(), m[mk][starts].tolist()):
        ps, qs = fp(p), fq(qq)
        out.append((t, stream, f'{{"e":"aggTrade","E":{e},"a":{aid},"s":"{symbol}","p":"{ps}",'
                               f'"q":"{qs}","nq":"{qs}","f":{f},"l":{ll},"T":{t},'
                               f'"m":{"true" if mm == 1 else "false"}}}'))
    return out
