"""Tick file readers: Binance trades/aggTrades dumps, generic tick CSV, raw WebSocket NDJSON and
browser-collector NDJSON, read in chunks of at most ``chunk_rows`` rows.

Every reader yields canonical tick batches (``qdash.model``); only real trades survive: Binance
trade types other than ``MARKET`` and rows whose price or size is non-finite, zero or negative are
dropped and counted by reason. Sources without a trade id get
:func:`qdash.model.synthetic_trade_ids`; rows sharing the last timestamp of a chunk are held back
to the next chunk so that identical rows (separate fills) always get their distinct ids within one
batch, whatever ``chunk_rows`` is (for files in time order).
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd

from ..binance.decode import decode_frames
from ..binance.schema import expand_agg_trades
from ..errors import DataFormatError, RowError
from ..model import (
    TICK_COLUMNS,
    is_valid_symbol,
    ms_to_index,
    normalize_symbol,
    synthetic_trade_ids,
    tick_frame,
)
from . import columns as C
from .detect import Detected, detect
from .source import iter_line_blocks, open_data

DEFAULT_CHUNK_ROWS = 200_000

TIME_COLUMNS = ("trade_time_ms", "transact_time", "trade_time", "time", "timestamp", "ts",
                "datetime", "date", "time_ms", "timestamp_ms")
PRICE_COLUMNS = ("price", "px", "p")
QTY_COLUMNS = ("qty", "quantity", "size", "amount", "volume", "base_qty", "q")
SYMBOL_COLUMNS = ("symbol", "ticker", "instrument", "pair", "s")
MAKER_COLUMNS = ("is_buyer_maker", "isbuyermaker", "buyer_maker", "m")
SIDE_COLUMNS = ("side", "taker_side")
ID_COLUMNS = ("trade_id", "id", "agg_trade_id", "tradeid", "a")
TYPE_COLUMNS = ("order_type", "trade_type", "x")
AGG_ID_COLUMNS = ("first_trade_id", "last_trade_id")  # aggregate trades (Binance aggTrades)


@dataclass
class TickChunk:
    """One parsed chunk: the kept ``ticks`` and what happened to the other rows.

    ``read``: symbol → rows read (kept + filtered); ``filtered``: (symbol, reason) → rows dropped as
    not real trades; ``skipped``: reason → rows/frames that are not trades of the selected symbol
    (other stream types, other symbols); ``bad``: skipped malformed rows (``skip_bad``), at most
    :data:`columns.MAX_LISTED_BAD_ROWS` listed, ``bad_count`` all of them.
    """

    ticks: pd.DataFrame
    read: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    bad: list = field(default_factory=list)
    bad_count: int = 0


def read_ticks(path: str | os.PathLike, format: str | None = None, symbol: str | None = None,
               skip_bad: bool = False) -> pd.DataFrame:
    """All ticks of a file as one DataFrame, de-duplicated on (symbol, trade_id), in time order
    (stable: rows of one millisecond keep file order).

    Index: UTC DatetimeIndex named ``time``; columns: :data:`qdash.model.TICK_COLUMNS`. ``symbol``
    names the symbol of files that carry none (else it selects that symbol). Malformed rows raise
    :class:`DataFormatError` (file, line, field) unless ``skip_bad``. ``df.attrs`` holds
    ``filtered`` (reason → rows dropped), ``skipped`` and ``bad_rows``.
    """
    parts, filtered, skipped, bad = [], Counter(), Counter(), []
    for ch in iter_tick_chunks(path, format=format, symbol=symbol, skip_bad=skip_bad):
        parts.append(ch.ticks)
        for (_, reason), n in ch.filtered.items():
            filtered[reason] += n
        skipped.update(ch.skipped)
        bad.extend(ch.bad)
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    df = df.drop_duplicates(["symbol", "trade_id"])
    df = df.iloc[np.argsort(df["ts"].to_numpy(), kind="stable")].reset_index(drop=True)
    df.index = ms_to_index(df["ts"].to_numpy())
    df.attrs = {"filtered": dict(filtered), "skipped": dict(skipped),
                "bad_rows": [str(b) for b in bad]}
    return df


def iter_tick_batches(path: str | os.PathLike, format: str | None = None,
                      symbol: str | None = None, skip_bad: bool = False,
                      chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Canonical tick batches (RangeIndex, file order) of at most about ``chunk_rows`` rows;
    memory is bounded by the chunk, not the file. Not de-duplicated (the store does that).

    A malformed row raises :class:`DataFormatError` when its chunk is reached (batches before it
    were already yielded); :func:`qdash.io.load` checks the whole file before storing anything.
    """
    for ch in iter_tick_chunks(path, format=format, symbol=symbol, skip_bad=skip_bad,
                               chunk_rows=chunk_rows):
        if len(ch.ticks):
            yield ch.ticks


