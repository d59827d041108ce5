"""Column schemas of ticks and bars, timeframe parsing, symbol and time normalisation.

Conventions used everywhere in qdash:

* time is exchange trade time, int64 **milliseconds** since the Unix epoch, UTC;
* symbols are the exchange spelling in upper case (``BTCUSDT``);
* a tick batch is a :class:`pandas.DataFrame` with exactly :data:`TICK_COLUMNS` and the dtypes in
  :data:`TICK_DTYPES` (build one with :func:`tick_frame`);
* ``is_buyer_maker`` is int8: 1 = buyer was maker (taker sold), 0 = taker bought, -1 = unknown
  (sources such as the browser collector do not record the side);
* ``trade_id`` is the exchange trade id (int64, unique per symbol) or, for sources without one, a
  negative deterministic id from :func:`synthetic_trade_ids`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import QdashError, TimeframeError

TICK_COLUMNS = ["symbol", "ts", "trade_id", "price", "qty", "is_buyer_maker", "source"]
TICK_DTYPES = {
    "symbol": object,
    "ts": np.int64,
    "trade_id": np.int64,
    "price": np.float64,
    "qty": np.float64,
    "is_buyer_maker": np.int8,
    "source": object,
}
BAR_COLUMNS = ["open", "high", "low", "close", "volume", "trades", "buy_volume", "quote_volume",
               "vwap"]

SIDE_UNKNOWN = -1

# Order book snapshots (top DEPTH_LEVELS levels a side), one row per snapshot: ``ts`` (int64 ms,
# exchange time of the last update in it), ``update_id`` (Binance's ``u``/``lastUpdateId``), then
# per side the prices and quantities best first (bids descending, asks ascending; NaN where the
# book holds fewer levels). Quantities in the base asset, prices in the quote asset.
DEPTH_LEVELS = 20
DEPTH_SIDES = ("bid", "ask")
DEPTH_LEVEL_COLUMNS = [f"{side}_{kind}_{i}" for side in DEPTH_SIDES for kind in ("px", "qty")
                       for i in range(DEPTH_LEVELS)]
DEPTH_COLUMNS = ["ts", "update_id", *DEPTH_LEVEL_COLUMNS]

# Whose data: a real exchange's or the simulator's (qdash.sim). A store holds one venue's data;
# a tick's source names its venue by its first part (``binance``, ``binance-agg:rest`` ...).
EXCHANGE_VENUE, SIM_VENUE = "exchange", "simulated"
VENUE_SOURCES = {EXCHANGE_VENUE: "binance", SIM_VENUE: "sim"}
"""The tick source of each venue's trade stream (``-agg`` appended for aggregate trades)."""
ALL_SYMBOLS = "ALL"  # what parse_symbols returns for "all": every symbol of the source

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{1,31}$")
_TIMEFRAME_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

# Epoch-ms bounds for "a sane timestamp": 2009-01-01 .. 2100-01-01.
MIN_TS_MS = 1_230_768_000_000
MAX_TS_MS = 4_102_444_800_000


