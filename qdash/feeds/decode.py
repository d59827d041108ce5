"""Fast decoder of Binance USDⓈ-M WebSocket frames into canonical tick batches.

Input frames may be

* raw stream payloads ``{"e":"trade",...}``,
* combined-stream envelopes ``{"stream":"btcusdt@trade","data":{...}}``,
* either of those prefixed by a local receive time in ns and one space (``"<ns> {...}"``, the
  format of the hftbacktest captures in ``shared/data``),

as ``str`` or ``bytes``, with any mix of stream types. Only ``@trade`` (``"e":"trade"``) and
``@aggTrade`` (``"e":"aggTrade"``) frames become ticks:

* ``@trade``: ``ts`` = trade time ``T`` (ms), ``trade_id`` = ``t``. Only ``X == "MARKET"`` is kept;
  ``NA``, ``ADL``, ``INSURANCE_FUND`` (and any other type) are counted as ``filtered:X=<type>``.
  A frame without ``X`` (spot streams) counts as a market trade.
* ``@aggTrade``: ``trade_id`` = the **aggregate** id ``a`` (not a trade id; ``f``..``l`` are the
  trade ids it aggregates). Aggregate ids are a different id space from trade ids, so do not store
  ``@trade`` and ``@aggTrade`` ticks of the same symbol in one store: the ``(symbol, trade_id)``
  key would mix them.

Prices and sizes are parsed from their decimal strings to float64 (exactly ``float(str)``). Ticks
with a non-finite, zero or negative price or size are dropped and counted (``filtered:...``).
Every other event type (``depthUpdate``, ``bookTicker``, ...) is counted under ``skipped:<type>``;
control replies such as ``{"result":null,"id":1}`` under ``skipped:control``, REST depth
snapshots under ``skipped:depthSnapshot`` and other JSON objects under ``skipped:other``. A
frame that cannot be decoded (bad JSON, a trade without a field, a field of the wrong type) is
counted under ``malformed`` and never raises; the first ``max_errors`` problems are kept in
:attr:`DecodeResult.errors`.

Speed: first, the batch's frames are joined into one buffer and scanned by a numba-compiled byte
loop (:func:`_scan_frames`) that reads the trade fields of flat JSON objects (any key order) and
envelopes, classifies skipped types as below and parses the decimal strings exactly (Clinger's
fast path: integer mantissa < 2**53 divided or multiplied by an exact power of ten <= 1e22, one
correctly rounded operation, so the float equals ``float(s)``). It accepts only what it can prove
the orjson paths below decode identically (ASCII without escapes, no nested values but the
envelope's ``data``, numbers without exponent, no duplicate key, every field present and typed);
any other frame sends the whole batch to them. **The scanner is used only for batches of 8,192
frames or more — file chunks** — because that is where it pays: measured with
``bench/bench_decode.py`` on the real captures (2 busy shared cores, two runs), the scanner
decodes 4.2–4.4× as many frames/s as the orjson path at 8,192 frames and 6.8–7.8× at 60,000;
1.6–3.2× at 2,000 (a 100 ms flush at 20,000 frames/s, far above a usual watch list) and
0.9–1.2× at 50, the size of a usual live flush — where compiling or loading it (seconds, holding
the GIL) would also stall the event loop. So the live feed always
takes the orjson path below — one path, whatever else ran in the process — and ``qdash load``
(:mod:`qdash.io.prefetch` calls :func:`warm_up` once) takes the scanner.
Otherwise, a batch made only of ``trade`` frames (or only of ``aggTrade`` frames), raw or in
combined-stream envelopes, without receive-time prefix — what a trade stream and a trade file
are — takes a batch path: each frame is parsed once with orjson and the batch is routed and
extracted column-wise, with no per-frame Python branching. Any other batch (or one that does not
pass the path's checks) is decoded frame by frame, with the same result. Frame by frame, the
event type is read from the text (the first ``"e":"...``) before any JSON parsing, so
frames of skipped types cost a substring search, not a parse. Consequently a *skipped-type* frame is
counted by its type without being validated (a truncated depth frame counts as ``depthUpdate``,
not ``malformed``). Trade frames are always parsed in full with orjson and their fields extracted
column-wise; a batch whose fields do not all have the expected types is redone row by row, so the
fast path never changes a result. Decode frames in batches (tens to thousands per call): the fixed
cost of building a DataFrame is about 0.1 ms per call.

Typical use::

    res = decode_frames(messages)          # list of str/bytes frames
    store.write_ticks(res.ticks)           # canonical tick batch (qdash.model)
    res.counts["skipped:bookTicker"], res.errors[:3]
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import orjson
import pandas as pd
from numba import njit

from ..errors import RowError
from ..model import is_valid_symbol, tick_frame

__all__ = ["DecodeResult", "decode_frames", "decode_payloads", "merge_counts",
           "warm_up"]

DEFAULT_MAX_ERRORS = 10
_SUB_BATCH = 8192  # frames parsed and extracted together on the batch path

_E_KEY = b'"e":"'
_TRADE = b"trade"
_AGG = b"aggTrade"
_NUMBER_LIST = re.compile(r"[0-9.eE+\-,]*")
_get_e, _get_T, _get_s, _get_p, _get_q, _get_m = map(itemgetter, "eTspqm")


@dataclass
class DecodeResult:
    """Outcome of decoding a batch of frames.

    ``ticks``: canonical tick batch (``qdash.model.TICK_COLUMNS``) in frame order.
    ``counts``: ``frames`` (non-blank frames seen), ``ticks`` (rows in ``ticks``), ``trade`` /
    ``aggTrade`` (trade frames decoded), ``filtered:<reason>`` (trades dropped: ``X=NA``,
    ``non-finite``, ``price<=0``, ``qty<=0``), ``skipped:<event type>``, ``malformed``.
    Keys with a zero count are absent.
    ``errors``: the first few undecodable frames (at most ``max_errors``), as
    :class:`~qdash.errors.RowError` with ``line`` (the frame's number), ``field`` and ``text``.
    ``lines``: for each row of ``ticks``, the line number of its frame (numbered from
    ``first_line``), int64.
    ``filtered``: (symbol, reason) → trades dropped, the per-symbol detail of ``filtered:*``.
    """

    ticks: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    lines: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    filtered: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def malformed(self) -> int:
        return self.counts.get("malformed", 0)


def merge_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    """Add the counts of ``more`` into ``total`` (in place) and return ``total``."""
    for k, v in more.items():
        total[k] = total.get(k, 0) + v
    return total


class _Collector:
    """Accumulates parsed payloads, counts and errors for one decode call."""

    def __init__(self, max_errors: int):
        self.trades: list[dict] = []
        self.trade_lines: list[int] | range = []
        self.aggs: list[dict] = []
        self.agg_lines: list[int] | range = []
        self.counts: dict[str, int] = {}
        self.filtered: dict[tuple[str, str], int] = {}
        self.errors: list[RowError] = []
        self.max_errors = max_errors

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def bad(self, line: int, fld: str | None, message: str, text) -> None:
        self.count("malformed")
        if len(self.errors) < self.max_errors:
            if isinstance(text, (bytes, bytearray, memoryview)):
                text = bytes(text[:120]).decode("utf-8", "replace")
            elif not isinstance(text, str):
                text = repr(text)[:120]
            self.errors.append(RowError(message, line=line, field=fld, text=text[:120]))

    def payload(self, d, line: int, text) -> None:
        """Route one parsed JSON value (payload, envelope or REST row)."""
        if type(d) is not dict:
            self.bad(line, None, f"expected a JSON object, got {type(d).__name__}", text)
            return
        data = d.get("data")
        if data is not None and "stream" in d:
            if type(data) is not dict:
                self.bad(line, "data", "combined-stream envelope whose data is not an object", text)
                return
            d = data
        e = d.get("e")
        if e == "trade":
            self.trades.append(d)
            self.trade_lines.append(line)
        elif e == "aggTrade" or (e is None and "a" in d and "T" in d):  # REST aggTrades row
            self.aggs.append(d)
            self.agg_lines.append(line)
        elif e is None and "id" in d and "price" in d and "time" in d:  # REST trades row
            self.trades.append({"T": d.get("time"), "s": d.get("s"), "t": d.get("id"),
                                "p": d.get("price"), "q": d.get("qty"),
                                "m": d.get("isBuyerMaker")})
            self.trade_lines.append(line)
        elif e is None and ("result" in d and "id" in d or "code" in d and "msg" in d):
            self.count("skipped:control")
        elif isinstance(e, str):
            self.count("skipped:" + e)
        elif "lastUpdateId" in d:  # REST depth snapshot, recorded by some capture tools
            self.count("skipped:depthSnapshot")
        else:
            self.count("skipped:other")


def decode_frames(lines: Iterable[str | bytes], source: str = "binance", *, first_line: int = 1,
                  max_errors: int = DEFAULT_MAX_ERRORS, symbol: str | None = None) -> DecodeResult:
    """Decode WebSocket text frames (see the module docstring) into a :class:`DecodeResult`.

    ``first_line`` numbers the frames in errors and :attr:`DecodeResult.lines` (pass the file line
    of the first frame when reading a file). ``symbol`` fills in frames that lack ``s`` (REST rows).
    """
    if not isinstance(lines, (list, tuple)):
        lines = list(lines)
    if len(lines) >= _SUB_BATCH:  # file chunks: where the scanner pays (module docstring)
        res = _scanned_batch(lines, source, first_line, max_errors)
        if res is not None:
            return res
    return _decode_orjson(lines, source, first_line, max_errors, symbol)


def _decode_orjson(lines: list | tuple, source: str, first_line: int, max_errors: int,
                   symbol: str | None) -> DecodeResult:
    """The orjson paths (batch, then frame by frame): every frame parsed by ``orjson.loads``."""
    if len(lines) > _SUB_BATCH:
        res = _large_trade_batch(lines, source, first_line, max_errors, symbol)
        if res is not None:
            return res
    col = _trade_batch(lines, first_line, max_errors)
    if col is None:
        col = _frame_by_frame(lines, first_line, max_errors)
    return _finish(col, source, symbol)


_BATCH_KEYS = {str: ('"e":"', '"e":"trade"', '"e":"aggTrade"', '"stream"', "\\"),
               bytes: (b'"e":"', b'"e":"trade"', b'"e":"aggTrade"', b'"stream"', b"\\")}


def _trade_batch(lines: list | tuple, first_line: int, max_errors: int) -> _Collector | None:
    """Batch fast path for the common case: every frame a ``trade`` (or every frame an
    ``aggTrade``) payload or combined-stream envelope, without receive-time prefix, blank line or
    backslash escape.

    The frames are still parsed one by one (so a frame's JSON is exactly what the frame-by-frame
    path sees), but routing is done for the whole batch at once. Returns None when the batch does
    not qualify; the caller then decodes frame by frame, with the same result. The frame-by-frame
    path classifies a frame by the first ``"e":"`` of its text, so qualifying also needs every
    ``"e":"`` of the batch to name the batch's event type: in JSON without escapes, ``"e":"`` only
    occurs as a key ``e`` with a string value, so counting the occurrences checks exactly that.
    """
    if not lines:
        return None
    keys = _BATCH_KEYS.get(type(lines[0]))
    if keys is None:
        return None
    e_key, e_trade, e_agg, stream_key, backslash = keys
    try:
        text = lines[0][:0].join(lines)
    except TypeError:  # str and bytes mixed
        return None
    if backslash in text:
        return None
    n_e = text.count(e_key)
    if n_e == text.count(e_trade):
        want = "trade"
    elif n_e == text.count(e_agg):
        want = "aggTrade"
    else:
        return None
    try:
        docs = list(map(orjson.loads, lines))
        d0 = docs[0]
        if type(d0) is dict and "stream" in d0:  # combined-stream envelopes
            payloads = [d["data"] for d in docs if "stream" in d]
            if len(payloads) != len(docs):
                return None
        else:  # raw payloads: none may be an envelope
            if stream_key in text and any(type(d) is not dict or "stream" in d for d in docs):
                return None
            payloads = docs
        if set(map(_get_e, payloads)) != {want}:  # non-dicts raise TypeError
            return None
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    col = _Collector(max_errors)
    numbers = range(first_line, first_line + len(lines))
    if want == "trade":
        col.trades, col.trade_lines = payloads, numbers
    else:
        col.aggs, col.agg_lines = payloads, numbers
    col.count("frames", len(lines))
    return col


def _large_trade_batch(lines: list | tuple, source: str, first_line: int, max_errors: int,
                       symbol: str | None) -> DecodeResult | None:
    """The batch path for many frames (a file chunk), :data:`_SUB_BATCH` frames at a time:
    parsing, extracting and building the ticks of a few thousand frames at once keeps their
    objects in the CPU cache (about a quarter faster than each step over the whole chunk).

    None unless every sub-batch takes the batch path, with the same event type and fields that
    all extract cleanly (so there is no error to report); the caller then decodes the whole batch
    as usual. Each sub-batch's result is exactly the frame-by-frame one, so their concatenation is
    the frame-by-frame result of the whole batch.
    """
    out = _Collector(max_errors)
    results, kind = [], None
    for i in range(0, len(lines), _SUB_BATCH):
        col = _trade_batch(lines[i:i + _SUB_BATCH], first_line + i, max_errors)
        if col is None:
            return None
        if col.trades:
            rows, numbers, id_key, k = col.trades, col.trade_lines, "t", "trade"
        else:
            rows, numbers, id_key, k = col.aggs, col.agg_lines, "a", "aggTrade"
        if kind not in (None, k):
            return None
        kind = k
        try:
            cols = _extract_fast(rows, numbers, id_key, symbol)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        results.append(_build(out, [cols], source))
    out.count("frames", len(lines))
    out.count(kind, len(lines))
    ticks = pd.concat([r.ticks for r in results], ignore_index=True)
    return DecodeResult(ticks, out.counts, out.errors,
                        np.concatenate([r.lines for r in results]), out.filtered)


def _frame_by_frame(lines: Iterable[str | bytes], first_line: int, max_errors: int) -> _Collector:
    """The general path: classify each frame by its text, parse trade frames and route them."""
    col = _Collector(max_errors)
    loads = orjson.loads
    trades, trade_lines, aggs, agg_lines = col.trades, col.trade_lines, col.aggs, col.agg_lines
    counts = col.counts
    blank = 0
    line_no = first_line - 1
    for line_no, raw in enumerate(lines, first_line):
        line = raw.encode() if type(raw) is str else raw
        k = line.find(_E_KEY)
        if k >= 0:  # fast path: classify by the event type in the text
            etype = line[k + 5:line.find(b'"', k + 5)]
            if etype == _TRADE:
                want, rows, rows_lines = "trade", trades, trade_lines
            elif etype == _AGG:
                want, rows, rows_lines = "aggTrade", aggs, agg_lines
            else:
                key = "skipped:" + etype.decode("utf-8", "replace")
                counts[key] = counts.get(key, 0) + 1
                continue
            if line[0] != 123:  # not "{": "<receive ns> <json>" (or leading blanks)
                sp = line.find(b" ")
                body = line[sp + 1:] if sp > 0 and line[:1].isdigit() else line
            else:
                body = line
            try:
                d = loads(body)
            except orjson.JSONDecodeError as exc:
                col.bad(line_no, None, f"invalid JSON ({exc})", line)
                continue
            if type(d) is dict:
                inner = d.get("data")
                p = inner if type(inner) is dict and "stream" in d else d
                if p.get("e") == want:
                    rows.append(p)
                    rows_lines.append(line_no)
                    continue
            col.payload(d, line_no, line)
            continue
        if not line.strip():
            blank += 1
            continue
        body = line
        if line[:1].isdigit():  # "<receive ns> <json>"
            sp = line.find(b" ")
            body = line[sp + 1:] if sp > 0 else b""
        try:
            d = loads(body)
        except orjson.JSONDecodeError as exc:
            col.bad(line_no, None, f"invalid JSON ({exc})", line)
            continue
        col.payload(d, line_no, line)
    frames = line_no - first_line + 1 - blank
    col.count("frames", frames)
    return col


def decode_payloads(payloads: Iterable[dict], source: str = "binance", *, symbol: str | None = None,
                    first_line: int = 1, max_errors: int = DEFAULT_MAX_ERRORS) -> DecodeResult:
    """Decode already-parsed payloads: WS ``trade``/``aggTrade`` dicts, envelopes, or REST rows
    (``/fapi/v1/aggTrades`` rows ``{"a","p","q","f","l","T","m"}``, ``/fapi/v1/trades`` rows
    ``{"id","price","qty","time","isBuyerMaker"}``). REST rows carry no symbol: pass ``symbol``.
    """
    col = _Collector(max_errors)
    n = 0
    for i, d in enumerate(payloads, first_line):
        n += 1
        col.payload(d, i, d)
    col.count("frames", n)
    return _finish(col, source, symbol)


def _filter_reasons(price: np.ndarray, qty: np.ndarray) -> np.ndarray | None:
    """Per row: why it is not a real trade (``non-finite``, ``price<=0``, ``qty<=0``) or ``""``;
    None when every row is fine."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(price) & np.isfinite(qty)
        pos_p, pos_q = price > 0, qty > 0
    if (finite & pos_p & pos_q).all():
        return None
    return np.where(~finite, "non-finite", np.where(~pos_p, "price<=0",
                                                    np.where(~pos_q, "qty<=0", "")))


def _drop(col: _Collector, symbol: str, reason: str) -> None:
    col.count("filtered:" + reason)
    key = (symbol, reason)
    col.filtered[key] = col.filtered.get(key, 0) + 1


# --- column extraction ---------------------------------------------------------------------------

class _Cols(NamedTuple):
    ts: np.ndarray
    symbol: np.ndarray
    trade_id: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    xtype: list | None
    lines: np.ndarray


_ARRAY_FIELDS = ("ts", "symbol", "trade_id", "price", "qty", "side", "lines")


def _finish(col: _Collector, source: str, symbol: str | None) -> DecodeResult:
    parts = []
    if col.trades:
        col.count("trade", len(col.trades))
        parts.append(_extract(col, col.trades, col.trade_lines, "t", symbol))
    if col.aggs:
        col.count("aggTrade", len(col.aggs))
        parts.append(_extract(col, col.aggs, col.agg_lines, "a", symbol))
    return _build(col, [p for p in parts if len(p.ts)], source)


def _build(col: _Collector, parts: list[_Cols], source: str) -> DecodeResult:
    """Filter the extracted trades (trade type, price and size) and build the tick batch."""
    if not parts:
        col.errors.sort(key=lambda e: e.line)
        empty = np.empty(0)
        ticks = tick_frame(np.empty(0, dtype=object), empty, empty, empty, empty, empty, source)
        return DecodeResult(ticks, col.counts, col.errors, np.empty(0, dtype=np.int64),
                            col.filtered)
    keep_masks = []
    for p in parts:
        keep = np.ones(len(p.ts), dtype=bool)
        if p.xtype is not None and set(p.xtype) - {"MARKET", None}:
            market = np.fromiter((x == "MARKET" or x is None for x in p.xtype), dtype=bool,
                                 count=len(p.xtype))
            for i in np.flatnonzero(~market):
                _drop(col, p.symbol[i], f"X={p.xtype[i]}")
            keep &= market
        reason = _filter_reasons(p.price, p.qty)
        if reason is not None:
            for i in np.flatnonzero(keep & (reason != "")):
                _drop(col, p.symbol[i], reason[i])
            keep &= reason == ""
        keep_masks.append(keep)
    cat = [np.concatenate([getattr(p, f)[k] for p, k in zip(parts, keep_masks, strict=True)])
           for f in _ARRAY_FIELDS]
    if len(parts) > 1:  # trades and aggTrades mixed: restore frame order
        order = np.argsort(cat[-1], kind="stable")
        cat = [c[order] for c in cat]
    ts, sym, tid, price, qty, side, lines = cat
    ticks = tick_frame(sym, ts, tid, price, qty, side, source)
    col.count("ticks", len(ticks))
    col.errors.sort(key=lambda e: e.line)
    return DecodeResult(ticks, col.counts, col.errors, lines, col.filtered)


def _extract(col: _Collector, rows: list[dict], lines: list[int] | range, id_key: str,
             symbol: str | None) -> _Cols:
    """Column-wise extraction; any surprise sends the batch to the row-by-row path."""
    try:
        return _extract_fast(rows, lines, id_key, symbol)
    except (KeyError, TypeError, ValueError, OverflowError):
        return _extract_slow(col, rows, lines, id_key, symbol)


def _extract_fast(rows: list[dict], lines: list[int] | range, id_key: str,
                  symbol: str | None) -> _Cols:
    n = len(rows)
    ts = np.array(list(map(_get_T, rows)))
    tid = np.array(list(map(itemgetter(id_key), rows)))
    if ts.dtype.kind != "i" or tid.dtype.kind != "i" or ts.shape != (n,) or tid.shape != (n,):
        raise TypeError("non-integer time or id")
    if symbol is None:
        syms = list(map(_get_s, rows))
    else:
        syms = [d.get("s") or symbol for d in rows]
    for s in set(syms):
        if type(s) is not str or not is_valid_symbol(s):
            raise ValueError("bad symbol")
    price = _floats(list(map(_get_p, rows)))
    qty = _floats(list(map(_get_q, rows)))
    m = np.array(list(map(_get_m, rows)))
    if m.dtype != bool or m.shape != (n,):
        raise TypeError("non-boolean m")
    xtype = list(map(dict.get, rows, repeat("X"))) if id_key == "t" else None
    if xtype is not None and any(x is not None and type(x) is not str for x in set(xtype)):
        raise TypeError("non-string X")
    return _Cols(ts.astype(np.int64), np.array(syms, dtype=object), tid.astype(np.int64), price,
                 qty, m.astype(np.int8), xtype, _line_array(lines))


def _line_array(lines: list[int] | range) -> np.ndarray:
    if type(lines) is range:
        return np.arange(lines.start, lines.stop, dtype=np.int64)
    return np.asarray(lines, dtype=np.int64)


def _floats(values: list) -> np.ndarray:
    """Decimal strings → float64, exactly ``float(s)`` (numbers pass through).

    Fast path: the strings joined by commas are parsed as one JSON array (orjson parses decimals
    with correct rounding, as ``float`` does) when the text holds only number characters and the
    count comes out right; anything else (``"nan"``, numbers not strings...) goes to ``float``.
    """
    try:
        text = ",".join(values)
    except TypeError:
        text = None
    if text is not None and _NUMBER_LIST.fullmatch(text):
        try:
            a = np.array(orjson.loads("[" + text + "]"), dtype=np.float64)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            a = None
        if a is not None and a.shape == (len(values),):
            return a
    a = np.array(values, dtype=object)
    if a.shape != (len(values),):
        raise ValueError("nested value")
    return a.astype(np.float64)


def _extract_slow(col: _Collector, rows: list[dict], lines: list[int] | range,
                  id_key: str, symbol: str | None) -> _Cols:
    out = []
    good_lines = []
    xtypes = []
    for d, line in zip(rows, lines, strict=True):
        try:
            out.append(_one(d, id_key, symbol))
        except _FieldError as exc:
            col.bad(line, exc.field, exc.message, orjson.dumps(d))
            continue
        good_lines.append(line)
        if id_key == "t":
            xtypes.append(d.get("X"))
    if not out:
        e = np.empty(0)
        return _Cols(e.astype(np.int64), e.astype(object), e.astype(np.int64), e, e,
                     e.astype(np.int8), [] if id_key == "t" else None, e.astype(np.int64))
    ts, sym, tid, p, q, m = zip(*out, strict=True)
    return _Cols(np.array(ts, dtype=np.int64), np.array(sym, dtype=object),
                 np.array(tid, dtype=np.int64), np.array(p, dtype=np.float64),
                 np.array(q, dtype=np.float64), np.array(m, dtype=np.int8),
                 xtypes if id_key == "t" else None, np.array(good_lines, dtype=np.int64))


class _FieldError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _one(d: dict, id_key: str, symbol: str | None) -> tuple:
    def need(key):
        if key not in d:
            raise _FieldError(key, "missing")
        return d[key]

    def integer(key):
        v = need(key)
        if type(v) is not int or not -2**63 <= v < 2**63:
            raise _FieldError(key, f"expected an integer, got {v!r}")
        return v

    def number(key):
        v = need(key)
        if type(v) is str or (type(v) in (int, float)):
            try:
                return float(v)
            except ValueError:
                pass
        raise _FieldError(key, f"expected a decimal string such as \"3424.98\", got {v!r}")

    ts = integer("T")
    tid = integer(id_key)
    s = d.get("s") or symbol
    if type(s) is not str or not is_valid_symbol(s):
        raise _FieldError("s", f"expected an upper-case symbol such as \"BTCUSDT\", got {s!r}")
    p, q = number("p"), number("q")
    m = need("m")
    if type(m) is not bool:
        raise _FieldError("m", f"expected true or false, got {m!r}")
    x = d.get("X")
    if x is not None and type(x) is not str:
        raise _FieldError("X", f"expected a trade type string such as \"MARKET\", got {x!r}")
    return ts, s, tid, p, q, int(m)


# --- numba byte scanner (the fast path) ----------------------------------------------------------
#
# The batch's frames are joined by b"\n" into one buffer and each frame is scanned by a compiled
# loop that only *accepts* what it can prove the orjson path decodes to the same tick: one flat
# JSON object (or a combined-stream envelope with a flat ``data`` object), any key order, strings
# without escapes or non-ASCII bytes, numbers without exponent, no arrays. Anything else marks the
# frame "not handled" and the whole batch goes to the orjson path, so results (ticks, counts,
# errors, line numbers) are those of the orjson path by construction.

_K_E, _K_S, _K_T_ID, _K_A, _K_P, _K_Q, _K_TIME, _K_M, _K_X, _K_STREAM, _K_DATA = range(11)
_N_KEYS = 11
_V_STR, _V_NUM, _V_TRUE, _V_FALSE, _V_NULL, _V_OBJ = range(1, 7)
_POW10 = np.array([10.0 ** k for k in range(23)])  # exact: every 10**k, k <= 22, is a double
_MAX_SYMBOLS = 4096
_KIND_SKIPPED, _KIND_TRADE, _KIND_AGG = 0, 1, 2
_B_TRUE, _B_FALSE, _B_NULL, _B_TRADE, _B_AGG, _B_MARKET = (
    np.frombuffer(w, dtype=np.uint8).copy() for w in (b"true", b"false", b"null", b"trade",
                                                      b"aggTrade", b"MARKET"))


@njit(cache=True, nogil=True)
def _ws(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13 or buf[i] == 10):
        i += 1
    return i


@njit(cache=True, nogil=True)
def _string_end(buf, i, end):
    """``buf[i]`` is an opening quote: index of the closing quote, or -1 when it is missing.
    (The buffer holds no backslash, control or non-ASCII byte: :func:`_plain_bytes`.)"""
    i += 1
    while i < end:
        if buf[i] == 34:
            return i
        i += 1
    return -1


@njit(cache=True, nogil=True)
def _plain_bytes(buf):
    """True when ``buf`` has no backslash, no non-ASCII byte and no control byte but newlines:
    then every JSON string in it is plain ASCII without escapes."""
    bad = 0
    for k in range(len(buf)):
        c = buf[k]
        bad |= (c >= 128) | (c == 92) | ((c < 32) & (c != 10))
    return bad == 0


@njit(cache=True, nogil=True)
def _number_end(buf, i, end):
    """End of a JSON number without exponent starting at ``i`` (at most 40 bytes), or -1."""
    j = i
    if j < end and buf[j] == 45:
        j += 1
    if j >= end or buf[j] < 48 or buf[j] > 57:
        return -1
    if buf[j] == 48:
        j += 1
    else:
        while j < end and 48 <= buf[j] <= 57:
            j += 1
    if j < end and buf[j] == 46:
        j += 1
        d0 = j
        while j < end and 48 <= buf[j] <= 57:
            j += 1
        if j == d0:
            return -1
    if j < end and (buf[j] == 101 or buf[j] == 69):  # exponent: orjson may overflow, leave it
        return -1
    if j - i > 40:
        return -1
    return j


@njit(cache=True, nogil=True)
def _literal_end(buf, i, end, word):
    n = len(word)
    if i + n > end:
        return -1
    for k in range(n):
        if buf[i + k] != word[k]:
            return -1
    return i + n


@njit(cache=True, nogil=True)
def _key_slot(buf, ks, ke):
    """Slot of the key ``buf[ks:ke]`` (without quotes), or -1 for a key the decoder ignores."""
    n = ke - ks
    if n == 1:
        c = buf[ks]
        if c == 101:
            return _K_E
        if c == 115:
            return _K_S
        if c == 116:
            return _K_T_ID
        if c == 97:
            return _K_A
        if c == 112:
            return _K_P
        if c == 113:
            return _K_Q
        if c == 84:
            return _K_TIME
        if c == 109:
            return _K_M
        if c == 88:
            return _K_X
        return -1
    if n == 6 and (buf[ks] == 115 and buf[ks + 1] == 116 and buf[ks + 2] == 114
                   and buf[ks + 3] == 101 and buf[ks + 4] == 97 and buf[ks + 5] == 109):
        return _K_STREAM
    if n == 4 and buf[ks] == 100 and buf[ks + 1] == 97 and buf[ks + 2] == 116 and buf[ks + 3] == 97:
        return _K_DATA
    return -1


@njit(cache=True, nogil=True)
def _scan_object(buf, i, end, slots):
    """Scan the JSON object starting at ``buf[i] == "{"`` (after the prefix rule): flat, or with
    one ``data`` object at the top level. ``slots[depth, key] = (type, start, end)``. Returns the
    index after the closing brace, or -1 when the object is not one the scanner accepts."""
    if i >= end or buf[i] != 123:
        return -1
    depth = 0
    i = _ws(buf, i + 1, end)
    if i < end and buf[i] == 125:  # {}
        return i + 1
    while True:
        if i >= end or buf[i] != 34:
            return -1
        ke = _string_end(buf, i, end)
        if ke < 0:
            return -1
        slot = _key_slot(buf, i + 1, ke)
        i = _ws(buf, ke + 1, end)
        if i >= end or buf[i] != 58:
            return -1
        i = _ws(buf, i + 1, end)
        if i >= end:
            return -1
        c = buf[i]
        vs = i
        entered = False
        if c == 34:
            ve = _string_end(buf, i, end)
            if ve < 0:
                return -1
            vtype, vs, i = _V_STR, i + 1, ve + 1
        elif c == 45 or 48 <= c <= 57:
            ve = _number_end(buf, i, end)
            if ve < 0:
                return -1
            vtype, i = _V_NUM, ve
        elif c == 116:
            vtype, i = _V_TRUE, _literal_end(buf, i, end, _B_TRUE)
        elif c == 102:
            vtype, i = _V_FALSE, _literal_end(buf, i, end, _B_FALSE)
        elif c == 110:
            vtype, i = _V_NULL, _literal_end(buf, i, end, _B_NULL)
        elif c == 123 and depth == 0 and slot == _K_DATA:
            vtype, entered = _V_OBJ, True
        else:
            return -1
        if i < 0:
            return -1
        if slot >= 0:
            if slots[depth, slot, 0] != 0:  # duplicate key: leave it to orjson
                return -1
            slots[depth, slot, 0] = vtype
            slots[depth, slot, 1] = vs
            slots[depth, slot, 2] = i - 1 if vtype == _V_STR else i
        if entered:
            depth = 1
            i = _ws(buf, i + 1, end)
            if i < end and buf[i] == 125:  # "data":{}
                depth = 0
                i = _ws(buf, i + 1, end)
            else:
                continue
        else:
            i = _ws(buf, i, end)
        while True:  # after a value: "," or "}" (closing "data" returns to the top level)
            if i >= end:
                return -1
            if buf[i] == 44:
                i = _ws(buf, i + 1, end)
                break
            if buf[i] != 125:
                return -1
            if depth == 0:
                return i + 1
            depth = 0
            i = _ws(buf, i + 1, end)


@njit(cache=True, nogil=True)
def _parse_int(buf, s, e):
    """A JSON integer (no fraction) of at most 18 digits; ok flag and value."""
    neg = buf[s] == 45
    if neg:
        s += 1
    if e - s > 18 or e <= s:
        return False, 0
    v = 0
    for k in range(s, e):
        c = buf[k]
        if c < 48 or c > 57:
            return False, 0
        v = v * 10 + (c - 48)
    return True, -v if neg else v


@njit(cache=True, nogil=True)
def _parse_decimal(buf, s, e):
    """``float(buf[s:e])`` for ``[+-]digits[.digits][(e|E)[+-]digits]`` when Clinger's fast path
    applies (mantissa < 2**53, power of ten <= 22: one correctly rounded IEEE operation); ok flag
    and value."""
    if s >= e:
        return False, 0.0
    neg = False
    c = buf[s]
    if c == 45 or c == 43:
        neg = c == 45
        s += 1
    mant = 0
    ndig = 0  # significant digits in mant
    nd = 0  # digits seen
    frac = 0
    seen_dot = False
    while s < e:
        c = buf[s]
        if 48 <= c <= 57:
            nd += 1
            if mant > 0 or c != 48:
                ndig += 1
                if ndig > 17:
                    return False, 0.0
                mant = mant * 10 + (c - 48)
            if seen_dot:
                frac += 1
        elif c == 46 and not seen_dot:
            seen_dot = True
        else:
            break
        s += 1
    if nd == 0:
        return False, 0.0
    exp = 0
    if s < e:
        c = buf[s]
        if c != 101 and c != 69:
            return False, 0.0
        s += 1
        eneg = False
        if s < e and (buf[s] == 45 or buf[s] == 43):
            eneg = buf[s] == 45
            s += 1
        if s >= e or e - s > 4:
            return False, 0.0
        for k in range(s, e):
            c = buf[k]
            if c < 48 or c > 57:
                return False, 0.0
            exp = exp * 10 + (c - 48)
        if eneg:
            exp = -exp
    if mant >= 2 ** 53:
        return False, 0.0
    k = frac - exp
    if mant == 0:
        v = 0.0
    elif 0 <= k <= 22:
        v = mant / _POW10[k]
    elif -22 <= k < 0:
        v = mant * _POW10[-k]
    else:
        return False, 0.0
    return True, -v if neg else v


@njit(cache=True, nogil=True)
def _bytes_equal(buf, s, e, word):
    if e - s != len(word):
        return False
    for k in range(len(word)):
        if buf[s + k] != word[k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _scan_frames(buf, starts, ends):
    """Scan every frame ``buf[starts[i]:ends[i]]``. Returns ``ok`` (False: the batch is not
    handled, the index of the first frame that is not is in ``kind[0]``) and per frame: ``kind``
    (skipped / trade / aggTrade), ``ts``, ``tid``, ``price``, ``qty``, ``m``, ``sym`` (index into
    the distinct symbols ``sym_start``/``sym_end``), ``xcode`` (0 no ``X``, 1 ``MARKET``,
    2 other, spelled by ``x_start``/``x_end``), and for skipped frames the event type's span in
    ``x_start``/``x_end``; then the number of distinct symbols."""
    n = len(starts)
    kind = np.zeros(n, dtype=np.int8)
    ts = np.zeros(n, dtype=np.int64)
    tid = np.zeros(n, dtype=np.int64)
    price = np.zeros(n, dtype=np.float64)
    qty = np.zeros(n, dtype=np.float64)
    side = np.zeros(n, dtype=np.int8)
    sym = np.zeros(n, dtype=np.int64)
    xcode = np.zeros(n, dtype=np.int8)
    x_start = np.zeros(n, dtype=np.int64)
    x_end = np.zeros(n, dtype=np.int64)
    sym_start = np.zeros(_MAX_SYMBOLS, dtype=np.int64)
    sym_end = np.zeros(_MAX_SYMBOLS, dtype=np.int64)
    sym_hash = np.zeros(_MAX_SYMBOLS, dtype=np.uint64)
    n_sym = 0
    slots = np.zeros((2, _N_KEYS, 3), dtype=np.int64)
    if not _plain_bytes(buf):
        return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
            sym_start, sym_end, n_sym
    for r in range(n):
        ls, le = starts[r], ends[r]
        # classify by the first '"e":"' of the text, as the frame-by-frame path does
        k = -1
        for j in range(ls, le - 4):
            if (buf[j] == 34 and buf[j + 1] == 101 and buf[j + 2] == 34 and buf[j + 3] == 58
                    and buf[j + 4] == 34):
                k = j + 5
                break
        if k < 0:
            kind[0] = r
            return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                sym_start, sym_end, n_sym
        q = k
        while q < le and buf[q] != 34:
            q += 1
        if q >= le:
            kind[0] = r
            return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                sym_start, sym_end, n_sym
        if _bytes_equal(buf, k, q, _B_TRADE):
            want = _KIND_TRADE
        elif _bytes_equal(buf, k, q, _B_AGG):
            want = _KIND_AGG
        else:
            kind[r] = _KIND_SKIPPED
            x_start[r], x_end[r] = k, q
            continue
        # receive-time prefix: "<digits...> <json>"
        body = ls
        if buf[ls] != 123 and 48 <= buf[ls] <= 57:
            sp = ls
            while sp < le and buf[sp] != 32:
                sp += 1
            if sp < le:
                body = sp + 1
        body = _ws(buf, body, le)
        slots[:] = 0
        stop = _scan_object(buf, body, le, slots)
        good = stop >= 0 and _ws(buf, stop, le) == le
        d = 0
        if good and slots[0, _K_DATA, 0] != 0:  # envelope: data must be an object, with stream
            good = slots[0, _K_DATA, 0] == _V_OBJ and slots[0, _K_STREAM, 0] != 0
            d = 1
        if good:
            e_t, e_s, e_e = slots[d, _K_E, 0], slots[d, _K_E, 1], slots[d, _K_E, 2]
            good = e_t == _V_STR and _bytes_equal(buf, e_s, e_e, _B_TRADE if want == _KIND_TRADE
                                                   else _B_AGG)
        id_slot = _K_T_ID if want == _KIND_TRADE else _K_A
        if good:
            good = (slots[d, _K_TIME, 0] == _V_NUM and slots[d, id_slot, 0] == _V_NUM
                    and slots[d, _K_P, 0] == _V_STR and slots[d, _K_Q, 0] == _V_STR
                    and slots[d, _K_S, 0] == _V_STR
                    and slots[d, _K_S, 2] > slots[d, _K_S, 1]
                    and (slots[d, _K_M, 0] == _V_TRUE or slots[d, _K_M, 0] == _V_FALSE))
        if good:
            ok1, v_ts = _parse_int(buf, slots[d, _K_TIME, 1], slots[d, _K_TIME, 2])
            ok2, v_id = _parse_int(buf, slots[d, id_slot, 1], slots[d, id_slot, 2])
            ok3, v_p = _parse_decimal(buf, slots[d, _K_P, 1], slots[d, _K_P, 2])
            ok4, v_q = _parse_decimal(buf, slots[d, _K_Q, 1], slots[d, _K_Q, 2])
            good = ok1 and ok2 and ok3 and ok4
            ts[r], tid[r], price[r], qty[r] = v_ts, v_id, v_p, v_q
        if good and want == _KIND_TRADE:
            x_t = slots[d, _K_X, 0]
            if x_t == _V_STR:
                x_start[r], x_end[r] = slots[d, _K_X, 1], slots[d, _K_X, 2]
                xcode[r] = 1 if _bytes_equal(buf, x_start[r], x_end[r], _B_MARKET) else 2
            elif x_t != 0:  # X present but not a string
                good = False
        if not good:
            kind[0] = r
            return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                sym_start, sym_end, n_sym
        kind[r] = want
        side[r] = 1 if slots[d, _K_M, 0] == _V_TRUE else 0
        # intern the symbol
        s0, s1 = slots[d, _K_S, 1], slots[d, _K_S, 2]
        h = np.uint64(14695981039346656037)
        for j in range(s0, s1):
            h = (h ^ np.uint64(buf[j])) * np.uint64(1099511628211)
        found = -1
        for u in range(n_sym):
            if sym_hash[u] == h and sym_end[u] - sym_start[u] == s1 - s0:
                same = True
                for j in range(s1 - s0):
                    if buf[sym_start[u] + j] != buf[s0 + j]:
                        same = False
                        break
                if same:
                    found = u
                    break
        if found < 0:
            if n_sym == _MAX_SYMBOLS:
                kind[0] = r
                return False, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
                    sym_start, sym_end, n_sym
            sym_start[n_sym], sym_end[n_sym], sym_hash[n_sym] = s0, s1, h
            found = n_sym
            n_sym += 1
        sym[r] = found
    return True, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, \
        sym_start, sym_end, n_sym


def warm_up() -> None:
    """Compile the byte scanner now (or load it from numba's cache in ``__pycache__``).

    Compiling takes seconds (about 6-17 s on 2 shared cores) the first time in an environment and
    loading the cached machine code about 1 s in each new process; both hold the GIL. The first
    batch of 8,192 frames or more (the only ones the scanner decodes) would pay it; a file loader
    calls this first (e.g. before forking workers, which then inherit the compiled scanner).
    """
    empty = np.frombuffer(b"", dtype=np.uint8)  # read-only, like the buffers decoded
    _scan_frames(empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))


def _joined(lines: list | tuple) -> tuple[bytes, np.ndarray, np.ndarray] | None:
    """The frames joined by newlines and each frame's [start, end) byte offsets; None when the
    frames mix str and bytes or contain a newline themselves."""
    try:
        if type(lines[0]) is str:
            text = "\n".join(lines).encode()
        else:
            text = b"\n".join(lines)
    except (TypeError, UnicodeEncodeError):
        return None
    buf = np.frombuffer(text, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if len(nl) != len(lines) - 1:
        return None
    starts = np.empty(len(lines), dtype=np.int64)
    starts[0] = 0
    starts[1:] = nl + 1
    ends = np.empty(len(lines), dtype=np.int64)
    ends[:-1] = nl
    ends[-1] = len(buf)
    return text, starts, ends


def _scanned_batch(lines: list | tuple, source: str, first_line: int,
                   max_errors: int) -> DecodeResult | None:
    """The compiled fast path (:func:`_scan_frames`): the result of the orjson path, or None when
    some frame is not one the scanner accepts (the caller then takes the orjson path)."""
    if not lines:
        return None
    joined = _joined(lines)
    if joined is None:
        return None
    text, starts, ends = joined
    (ok, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, sym_start, sym_end,
     n_sym) = _scan_frames(np.frombuffer(text, dtype=np.uint8), starts, ends)
    if not ok:
        return None
    names = [text[a:b].decode("ascii") for a, b in zip(sym_start[:n_sym].tolist(),
                                                       sym_end[:n_sym].tolist(), strict=True)]
    if not all(map(is_valid_symbol, names)):
        return None
    col = _Collector(max_errors)
    skipped = np.flatnonzero(kind == _KIND_SKIPPED)
    if len(skipped):
        for a, b in zip(x_start[skipped].tolist(), x_end[skipped].tolist(), strict=True):
            col.count("skipped:" + text[a:b].decode("utf-8", "replace"))
    col.count("frames", len(lines))
    names_arr = np.array(names, dtype=object)
    line_no = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    parts = []
    for k, name in ((_KIND_TRADE, "trade"), (_KIND_AGG, "aggTrade")):
        rows = kind == k
        n = int(np.count_nonzero(rows))
        if not n:
            continue
        col.count(name, n)
        if n == len(lines):
            rows = slice(None)
        xtype = None
        if k == _KIND_TRADE and (xcode[rows] == 2).any():
            xc, xs, xe = xcode[rows], x_start[rows].tolist(), x_end[rows].tolist()
            xtype = [None if c == 0 else "MARKET" if c == 1 else text[a:b].decode("ascii")
                     for c, a, b in zip(xc.tolist(), xs, xe, strict=True)]
        parts.append(_Cols(ts[rows], names_arr[sym[rows]], tid[rows], price[rows], qty[rows],
                           side[rows], xtype, line_no[rows]))
    return _build(col, parts, source)