def iter_tick_chunks(path: str | os.PathLike, format: str | None = None,
                     symbol: str | None = None, skip_bad: bool = False,
                     chunk_rows: int = DEFAULT_CHUNK_ROWS, bar=None,
                     detected: Detected | None = None) -> Iterator[TickChunk]:
    """:class:`TickChunk` s of a tick file (the engine behind the public readers and ``load``).
    Always yields at least one chunk (possibly empty)."""
    det = detected or detect(path, format)
    if det.kind != "ticks":
        raise DataFormatError(f"holds candles ({det.format}), not ticks: use read_bars",
                              path=str(path))
    want = normalize_symbol(symbol) if symbol else None
    ctx = _Ctx(str(path), det, want, skip_bad)
    with open_data(path, bar) as (stream, _):
        if det.format == "ws-ndjson":
            chunks = _ws_chunks(stream, ctx, chunk_rows)
        elif det.format == "collector-ndjson":
            chunks = _with_synthetic_ids(_collector_chunks(stream, ctx, chunk_rows))
        else:
            chunks = _csv_chunks(stream, ctx, chunk_rows)
        empty = True
        for ch in chunks:
            empty = False
            yield ch
        if empty:
            yield TickChunk(tick_frame([], [], [], [], [], [], ctx.source))


@dataclass
class _Ctx:
    path: str
    det: Detected
    symbol: str | None  # selected/default symbol (normalised)
    skip_bad: bool

    @property
    def source(self) -> str:
        return self.det.format

    def file_symbol(self) -> str:
        sym = self.symbol or self.det.hints.symbol
        if not sym:
            raise DataFormatError("no symbol column and no symbol in the file name "
                                  "(BTCUSDT-trades-2024-07-18.csv); pass symbol=... / --symbol",
                                  path=self.path)
        return sym


def _finish(ctx: _Ctx, sym, ts, tid, price, qty, side, xtype, keep, chunk: TickChunk,
            last_id=None) -> TickChunk:
    """Apply symbol selection, trade-type and price/qty filters; count per symbol and reason.

    With ``last_id`` the rows are aggregate trades (``tid`` their first trade id): each kept row
    becomes one tick per trade id (:func:`qdash.binance.schema.expand_agg_trades`), so candles count
    trades as Binance klines do."""
    if ctx.symbol is not None and not isinstance(sym, str):
        other = keep & (sym != ctx.symbol)
        if other.any():
            chunk.skipped["rows of other symbols"] += int(other.sum())
            keep = keep & ~other
    syms = sym if not isinstance(sym, str) else np.full(len(ts), sym, dtype=object)
    for s, n in pd.Series(syms[keep]).value_counts(sort=False).items():
        chunk.read[s] += int(n)
    nonmarket = np.zeros(len(ts), dtype=bool)
    if xtype is not None:
        nonmarket = keep & (xtype != "MARKET") & (xtype != "")
        chunk.filtered.update(zip(syms[nonmarket].tolist(),
                                  [f"X={x}" for x in xtype[nonmarket]], strict=True))
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(price) & np.isfinite(qty)
        rest = keep & ~nonmarket
        dropped = {"non-finite": rest & ~finite, "price<=0": rest & finite & ~(price > 0),
                   "qty<=0": rest & finite & (price > 0) & ~(qty > 0)}
    for reason, mask in dropped.items():
        if mask.any():
            chunk.filtered.update((s, reason) for s in syms[mask].tolist())
            keep = keep & ~mask
    keep = keep & ~nonmarket
    if last_id is not None:
        chunk.ticks = expand_agg_trades(syms[keep], ts[keep], tid[keep], last_id[keep],
                                        price[keep], qty[keep], side[keep], ctx.source)
        return chunk
    chunk.ticks = tick_frame(syms[keep], ts[keep], tid[keep] if tid is not None else 0,
                             price[keep], qty[keep], side[keep], ctx.source)
    return chunk


