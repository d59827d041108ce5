"""Ticks → OHLCV candles, in batch (:func:`resample`) and incrementally (:class:`BarBuilder`).

Candles follow Binance klines: UTC, bucketed on exchange trade time, left-closed ``[open, open +
timeframe)`` and labelled by open time. Columns (:data:`qdash.model.BAR_COLUMNS`):

* ``open``/``close``: first/last trade in trade order — time, then exchange trade id (ticks with
  synthetic negative ids, which have no exchange order, keep their input order);
* ``high``/``low``, ``volume`` (base asset), ``trades`` (count), ``quote_volume`` (Σ price·qty);
* ``buy_volume``: taker-buy base volume (``is_buyer_maker == 0``); NaN when any tick of the
  candle has an unknown side (sources such as the browser collector do not record it);
* ``vwap`` = quote_volume / volume.

Sums are float64. :class:`BarBuilder` adds per-batch partial sums, so its ``volume``,
``buy_volume``, ``quote_volume`` and ``vwap`` may differ from :func:`resample`'s in the last
unit of float precision (summation order); every other column is identical.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from .errors import DataFormatError
from .model import BAR_COLUMNS, ms_to_index, timeframe_ms

_SUMS = ["volume", "buy_volume", "quote_volume", "unknown_side"]


def _tick_arrays(ticks: pd.DataFrame):
    """(ts, trade_id, price, qty, side) as numpy arrays from a tick batch."""
    if "ts" in ticks.columns:
        ts = ticks["ts"].to_numpy(dtype=np.int64)
    elif isinstance(ticks.index, pd.DatetimeIndex):
        ts = ticks.index.as_unit("ms").asi8
    else:
        raise DataFormatError("ticks need a 'ts' column (int ms) or a DatetimeIndex")
    n = len(ts)
    trade_id = (ticks["trade_id"].to_numpy(dtype=np.int64) if "trade_id" in ticks.columns
                else np.full(n, -1, dtype=np.int64))
    qty_col = "qty" if "qty" in ticks.columns else "size" if "size" in ticks.columns else None
    if "price" not in ticks.columns or qty_col is None:
        raise DataFormatError("ticks need 'price' and 'qty' columns")
    price = ticks["price"].to_numpy(dtype=np.float64)
    qty = ticks[qty_col].to_numpy(dtype=np.float64)
    side = (ticks["is_buyer_maker"].to_numpy(dtype=np.int8) if "is_buyer_maker" in ticks.columns
            else np.full(n, -1, dtype=np.int8))
    return ts, trade_id, price, qty, side


def _trade_order(ts: np.ndarray, trade_id: np.ndarray) -> np.ndarray | None:
    """Permutation into trade order, or None when the input is already in it."""
    if len(ts) < 2:
        return None
    dts = np.diff(ts)
    if (dts >= 0).all():
        ties = dts == 0
        if not ties.any() or (trade_id < 0).any() or (np.diff(trade_id)[ties] > 0).all():
            return None
    tie = trade_id if (trade_id >= 0).all() else np.arange(len(ts))
    return np.lexsort((tie, ts))


def reduce_trades(open_time: np.ndarray, price: np.ndarray, qty: np.ndarray, side: np.ndarray,
                  *, buy_quote: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                        np.ndarray]:
    """THE OHLCV reduction: trades in trade order → one candle per run of equal ``open_time``.

    ``open_time``: int64 ms of each trade's candle (non-decreasing); ``side``: 1 buyer is maker,
    0 taker buy, -1 unknown. Returns (candles, starts, ends): per candle ``open_time``, ``open``,
    ``high``, ``low``, ``close``, ``volume``, ``trades``, ``buy_volume`` (taker-buy base),
    ``quote_volume`` (Σ price·qty), ``unknown_side`` (count) and with ``buy_quote``
    ``buy_quote_volume`` (taker-buy Σ price·qty); ``starts``/``ends`` index each candle's first
    trade and one past its last.
    """
    n = len(open_time)
    starts = np.flatnonzero(np.r_[True, open_time[1:] != open_time[:-1]])
    ends = np.r_[starts[1:], n]
    buy = np.where(side == 0, qty, 0.0)
    agg = {
        "open_time": open_time[starts],
        "open": price[starts],
        "high": np.maximum.reduceat(price, starts),
        "low": np.minimum.reduceat(price, starts),
        "close": price[ends - 1],
        "volume": np.add.reduceat(qty, starts),
        "trades": (ends - starts).astype(np.int64),
        "buy_volume": np.add.reduceat(buy, starts),
        "quote_volume": np.add.reduceat(price * qty, starts),
        "unknown_side": np.add.reduceat((side < 0).astype(np.int64), starts),
    }
    if buy_quote:
        agg["buy_quote_volume"] = np.add.reduceat(buy * price, starts)
    return agg, starts, ends


def _frame(agg: dict) -> pd.DataFrame:
    buy = np.where(agg["unknown_side"] > 0, np.nan, agg["buy_volume"])
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = agg["quote_volume"] / agg["volume"]
    return pd.DataFrame({
        "open": agg["open"], "high": agg["high"], "low": agg["low"], "close": agg["close"],
        "volume": agg["volume"], "trades": agg["trades"], "buy_volume": buy,
        "quote_volume": agg["quote_volume"], "vwap": vwap,
    }, index=ms_to_index(agg["open_time"], name="open_time"))


_EMPTY_BARS = pd.DataFrame(
    {c: np.empty(0, np.int64 if c == "trades" else np.float64) for c in BAR_COLUMNS},
    index=ms_to_index(np.empty(0, np.int64), name="open_time"))


def empty_bars() -> pd.DataFrame:
    """A candle frame with no rows (a copy of one built once: building it takes 1.4 ms, copying
    it 34 µs, and a live dashboard asks for several each frame)."""
    return _EMPTY_BARS.copy()


def resample(ticks: pd.DataFrame, timeframe: str | int = "1m", *, fill: bool = False,
             symbol: str | None = None) -> pd.DataFrame:
    """Candles of one symbol from a tick batch.

    ``ticks`` has ``ts`` (int ms) or a UTC DatetimeIndex, ``price``, ``qty`` and optionally
    ``trade_id``, ``is_buyer_maker`` and ``symbol``. When it holds several symbols, pass
    ``symbol=``. Empty intervals are absent unless ``fill=True``, which inserts them with the
    previous close as open/high/low/close, zero volume, trades and buy volume, and NaN vwap.
    """
    tf = timeframe_ms(timeframe)
    if "symbol" in ticks.columns and len(ticks):
        if symbol is not None:
            ticks = ticks[ticks["symbol"].to_numpy() == symbol]
        elif ticks["symbol"].nunique() > 1:
            raise DataFormatError(
                f"ticks hold several symbols {sorted(ticks['symbol'].unique())}: pass symbol=")
    ts, trade_id, price, qty, side = _tick_arrays(ticks)
    if len(ts) == 0:
        return empty_bars()
    order = _trade_order(ts, trade_id)
    if order is not None:
        ts, price, qty, side = ts[order], price[order], qty[order], side[order]
    agg, _, _ = reduce_trades(ts - ts % tf, price, qty, side)
    bars = _frame(agg)
    return fill_gaps(bars, tf) if fill else bars


def fill_gaps(bars: pd.DataFrame, timeframe: str | int) -> pd.DataFrame:
    """Insert empty intervals between the first and last candle (previous close, zero volume)."""
    if len(bars) < 2:
        return bars
    tf = timeframe_ms(timeframe)
    start, end = bars.index[0], bars.index[-1]
    full = pd.date_range(start, end, freq=pd.Timedelta(milliseconds=tf), name="open_time")
    out = bars.reindex(full)
    missing = out["close"].isna().to_numpy()
    close = out["close"].ffill()
    for c in ("open", "high", "low", "close"):
        out[c] = out[c].where(~missing, close)
    for c in ("volume", "buy_volume", "quote_volume"):
        out.loc[missing, c] = 0.0
    out["trades"] = out["trades"].fillna(0).astype(np.int64)
    return out


def stored_candles(store, symbol: str, timeframe: str | int, start=None, end=None, *,
                   fill: bool = False) -> pd.DataFrame:
    """Candles of ``symbol`` from a :class:`qdash.Store`, ``start <= open_time < end``.

    Built from the stored ticks when there are any in the range (exact, any timeframe); otherwise
    the stored candles of that timeframe (e.g. from an OHLC upload). ``fill`` as in
    :func:`resample`.
    """
    from .model import normalize_symbol

    symbol = normalize_symbol(symbol)
    ticks = store.ticks(symbol, start, end)
    bars = resample(ticks, timeframe) if len(ticks) else store.bars(symbol, timeframe, start, end)
    return fill_gaps(bars, timeframe) if fill else bars


class BarUpdate:
    """What one :meth:`BarBuilder.update` produced.

    ``closed``: candles that became final with this batch (in time order, never emitted again);
    ``forming``: the candles still open (usually one; more when a late-tick tolerance keeps older
    ones open), reflecting every tick so far. Both are built on first access, so a caller that
    only needs ``n_closed`` pays nothing for DataFrames.
    """

    def __init__(self, closed_rows: list[dict], forming_rows: list[dict]):
        self._closed_rows, self._forming_rows = closed_rows, forming_rows

    @property
    def n_closed(self) -> int:
        return len(self._closed_rows)

    @cached_property
    def closed(self) -> pd.DataFrame:
        return _rows_frame(self._closed_rows)

    @cached_property
    def forming(self) -> pd.DataFrame:
        return _rows_frame(self._forming_rows)


def _rows_frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return empty_bars()
    agg = {k: np.array([r[k] for r in rows]) for k in
           ("open_time", "open", "high", "low", "close", "trades", *_SUMS)}
    agg["open_time"] = agg["open_time"].astype(np.int64)
    agg["trades"] = agg["trades"].astype(np.int64)
    return _frame(agg)


class BarBuilder:
    """Incremental candles from tick batches of one symbol; same candles as :func:`resample`.

    Batches should arrive in time order; a tick up to ``tolerance_ms`` older than the newest one
    seen is still merged into its (still open) candle. A candle closes once the newest tick time
    minus ``tolerance_ms`` reaches its end (or on :meth:`advance` / :meth:`flush`). Ticks that
    belong to an already closed candle are dropped and counted in ``late_dropped``.

    Cost is O(batch) + O(open candles) per update: each batch is reduced with numpy and merged
    into the open candles' running aggregates.
    """

    def __init__(self, timeframe: str | int = "1m", *, symbol: str | None = None,
                 tolerance_ms: int = 0):
        self.tf = timeframe_ms(timeframe)
        self.symbol = symbol
        self.tolerance_ms = int(tolerance_ms)
        self.late_dropped = 0
        self._watermark = np.iinfo(np.int64).min  # candles with open_time + tf <= this are closed
        self._newest = np.iinfo(np.int64).min
        self._seq = 0  # arrival counter: the trade order of ticks without exchange ids
        self._open: dict[int, dict] = {}  # open_time → running aggregate
        self._forming: pd.DataFrame | None = None  # :attr:`forming` until the open ones change

    def update(self, ticks: pd.DataFrame) -> BarUpdate:
        """Merge a tick batch; return the candles it closed and the ones still forming."""
        if self.symbol is not None and "symbol" in ticks.columns and len(ticks):
            ticks = ticks[ticks["symbol"].to_numpy() == self.symbol]
        ts, trade_id, price, qty, side = _tick_arrays(ticks)
        if len(ts):
            self._merge(ts, trade_id, price, qty, side)
            self._newest = max(self._newest, int(ts.max()))
            self._forming = None
        return self._close_until(self._newest - self.tolerance_ms)

    def advance(self, now_ms: int) -> BarUpdate:
        """Close candles that ended before ``now_ms - tolerance_ms`` (exchange time, ms)."""
        return self._close_until(int(now_ms) - self.tolerance_ms)

    def flush(self) -> BarUpdate:
        """Close every open candle (end of data)."""
        return self._close_until(np.iinfo(np.int64).max)

    def seal(self, until_ms: int) -> None:
        """Treat candles opening before ``until_ms`` as closed elsewhere (history fetched from
        REST): their ticks are dropped as late, so no open time is built twice."""
        self._watermark = max(self._watermark, int(until_ms))

    @property
    def forming(self) -> pd.DataFrame:
        """The candles still open, in time order (the same frame until a tick or a close changes
        them: do not modify it)."""
        if self._forming is None:
            self._forming = _rows_frame(self._forming_rows())
        return self._forming

    def _forming_rows(self) -> list[dict]:
        return [dict(self._open[t]) for t in sorted(self._open)]

    def _merge(self, ts, trade_id, price, qty, side) -> None:
        n = len(ts)
        if (trade_id < 0).any():
            tie = np.arange(self._seq, self._seq + n, dtype=np.int64)
        else:
            tie = trade_id
        self._seq += n
        late = ts - ts % self.tf + self.tf <= self._watermark
        if late.any():
            self.late_dropped += int(late.sum())
            keep = ~late
            ts, tie, price, qty, side = ts[keep], tie[keep], price[keep], qty[keep], side[keep]
            if len(ts) == 0:
                return
        order = _trade_order(ts, tie)
        if order is not None:
            ts, tie, price, qty, side = ts[order], tie[order], price[order], qty[order], side[order]
        agg, starts, ends = reduce_trades(ts - ts % self.tf, price, qty, side)
        first_key = list(zip(ts[starts].tolist(), tie[starts].tolist()))
        last_key = list(zip(ts[ends - 1].tolist(), tie[ends - 1].tolist()))
        cols = {k: v.tolist() for k, v in agg.items()}
        for i, t in enumerate(cols["open_time"]):
            part = {k: cols[k][i] for k in cols}
            part["first"], part["last"] = first_key[i], last_key[i]
            bar = self._open.get(t)
            if bar is None:
                self._open[t] = part
                continue
            if part["first"] < bar["first"]:
                bar["first"], bar["open"] = part["first"], part["open"]
            if part["last"] > bar["last"]:
                bar["last"], bar["close"] = part["last"], part["close"]
            bar["high"] = max(bar["high"], part["high"])
            bar["low"] = min(bar["low"], part["low"])
            bar["trades"] += part["trades"]
            for k in _SUMS:
                bar[k] += part[k]

    def _close_until(self, watermark: int) -> BarUpdate:
        self._watermark = max(self._watermark, watermark)
        done = sorted(t for t in self._open if t + self.tf <= self._watermark)
        closed = [self._open.pop(t) for t in done]
        if closed:
            self._forming = None
        return BarUpdate(closed, self._forming_rows())