def timeframe_ms(timeframe: str | int) -> int:
    """Length of a timeframe in milliseconds: ``"1s"``, ``"30s"``, ``"1m"``, ``"4h"``, ``"1d"``...

    An int is taken as milliseconds already. Months are not supported (they are not fixed-length).
    """
    if isinstance(timeframe, (int, np.integer)):
        if timeframe <= 0:
            raise TimeframeError(f"timeframe must be positive, got {timeframe} ms")
        return int(timeframe)
    m = _TIMEFRAME_RE.match(str(timeframe))
    if not m or int(m.group(1)) == 0:
        raise TimeframeError(
            f"bad timeframe {timeframe!r}: expected a positive count and a unit s, m, h, d or w, "
            "e.g. '1s', '30s', '1m', '5m', '4h', '1d'")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def timeframe_name(timeframe: str | int) -> str:
    """Canonical name of a timeframe (``"60s"`` → ``"1m"``, ``3_600_000`` → ``"1h"``)."""
    ms = timeframe_ms(timeframe)
    for unit in ("w", "d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def normalize_symbol(symbol: str) -> str:
    """Exchange spelling in upper case; ``btcusdt@trade`` → ``BTCUSDT``. Raises on junk."""
    s = str(symbol).strip().split("@", 1)[0].upper()
    if not _SYMBOL_RE.match(s):
        raise ValueError(f"bad symbol {symbol!r}: expected letters and digits such as 'BTCUSDT'")
    return s


def parse_symbols(names) -> list[str]:
    """The symbols a user named: ``names`` is text (``"btcusdt, ETHUSDT SOLUSDT"``) or texts
    (the words of a command line), separated by commas and/or spaces; each is normalised by
    :func:`normalize_symbol` (raises ``ValueError`` on junk), duplicates dropped, order kept.
    Where ``"all"`` (any case) stands for every symbol, it comes back as ``[ALL_SYMBOLS]`` for
    the caller to expand. Empty input gives ``[]``."""
    texts = [names] if isinstance(names, str) else list(names)
    words = [w for text in texts for w in str(text).replace(",", " ").split()]
    return list(dict.fromkeys(normalize_symbol(w) for w in words))


def pair_legs(y: str, x: str) -> tuple[str, str]:
    """The legs ``(y, x)`` of a pair, normalised by :func:`normalize_symbol`; THE check that a
    pair has two different legs (the backtest, the dashboard and its monitor all take pairs
    through it). Raises :class:`~qdash.errors.QdashError` when both legs are one symbol or one
    is not a symbol."""
    try:
        legs = normalize_symbol(y), normalize_symbol(x)
    except ValueError as e:
        raise QdashError(str(e)) from None
    if legs[0] == legs[1]:
        raise QdashError(f"a pair needs two different symbols, got {legs[0]} twice")
    return legs


def is_valid_symbol(symbol: str) -> bool:
    """True when ``symbol`` is already in canonical form."""
    return bool(_SYMBOL_RE.match(symbol))


def to_epoch_ms(values) -> np.ndarray:
    """Convert numeric timestamps in s, ms, µs or ns (detected per value by magnitude) to int64 ms.

    Binance futures files use ms; spot files switched to µs on 2025-01-01; raw captures carry ns.
    """
    a = np.asarray(values)
    if a.dtype.kind == "f":
        a = np.round(a).astype(np.int64)
    else:
        a = a.astype(np.int64, copy=False)
    out = a.copy()
    mag = np.abs(a)
    out = np.where(mag >= 10**17, a // 1_000_000, out)  # ns
    out = np.where((mag >= 10**14) & (mag < 10**17), a // 1_000, out)  # µs
    out = np.where(mag < 10**11, a * 1_000, out)  # s
    return out


def iso_to_epoch_ms(values) -> np.ndarray:
    """Parse ISO-8601 strings (naive ones are taken as UTC) to int64 ms since the epoch."""
    idx = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    return idx.to_numpy(dtype="datetime64[ms]").astype(np.int64)


def parse_time(value) -> int | None:
    """A user-given time (ISO string, Timestamp, datetime or epoch number) → int ms, or None."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer, float, np.floating)):
        return int(to_epoch_ms([value])[0])
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").value // 1_000_000)


_UTC_US = pd.DatetimeTZDtype("us", "UTC")


def ms_to_index(ms, name: str = "time") -> pd.DatetimeIndex:
    """int64 ms → UTC DatetimeIndex of microsecond resolution (the API edge form of time; what
    ``pd.to_datetime(ms, unit="ms", utc=True)`` gives, built as a view: 2 ms for 1M times
    instead of 13 ms)."""
    us = np.asarray(ms, dtype=np.int64) * 1000
    return pd.DatetimeIndex(us.view("M8[us]"), dtype=_UTC_US, name=name)


def tick_frame(symbol, ts, trade_id, price, qty, is_buyer_maker=SIDE_UNKNOWN,
               source: str = "") -> pd.DataFrame:
    """Build a tick batch with the canonical columns and dtypes (scalars broadcast)."""
    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)

    def col(v, dtype):
        if np.ndim(v) == 0:
            return np.full(n, v, dtype=dtype)
        return np.asarray(v, dtype=dtype)

    return pd.DataFrame({
        "symbol": col(symbol, object),
        "ts": ts,
        "trade_id": col(trade_id, np.int64),
        "price": col(price, np.float64),
        "qty": col(qty, np.float64),
        "is_buyer_maker": col(is_buyer_maker, np.int8),
        "source": col(source, object),
    })


def empty_ticks() -> pd.DataFrame:
    """A tick batch with no rows."""
    return tick_frame([], [], [], [], [], [], "")


def depth_frame(ts, update_id, levels: np.ndarray) -> pd.DataFrame:
    """Depth snapshots in the canonical columns (:data:`DEPTH_COLUMNS`) from ``ts`` and
    ``update_id`` (n,) and ``levels`` (n, 2 sides, 2 [price, qty], DEPTH_LEVELS)."""
    n = len(np.atleast_1d(ts))
    levels = np.asarray(levels, dtype=np.float64)
    levels = levels.reshape(n, len(DEPTH_LEVEL_COLUMNS) if n == 0 else -1)
    if levels.shape[1] != len(DEPTH_LEVEL_COLUMNS):
        raise QdashError(f"depth levels: expected {len(DEPTH_LEVEL_COLUMNS)} values a snapshot "
                         f"(2 sides x price, qty x {DEPTH_LEVELS}), got {levels.shape[1]}")
    df = pd.DataFrame(levels, columns=DEPTH_LEVEL_COLUMNS)
    df.insert(0, "update_id", np.asarray(update_id, dtype=np.int64))
    df.insert(0, "ts", np.asarray(ts, dtype=np.int64))
    return df


def depth_levels(frame: pd.DataFrame) -> np.ndarray:
    """The level columns of depth snapshots as an array (n, 2 sides, 2 [price, qty],
    DEPTH_LEVELS): ``[:, 0]`` bids, ``[:, 1]`` asks, best first."""
    return frame[DEPTH_LEVEL_COLUMNS].to_numpy(np.float64).reshape(len(frame), 2, 2,
                                                                    DEPTH_LEVELS)


# --- deterministic ids for sources without a trade id -------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _symbol_hash(symbols: np.ndarray) -> np.ndarray:
    uniq, inverse = np.unique(symbols.astype(str), return_inverse=True)
    hashes = np.array([int.from_bytes(s.encode()[:8].ljust(8, b"\0"), "little") ^ len(s)
                       for s in uniq], dtype=np.uint64)
    return _splitmix64(hashes)[inverse]


def synthetic_trade_ids(symbol, ts, price, qty) -> np.ndarray:
    """Deterministic negative int64 ids for ticks that carry no exchange trade id.

    The id hashes (symbol, ts, price, qty, k) where k counts earlier rows of the same batch with
    the same four values, so rows identical in every field (separate fills at one price in the
    same millisecond) stay distinct trades, and loading the same file twice yields the same ids
    (idempotent). Ids are negative, so they never collide with Binance's positive trade ids.
    """
    ts = np.asarray(ts, dtype=np.int64)
    n = len(ts)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    sym = np.asarray(symbol, dtype=object)
    if sym.ndim == 0:
        sym = np.full(n, sym, dtype=object)
    price_bits = np.asarray(price, dtype=np.float64).view(np.uint64)
    qty_bits = np.asarray(qty, dtype=np.float64).view(np.uint64)
    key = _splitmix64(_symbol_hash(sym) ^ ts.view(np.uint64))
    key = _splitmix64(key ^ price_bits)
    key = _splitmix64(key ^ qty_bits)
    # occurrence number of each key within the batch (0 for the first, 1 for the next, ...)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    occurrence = np.empty(n, dtype=np.uint64)
    occurrence[order] = (np.arange(n) - run_start).astype(np.uint64)
    key = _splitmix64(key ^ _splitmix64(occurrence))
    return -((key >> np.uint64(1)).astype(np.int64)) - 1


def source_venue(source: str) -> str | None:
    """The venue a tick ``source`` names (:data:`VENUE_SOURCES`, its ``-agg`` form, either with
    a ``:suffix`` such as ``:rest``), or None for sources of no venue (files, collectors,
    pushes)."""
    head = source.split(":", 1)[0].removesuffix("-agg")
    for venue, name in VENUE_SOURCES.items():
        if head == name:
            return venue
    return None


def venue_source(source: str, venue: str | None) -> str:
    """The tick ``source`` label of a Binance reader (``binance:rest-agg``) as ``venue`` names it
    (``sim:rest-agg`` for :data:`SIM_VENUE`); unchanged for the exchange or no venue."""
    if venue is None or source_venue(source) is None:
        return source
    head, sep, tail = source.partition(":")
    agg = "-agg" if head.endswith("-agg") else ""
    return VENUE_SOURCES[venue] + agg + sep + tail