# --- CSV -----------------------------------------------------------------------------------------

_PARSER_LINE = re.compile(r"line (\d+)")


def _csv_chunks(stream, ctx: _Ctx, chunk_rows: int) -> Iterator[TickChunk]:
    names = list(ctx.det.names)
    t = C.pick(names, TIME_COLUMNS)
    p = C.pick(names, PRICE_COLUMNS)
    q = C.pick(names, QTY_COLUMNS)
    missing = [what for what, col in (("time", t), ("price", p), ("size/qty", q)) if col is None]
    if missing:
        raise DataFormatError(f"no {' or '.join(missing)} column among {names}; expected e.g. "
                              "time/timestamp/ts, price, qty/size/quantity/volume",
                              path=ctx.path, line=1)
    sym_col = C.pick(names, SYMBOL_COLUMNS)
    maker_col = C.pick(names, MAKER_COLUMNS)
    side_col = None if maker_col else C.pick(names, SIDE_COLUMNS)
    id_col = C.pick(names, ID_COLUMNS)
    type_col = C.pick(names, TYPE_COLUMNS)
    agg = AGG_ID_COLUMNS if all(c in names for c in AGG_ID_COLUMNS) else None
    if sym_col is None:
        ctx.file_symbol()  # fail early when there is no symbol at all
    used = [c for c in (t, p, q, sym_col, maker_col, side_col, id_col, type_col) if c]
    used += list(agg or ())
    unique = _unique_names(names)
    rows = _read_csv(stream, ctx, unique, chunk_rows)
    rename = {unique[names.index(c)]: c for c in used}
    chunks = (_csv_chunk(df[list(rename)].rename(columns=rename), lines, ctx, t, p, q, sym_col,
                         maker_col, side_col, id_col, type_col, agg) for lines, df in rows)
    yield from chunks if id_col else _with_synthetic_ids(chunks)


def _unique_names(names: list[str]) -> list[str]:
    seen: Counter = Counter()
    out = []
    for n in names:
        out.append(n if not seen[n] else f"{n}.{seen[n]}")
        seen[n] += 1
    return out


def _read_csv(stream, ctx: _Ctx, names: list[str], chunk_rows: int
              ) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """Chunks of raw columns with the 1-based file line of every row.

    Rows with too many fields raise (strict) or are skipped and listed (``skip_bad``), via the
    parser's own report (all columns are parsed: with ``usecols`` pandas would not notice extra
    fields). Blank lines are kept as all-empty rows (so row → line stays exact) and
    dropped by the caller.
    """
    first_line = 2 if ctx.det.header else 1
    reader = pd.read_csv(
        stream, sep=ctx.det.delimiter, header=None, names=names,
        skiprows=1 if ctx.det.header else 0, chunksize=chunk_rows, skip_blank_lines=False,
        keep_default_na=False, na_values=[""], index_col=False, engine="c",
        on_bad_lines="warn" if ctx.skip_bad else "error", encoding_errors="replace")
    skipped_lines: list[int] = []
    next_line = first_line
    while True:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                df = next(reader)
        except StopIteration:
            return
        except (pd.errors.ParserError, ValueError) as e:
            m = _PARSER_LINE.search(str(e))
            raise DataFormatError(f"cannot parse CSV: {str(e).strip()}; nothing from this file "
                                  "was stored (or pass skip_bad=True / --skip-bad)",
                                  path=ctx.path, line=int(m.group(1)) if m else None) from e
        for w in caught:
            skipped_lines += [int(x) for x in re.findall(r"Skipping line (\d+)", str(w.message))]
        # physical line of each row: count up from next_line, stepping over skipped lines
        lines = np.arange(len(df), dtype=np.int64) + next_line
        for s in sorted(skipped_lines):
            lines[lines >= s] += 1
        if skipped_lines:
            df.attrs["bad_lines"] = [ln for ln in skipped_lines if ln < (lines[-1] if len(lines)
                                                                          else next_line)]
            skipped_lines = [ln for ln in skipped_lines if ln not in df.attrs["bad_lines"]]
        next_line = int(lines[-1]) + 1 if len(lines) else next_line
        yield lines, df


