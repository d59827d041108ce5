"""A synthetic, deterministic universe of USDⓈ-M perpetuals and its 1-minute history.

:func:`make_universe` draws ``n`` symbols (``SYN001USDT`` ...) with realistic price levels, a
long-tailed (lognormal) daily quote volume, and a few *cointegrated clusters* among unrelated
random walks, so a universe scan has something real to find and to reject.

Price model (log prices, time in minutes; every component is a function of ``(seed, name,
minute)`` only, so any window is reproducible without generating from a fixed epoch):

* a market factor ``M`` and, per symbol, an idiosyncratic walk ``W``; a walk is a *daily level*
  ``L(d)`` (a stationary MA(512) of daily innovations with a 90-day half-life — at a month's scale
  indistinguishable from a random walk, over years it stays near the base price) joined across
  each UTC day by a Brownian bridge of 1-minute steps;
* unrelated symbol: ``log p = log base + m·M + W`` with a market loading ``m`` in 0.5–1.3;
* cluster ``c`` has a common factor ``F_c = m_c·M + W_c``; a member with loading ``beta`` has
  ``log p = log base + beta·F_c + s``, where ``s`` is an AR(1) residual (half-life 20–60 bars of
  5 m, stationary sd 0.3–0.6 %), so ``log p_j − beta_j·log p_leader`` is stationary (leaders have
  ``beta = 1``);
* volume follows a UTC-hour seasonality, noise and the size of the move; ``trades`` follows the
  quote volume (:func:`trades_per_day` on average, at least 4 a minute, volume at least one step
  a trade, so the bar can be expanded into trades); the taker-buy share leans with the move.

Prices are rounded to :func:`tick_size`, volumes to :func:`step_size`. Every kline field is
derived from the 1-minute bars, and larger intervals aggregate them exactly (open = first open,
close = last close, high = max, low = min, sums of volumes and trades). There are no bars before a
symbol's ``onboard_ms``. Times are int64 ms since the epoch, UTC; symbols are upper case.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

from ..binance.limits import INTERVALS

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_DAY_MIN = 1440
_WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-05 was a Monday: weekly klines open on Mondays
_INTERVAL_MS = {"1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS,
                "15m": 15 * MINUTE_MS, "30m": 30 * MINUTE_MS, "1h": 3_600_000,
                "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
                "12h": 43_200_000, "1d": DAY_MS, "3d": 3 * DAY_MS, "1w": 7 * DAY_MS}

_LEVEL_TAPS = 512            # daily innovations in a level
_LEVEL_HALF_LIFE_DAYS = 90.0
_BLOCK_DAYS = 1024           # daily innovations are drawn in blocks of this many days
_RESID_DAYS = 3              # an AR(1) residual restarts from 0 this many days back
# rows of the per-(name, day) block of 1-minute draws: a standard normal (the step), then
# uniforms on [0, 1) (high and low excursions, volume noise, taker-share noise)
_Z_STEP, _Z_HIGH, _Z_LOW, _Z_VOL, _Z_TAKER = range(5)
_Z_ROWS = 5
_STREAM_MINUTE, _STREAM_DAILY, _STREAM_RESID = 0, 1, 2
_MARKET_VOL = 0.025          # daily log vol of the market factor
MIN_TRADES_PER_MINUTE = 4  # a 1-minute bar has at least open, high, low and close trades
_KLINE_COLUMNS = ["symbol", "open_time", "open", "high", "low", "close", "volume",
                  "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume"]


@dataclass(frozen=True)
class UniverseSymbol:
    """One synthetic perpetual.

    ``base_price``: typical price (quote units); ``quote_volume_per_day``: mean daily quote
    volume (USDT); ``cluster``: id of its cointegrated cluster, None for an unrelated random walk;
    ``beta``: loading of its log price on the cluster's common factor (1.0 for the cluster leader,
    NaN without a cluster); ``onboard_ms``: listing time (ms UTC, midnight), no bars before it.
    """

    symbol: str
    base_price: float
    quote_volume_per_day: float
    cluster: int | None
    beta: float
    onboard_ms: int


def tick_size(price: float) -> float:
    """Price tick for an instrument trading near ``price``: a power of ten near 1e-5 × price."""
    return 10.0 ** math.floor(math.log10(price * 1e-5))


def step_size(price: float) -> float:
    """Quantity step for an instrument trading near ``price``: a power of ten near 5 / price,
    within 0.001 .. 1000."""
    return 10.0 ** min(3, max(-3, round(math.log10(5.0 / price))))


def decimals(step: float) -> int:
    """Decimal places of a power-of-ten step (0.01 → 2, 10 → 0)."""
    return max(0, -int(math.floor(math.log10(step) + 1e-9)))


def make_universe(n: int, seed: int = 0) -> list[UniverseSymbol]:
    """``n`` synthetic perpetuals ``SYN001USDT`` ... (see the module doc), deterministic in
    ``(n, seed)``. The first two are BTC/ETH-like (~60,000 and ~3,000, the most liquid); for
    n ≥ 4 there are 1–5 clusters of 2–4 members (3–5 when n ≥ 24)."""
    if n < 0:
        raise ValueError(f"make_universe: n must be ≥ 0, got {n}")
    rng = np.random.default_rng([seed, 0x5EED])
    width = max(3, len(str(n)))
    names = [f"SYN{i + 1:0{width}d}USDT" for i in range(n)]
    log_price = rng.uniform(math.log(0.002), math.log(800.0), n)
    log_volume = rng.normal(math.log(2e7), 1.5, n)
    fixed = [(60_000.0, 1.5e10), (3_000.0, 8e9), (0.5, 6e8)]
    for i, (p, v) in enumerate(fixed[:n]):
        log_price[i] = math.log(p) + rng.normal(0.0, 0.05)
        log_volume[i] = math.log(v)
    price = np.exp(log_price)
    volume = np.clip(np.exp(log_volume), 2e5, 3e10)
    # listing dates between 2019-09-08 and 2023-06-30, at midnight UTC
    onboard = rng.integers(18_147, 19_538, n) * DAY_MS
    if n:
        onboard[0] = 18_147 * DAY_MS
    cluster: list[int | None] = [None] * n
    beta = np.full(n, np.nan)
    n_clusters = 0 if n < 4 else min(5, max(1, n // 8)) if n < 24 else int(rng.integers(3, 6))
    pool = list(rng.permutation(np.arange(3 if n >= 10 else 0, n)))
    for c in range(n_clusters):
        size = int(min(rng.integers(2, 5), len(pool)))
        if size < 2:
            break
        members, pool = pool[:size], pool[size:]
        for k, i in enumerate(sorted(members)):
            cluster[i] = c
            beta[i] = 1.0 if k == 0 else round(float(rng.uniform(0.5, 2.0)), 3)
    return [UniverseSymbol(names[i], float(f"{price[i]:.4g}"), float(f"{volume[i]:.4g}"),
                           cluster[i], float(beta[i]), int(onboard[i])) for i in range(n)]


# --- deterministic random numbers -----------------------------------------------------------
@lru_cache(maxsize=4096)
def _key(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest(),
                          "little")


def _generator(key: int, stream: int, block: int) -> np.random.Generator:
    """The generator of one (key, stream, block): a Philox counter stream, so every block is
    reproducible on its own."""
    return np.random.Generator(np.random.Philox(
        key=np.array([key, stream], dtype=np.uint64),
        counter=np.array([0, 0, 0, block], dtype=np.uint64)))


def _normals(key: int, stream: int, block: int, size: int, dtype=np.float64) -> np.ndarray:
    """``size`` standard normals of one (key, stream, block)."""
    return _generator(key, stream, block).standard_normal(size, dtype=dtype)


def _uniform(seed: int, name: str, what: str, lo: float, hi: float) -> float:
    u = _key(seed, f"{name}#{what}") / 2.0 ** 64
    return lo + (hi - lo) * u


class _Draws:
    """Per-(name, day) blocks of 1-minute normals, cached for one call."""

    def __init__(self, seed: int):
        self.seed = seed
        self.cache: dict[tuple[str, int], np.ndarray] = {}
        self.resid_cache: dict[tuple[str, int], np.ndarray] = {}
        self.factors: dict[tuple[str, int], np.ndarray] = {}  # cluster factor paths

    def minute(self, name: str, day: int) -> np.ndarray:
        """(5, 1440) float32 draws of ``name`` on UTC day ``day`` (rows: see ``_Z_*``)."""
        k = (name, day)
        z = self.cache.get(k)
        if z is None:
            g = _generator(_key(self.seed, name), _STREAM_MINUTE, day)
            z = self.cache[k] = np.empty((_Z_ROWS, _DAY_MIN), dtype=np.float32)
            g.standard_normal(dtype=np.float32, out=z[0])
            g.random(dtype=np.float32, out=z[1:])
        return z

    def resid(self, name: str, day: int) -> np.ndarray:
        """1440 normals driving the AR(1) residual of ``name`` on UTC day ``day``."""
        k = (name, day)
        z = self.resid_cache.get(k)
        if z is None:
            z = self.resid_cache[k] = _normals(_key(self.seed, name), _STREAM_RESID, day,
                                               _DAY_MIN, np.float32)
        return z

    def levels(self, name: str, days: np.ndarray, daily_vol: float) -> np.ndarray:
        """Daily levels L(d) for consecutive ``days``: Σ_k φ^k e(d−k) · daily_vol."""
        d0, d1 = int(days[0]), int(days[-1])
        lo = d0 - _LEVEL_TAPS + 1
        key = _key(self.seed, name)
        blocks = range(lo // _BLOCK_DAYS, d1 // _BLOCK_DAYS + 1)
        e = np.concatenate([_normals(key, _STREAM_DAILY, b, _BLOCK_DAYS) for b in blocks])
        e = e[lo - blocks[0] * _BLOCK_DAYS: d1 - blocks[0] * _BLOCK_DAYS + 1]
        phi = 0.5 ** (1.0 / _LEVEL_HALF_LIFE_DAYS)
        w = phi ** np.arange(_LEVEL_TAPS - 1, -1, -1, dtype=np.float64)
        return (sliding_window_view(e, _LEVEL_TAPS) * w).sum(axis=1) * daily_vol


def _walk(draws: _Draws, name: str, days: np.ndarray, daily_vol: float) -> np.ndarray:
    """Log path of a walk at minute boundaries: (len(days), 1441); column 1440 is the next day's
    column 0 (the level), so a day's closing value is the next day's opening value."""
    levels = draws.levels(name, np.arange(days[0], days[-1] + 2), daily_vol)
    out = np.empty((len(days), _DAY_MIN + 1))
    sig = daily_vol / math.sqrt(_DAY_MIN)
    frac = np.arange(_DAY_MIN) / _DAY_MIN
    for r, d in enumerate(days):
        cs = np.cumsum(draws.minute(name, int(d))[_Z_STEP], dtype=np.float64) * sig
        # cs: W at boundaries 1..1440
        gap = cs[-1] - (levels[r + 1] - levels[r])
        out[r, 0] = levels[r]
        out[r, 1:_DAY_MIN] = levels[r] + cs[:-1] - frac[1:] * gap
        out[r, _DAY_MIN] = levels[r + 1]
    return out


def _residual(draws: _Draws, name: str, days: np.ndarray, half_life_min: float,
              sd: float) -> np.ndarray:
    """AR(1) residual at minute boundaries, (len(days), 1441); each day restarts the recursion
    from 0 ``_RESID_DAYS`` days back (a φ^(2·1440) ≈ 0 remainder), so any day is reproducible."""
    phi = 0.5 ** (1.0 / half_life_min)
    scale = sd * math.sqrt(1.0 - phi * phi)
    out = np.empty((len(days), _DAY_MIN + 1))
    day_values: dict[int, np.ndarray] = {}

    def one_day(d: int) -> np.ndarray:
        v = day_values.get(d)
        if v is None:
            e = np.concatenate([draws.resid(name, d - k)
                                for k in range(_RESID_DAYS - 1, -1, -1)])
            v = day_values[d] = lfilter([scale], [1.0, -phi], e)[-_DAY_MIN:]
        return v

    for r, d in enumerate(days):
        out[r, :_DAY_MIN] = one_day(int(d))
        out[r, _DAY_MIN] = one_day(int(d) + 1)[0]
    return out


def _symbol_params(seed: int, name: str) -> dict:
    return {"market_loading": _uniform(seed, name, "m", 0.5, 1.3),
            "daily_vol": _uniform(seed, name, "vol", 0.02, 0.05),
            "half_life_min": 5.0 * _uniform(seed, name, "hl", 20.0, 60.0),
            "resid_sd": _uniform(seed, name, "sd", 0.003, 0.006)}


def trades_per_day(quote_volume_per_day: float) -> float:
    """Mean trade count per day of a symbol: 3,000 × (quote volume / 1e7)^0.6 (a BTC-like 1.5e10
    USDT gives ~240k, a 1e6 one ~750 before the 4-trades-a-minute floor)."""
    return 3000.0 * (quote_volume_per_day / 1e7) ** 0.6


def _log_path(draws: _Draws, sym: UniverseSymbol, days: np.ndarray,
              market: np.ndarray) -> np.ndarray:
    seed, p = draws.seed, _symbol_params(draws.seed, sym.symbol)
    base = math.log(sym.base_price)
    if sym.cluster is None:
        return base + p["market_loading"] * market + _walk(draws, sym.symbol, days,
                                                           p["daily_vol"])
    cname = f"__cluster{sym.cluster}__"
    factor = draws.factors.get((cname, int(days[0])))
    if factor is None:
        factor = _uniform(seed, cname, "m", 0.5, 1.3) * market + _walk(
            draws, cname, days, _uniform(seed, cname, "vol", 0.02, 0.04))
        draws.factors[(cname, int(days[0]))] = factor
    return base + sym.beta * factor + _residual(draws, sym.symbol, days, p["half_life_min"],
                                                p["resid_sd"])


def _minute_bars(draws: _Draws, sym: UniverseSymbol, days: np.ndarray, market: np.ndarray,
                 tick: float, step: float) -> dict[str, np.ndarray]:
    """1-minute bars of ``sym`` over whole UTC ``days`` (flattened, open_time ascending)."""
    p = _symbol_params(draws.seed, sym.symbol)
    pdec, qdec = decimals(tick), decimals(step)
    x = _log_path(draws, sym, days, market)
    z = np.stack([draws.minute(sym.symbol, int(d)) for d in days], axis=1).reshape(_Z_ROWS, -1)
    scale = 10.0 ** pdec  # ticks are powers of ten: n / 10**k is the double nearest n·tick
    edge = np.rint(np.exp(x) * scale) / scale
    o, c = edge[:, :-1].ravel(), edge[:, 1:].ravel()
    dx = (x[:, 1:] - x[:, :-1]).ravel()
    sig = p["daily_vol"] / math.sqrt(_DAY_MIN)
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    h = np.maximum(np.rint(top * (1.0 + 0.8 * sig * z[_Z_HIGH] ** 2) * scale) / scale, top)
    low = np.minimum(np.rint(bottom * (1.0 - 0.8 * sig * z[_Z_LOW] ** 2) * scale) / scale,
                     bottom)
    low = np.maximum(low, tick)
    hour = np.arange(_DAY_MIN) / 60.0
    season = np.tile(1.0 + 0.4 * np.cos(2.0 * np.pi * (hour - 14.0) / 24.0), len(days))
    move = np.abs(dx) * (1.0 / sig)
    activity = (0.3 + 1.4 * z[_Z_VOL]) * (1.0 + 2.0 * move) * (1.0 / 2.6)
    vwap = (o + h + low + c) * 0.25
    quote = (sym.quote_volume_per_day / _DAY_MIN) * season * activity
    qscale = 10.0 ** qdec
    if step >= 1.0:
        volume = np.maximum(np.rint(quote / (vwap * step)), 1.0) * step
    else:
        volume = np.maximum(np.rint(quote / vwap * qscale), 1.0) / qscale
    quote_volume = volume * vwap
    per_quote = trades_per_day(sym.quote_volume_per_day) / sym.quote_volume_per_day
    trades = np.maximum(MIN_TRADES_PER_MINUTE, np.rint(quote_volume * per_quote * (
        0.7 + 0.6 * z[_Z_HIGH]))).astype(np.int64)
    volume = np.maximum(volume, trades * step)  # every trade moves at least one step
    quote_volume = volume * vwap
    share = np.clip(0.5 + 0.25 * np.tanh(dx * (1.0 / sig)) + 0.3 * (z[_Z_TAKER] - 0.5),
                    0.02, 0.98)
    if step >= 1.0:
        taker = np.minimum(np.rint(share * volume / step) * step, volume)
    else:
        taker = np.minimum(np.rint(share * volume * qscale) / qscale, volume)
    open_time = (np.repeat(days.astype(np.int64) * DAY_MS, _DAY_MIN)
                 + np.tile(np.arange(_DAY_MIN, dtype=np.int64) * MINUTE_MS, len(days)))
    return {"open_time": open_time, "open": o, "high": h, "low": low, "close": c,
            "volume": volume, "quote_volume": quote_volume, "trades": trades,
            "taker_buy_volume": taker, "taker_buy_quote_volume": taker * vwap}


def interval_open(t_ms: np.ndarray | int, interval: str):
    """Open time of the ``interval`` bar holding ``t_ms`` (weeks open on Monday 00:00 UTC,
    months on the 1st, 3d bars count from the epoch)."""
    t = np.asarray(t_ms, dtype=np.int64)
    if interval == "1M":
        months = t.astype("datetime64[ms]").astype("datetime64[M]")
        out = months.astype("datetime64[ms]").astype(np.int64)
    elif interval == "1w":
        out = (t - _WEEK_OFFSET_MS) // _INTERVAL_MS["1w"] * _INTERVAL_MS["1w"] + _WEEK_OFFSET_MS
    else:
        size = _INTERVAL_MS[interval]
        out = t // size * size
    return out if out.ndim else int(out)


def interval_close(open_ms: np.ndarray | int, interval: str):
    """Close time (Binance's: next open − 1 ms) of bars opening at ``open_ms``."""
    t = np.asarray(open_ms, dtype=np.int64)
    if interval == "1M":
        nxt = (t.astype("datetime64[ms]").astype("datetime64[M]") + 1).astype(
            "datetime64[ms]").astype(np.int64)
    else:
        nxt = t + _INTERVAL_MS[interval]
    out = nxt - 1
    return out if out.ndim else int(out)


def _check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"unknown kline interval {interval!r}; expected one of "
                         f"{', '.join(INTERVALS)}")