def _csv_chunk(df: pd.DataFrame, lines: np.ndarray, ctx: _Ctx, t, p, q, sym_col, maker_col,
               side_col, id_col, type_col, agg) -> TickChunk:
    chunk = TickChunk(None)
    for ln in df.attrs.get("bad_lines", []):
        chunk.bad.append(RowError("wrong number of fields", line=ln))
        chunk.bad_count += 1
    blank = df.isna().all(axis=1).to_numpy()
    if blank.any():
        df, lines = df[~blank], lines[~blank]
    err = C.RowErrors(lines)
    ts = C.times_ms(df[t], t, err)
    price = C.floats(df[p], p, err)
    qty = C.floats(df[q], q, err)
    sym = C.symbols(df[sym_col], sym_col, err) if sym_col else ctx.file_symbol()
    if maker_col:
        side = C.sides(df[maker_col], maker_col, err, taker_side=False)
    elif side_col:
        side = C.sides(df[side_col], side_col, err, taker_side=True)
    else:
        side = np.full(len(df), -1, dtype=np.int8)
    tid = C.integers(df[id_col], id_col, err) if id_col else None
    last = None
    if agg:  # aggregate trades: one tick per trade id first..last
        tid = C.integers(df[agg[0]], agg[0], err)
        last = C.integers(df[agg[1]], agg[1], err)
        err.mark(last < tid, agg[1], lambda i: f"last trade id {last[i]} is below the first "
                                               f"trade id {tid[i]}")
    xtype = C.labels(df[type_col]) if type_col else None
    if not ctx.skip_bad:
        err.raise_first(ctx.path)
    chunk.bad += err.sorted_rows()
    chunk.bad_count += int(err.mask.sum())
    return _finish(ctx, sym, ts, tid, price, qty, side, xtype, ~err.mask, chunk, last)


# --- NDJSON --------------------------------------------------------------------------------------

def _ws_chunks(stream, ctx: _Ctx, chunk_rows: int) -> Iterator[TickChunk]:
    max_errors = C.MAX_LISTED_BAD_ROWS if ctx.skip_bad else 1
    for first, lines in iter_line_blocks(stream, chunk_rows):
        res = decode_frames(lines, source="binance", first_line=first, max_errors=max_errors,
                            symbol=ctx.symbol)
        if res.errors and not ctx.skip_bad:
            C.reject(res.errors, ctx.path)
        chunk = TickChunk(None, bad=[e.replace(text=None) for e in res.errors],
                          bad_count=res.malformed)
        for k, v in res.counts.items():
            if k.startswith("skipped:"):
                chunk.skipped[k[8:] + " frames"] += v
        for (s, reason), n in res.filtered.items():
            if ctx.symbol is None or s == ctx.symbol:
                chunk.filtered[(s, reason)] += n
                chunk.read[s] += n
        tk = res.ticks
        if ctx.symbol is not None:
            sel = (tk["symbol"] == ctx.symbol).to_numpy()
            if not sel.all():
                chunk.skipped["rows of other symbols"] += int((~sel).sum())
                tk = tk[sel].reset_index(drop=True)
        for s, n in tk["symbol"].value_counts().items():
            chunk.read[s] += int(n)
        chunk.ticks = tk
        yield chunk