def universe_klines(universe: list[UniverseSymbol], interval: str, start_ms: int, end_ms: int,
                    seed: int = 0, *,
                    steps: Mapping[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """Klines of every symbol for every ``interval`` bar with open_time in [start_ms, end_ms).

    Long table, ascending (symbol order of ``universe``, then open_time): ``symbol``
    (categorical) ``, open_time``
    (int64 ms UTC) ``, open, high, low, close, volume`` (base) ``, quote_volume, trades``
    (int64) ``, taker_buy_volume, taker_buy_quote_volume``. The same minute gives the same values
    whatever window is asked; bars before a symbol's ``onboard_ms`` are absent. ``steps`` maps a
    symbol to its (tick size, quantity step), both powers of ten (default :func:`tick_size`,
    :func:`step_size` of its base price).
    """
    _check_interval(interval)
    start_ms, end_ms = int(start_ms), int(end_ms)
    if start_ms < 0 or end_ms <= start_ms:
        return _empty_klines()
    first_open = interval_open(start_ms, interval)
    if first_open < start_ms:
        first_open = interval_close(first_open, interval) + 1
    if first_open >= end_ms:
        return _empty_klines()
    if not universe:
        return _empty_klines()
    listed = min(s.onboard_ms for s in universe)
    if first_open < listed:  # nothing exists before the first listing
        first_open = max(first_open, interval_open(listed, interval))
        if first_open >= end_ms:  # the whole window lies before it
            return _empty_klines()
    last_open = interval_open(end_ms - 1, interval)
    last_minute = interval_close(last_open, interval) // MINUTE_MS * MINUTE_MS
    days = np.arange(first_open // DAY_MS, last_minute // DAY_MS + 1)
    draws = _Draws(seed)
    market = _walk(draws, "__market__", days, _MARKET_VOL)
    parts, names = [], []
    for sym in universe:
        lo_ms = max(first_open, sym.onboard_ms)
        if lo_ms > last_minute:
            continue
        sym_days = days[days >= lo_ms // DAY_MS]
        tick, step = (steps or {}).get(sym.symbol) or (tick_size(sym.base_price),
                                                        step_size(sym.base_price))
        bars = _minute_bars(draws, sym, sym_days, market[len(days) - len(sym_days):], tick, step)
        draws.cache.clear()  # blocks are per symbol; keep memory bounded by one symbol
        draws.resid_cache.clear()
        keep = (bars["open_time"] >= lo_ms) & (bars["open_time"] <= last_minute)
        parts.append(aggregate_klines({k: v[keep] for k, v in bars.items()}, interval))
        names.append(sym.symbol)
    if not parts:
        return _empty_klines()
    codes = np.repeat(np.arange(len(parts)), [len(p["open_time"]) for p in parts])
    cols = {"symbol": pd.Categorical.from_codes(codes, categories=names)}
    for c in _KLINE_COLUMNS[1:]:
        cols[c] = np.concatenate([p[c] for p in parts])
    return pd.DataFrame(cols, columns=_KLINE_COLUMNS, copy=False)


def aggregate_klines(bars: dict[str, np.ndarray], interval: str) -> dict[str, np.ndarray]:
    """Aggregate ascending 1-minute bar columns (as :func:`universe_klines` names them, without
    ``symbol``) into ``interval`` bars: first open, max high, min low, last close, sums."""
    t = bars["open_time"]
    if interval == "1m" or len(t) == 0:
        return dict(bars)
    key = interval_open(t, interval)
    starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    ends = np.r_[starts[1:], len(t)] - 1
    out = {"open_time": key[starts], "open": bars["open"][starts],
           "high": np.maximum.reduceat(bars["high"], starts),
           "low": np.minimum.reduceat(bars["low"], starts), "close": bars["close"][ends]}
    for k in ("volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume"):
        out[k] = np.add.reduceat(bars[k], starts)
    return out


def _empty_klines() -> pd.DataFrame:
    cols = {c: np.empty(0, dtype=np.float64) for c in _KLINE_COLUMNS}
    cols["symbol"] = pd.Categorical([])
    cols["open_time"] = np.empty(0, dtype=np.int64)
    cols["trades"] = np.empty(0, dtype=np.int64)
    return pd.DataFrame(cols, columns=_KLINE_COLUMNS)