def _collector_chunks(stream, ctx: _Ctx, chunk_rows: int) -> Iterator[TickChunk]:
    loads = orjson.loads
    for first, lines in iter_line_blocks(stream, chunk_rows):
        rows, row_lines = [], []
        err_rows: list[RowError] = []
        for line_no, line in enumerate(lines, first):
            if not line.strip():
                continue
            try:
                d = loads(line)
            except orjson.JSONDecodeError as e:
                err_rows.append(RowError(f"invalid JSON ({e})", line=line_no))
                continue
            rows.append(d)
            row_lines.append(line_no)
        try:
            cols = _collector_fast(rows)
        except (KeyError, TypeError, ValueError, AttributeError):
            cols = None
        if cols is None:
            good, good_lines = [], []
            for d, ln in zip(rows, row_lines, strict=True):
                problem = _collector_row_problem(d)
                if problem:
                    fld, message = problem
                    err_rows.append(RowError(message, line=ln, field=fld))
                else:
                    good.append(d)
                    good_lines.append(ln)
            rows, row_lines = good, good_lines
            cols = _collector_fast(rows)
        sym, ts_text, price, qty = cols
        lines_arr = np.asarray(row_lines, dtype=np.int64)
        err = C.RowErrors(lines_arr)
        ts = C.times_ms(pd.Series(ts_text, dtype=object), "ts", err)
        if err_rows and not ctx.skip_bad:
            C.reject(err_rows, ctx.path)
        if not ctx.skip_bad:
            err.raise_first(ctx.path)
        bad = sorted(err_rows + err.rows, key=lambda r: r.line)
        chunk = TickChunk(None, bad=bad[:C.MAX_LISTED_BAD_ROWS], bad_count=len(bad))
        side = np.full(len(ts), -1, dtype=np.int8)
        yield _finish(ctx, sym, ts, None, price, qty, side, None, ~err.mask, chunk)


def _collector_fast(rows: list[dict]):
    sym = np.array([d["symbol"].upper() for d in rows], dtype=object)
    for s in set(sym.tolist()):
        if not is_valid_symbol(s):
            raise ValueError(s)
    ts_text = [d["ts"] for d in rows]
    if any(type(x) is not str and type(x) is not int for x in ts_text):
        raise TypeError("ts")
    price = np.array([d["price"] for d in rows], dtype=object)
    qty = np.array([d["size"] for d in rows], dtype=object)
    if price.shape != (len(rows),) or qty.shape != (len(rows),):
        raise ValueError("nested")
    return sym, ts_text, price.astype(np.float64), qty.astype(np.float64)


def _collector_row_problem(d) -> tuple[str | None, str] | None:
    if type(d) is not dict:
        return None, "expected a JSON object {\"symbol\",\"ts\",\"price\",\"size\"}"
    for key in ("symbol", "ts", "price", "size"):
        if key not in d:
            return key, "missing"
    s = d["symbol"]
    if type(s) is not str or not is_valid_symbol(s.upper()):
        return "symbol", f"expected a symbol such as BTCUSDT, got {s!r}"
    if type(d["ts"]) is not str and type(d["ts"]) is not int:
        return "ts", f"expected an ISO-8601 time, got {d['ts']!r}"
    for key in ("price", "size"):
        try:
            float(d[key])
        except (TypeError, ValueError):
            return key, f"expected a number, got {d[key]!r}"
    return None


# --- synthetic ids -------------------------------------------------------------------------------

def _with_synthetic_ids(chunks: Iterator[TickChunk]) -> Iterator[TickChunk]:
    """Give id-less ticks :func:`synthetic_trade_ids`, holding back the rows of each symbol's last
    timestamp in a chunk to the next chunk so a group of identical rows is never split across
    batches (the hold-back is bounded by the trades of one millisecond)."""
    carry = None
    prev = None
    for ch in chunks:
        t = ch.ticks if carry is None else pd.concat([carry, ch.ticks], ignore_index=True)
        carry = None
        if prev is not None:
            yield prev
        if len(t):
            hold = _last_time_rows(t)
            carry = t[hold]
            t = t[~hold].reset_index(drop=True)
        ch.ticks = _assign_ids(t)
        prev = ch
    if prev is not None:
        if carry is not None:
            prev.ticks = pd.concat([prev.ticks, _assign_ids(carry.reset_index(drop=True))],
                                   ignore_index=True)
        yield prev


def _last_time_rows(t: pd.DataFrame) -> np.ndarray:
    """Rows whose timestamp is the last one of their symbol in ``t``."""
    ts = t["ts"].to_numpy()
    syms = t["symbol"].to_numpy()
    hold = np.zeros(len(t), dtype=bool)
    for s in pd.unique(syms):
        mine = syms == s
        hold |= mine & (ts == ts[mine][-1])
    return hold


def _assign_ids(t: pd.DataFrame) -> pd.DataFrame:
    if len(t):
        t = t.copy()
        t["trade_id"] = synthetic_trade_ids(t["symbol"].to_numpy(), t["ts"].to_numpy(),
                                            t["price"].to_numpy(), t["qty"].to_numpy())
    return t[TICK_COLUMNS]

