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
loop (:func:`qdash.binance.scanner.scan_frames`) that reads the trade fields of flat JSON objects
(any key order) and envelopes, classifies skipped types as below and parses the decimal strings
exactly (Clinger's fast path: integer mantissa < 2**53 divided or multiplied by an exact power of
ten <= 1e22, one correctly rounded operation, so the float equals ``float(s)``). It accepts only
what it can prove the orjson paths below decode identically (ASCII without escapes, no nested
values but the envelope's ``data``, numbers without exponent, no duplicate key, every field present
and typed); any other frame sends the whole batch to them. **The scanner is used only for batches
of 8,192 frames or more — file chunks** — because that is where it pays: measured with
``bench/bench_decode.py`` on the real captures (2 busy shared cores, two runs), the scanner decodes
4.2–4.4× as many frames/s as the orjson path at 8,192 frames and 6.8–7.8× at 60,000; 1.6–3.2× at
2,000 (a 100 ms flush at 20,000 frames/s, far above a usual watch list) and 0.9–1.2× at 50, the
size of a usual live flush — where compiling or loading it (seconds, holding the GIL) would also
stall the event loop. So the live feed always takes the orjson path below — one path, whatever else
ran in the process — and ``qdash load`` (:mod:`qdash.io.prefetch` calls
:func:`qdash.binance.scanner.warm_up` once) takes the scanner.
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

from ..errors import RowError
from ..model import is_valid_symbol, tick_frame
from .scanner import KIND_AGG, KIND_SKIPPED, KIND_TRADE, join_frames, scan_frames

__all__ = ["DecodeResult", "decode_frames", "decode_payloads", "merge_counts"]

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


def _scanned_batch(lines: list | tuple, source: str, first_line: int,
                   max_errors: int) -> DecodeResult | None:
    """The compiled fast path (:func:`scan_frames`): the result of the orjson path, or None when
    some frame is not one the scanner accepts (the caller then takes the orjson path)."""
    if not lines:
        return None
    joined = join_frames(lines)
    if joined is None:
        return None
    text, starts, ends = joined
    (ok, kind, ts, tid, price, qty, side, sym, xcode, x_start, x_end, sym_start, sym_end,
     n_sym) = scan_frames(np.frombuffer(text, dtype=np.uint8), starts, ends)
    if not ok:
        return None
    names = [text[a:b].decode("ascii") for a, b in zip(sym_start[:n_sym].tolist(),
                                                       sym_end[:n_sym].tolist(), strict=True)]
    if not all(map(is_valid_symbol, names)):
        return None
    col = _Collector(max_errors)
    skipped = np.flatnonzero(kind == KIND_SKIPPED)
    if len(skipped):
        for a, b in zip(x_start[skipped].tolist(), x_end[skipped].tolist(), strict=True):
            col.count("skipped:" + text[a:b].decode("utf-8", "replace"))
    col.count("frames", len(lines))
    names_arr = np.array(names, dtype=object)
    line_no = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    parts = []
    for k, name in ((KIND_TRADE, "trade"), (KIND_AGG, "aggTrade")):
        rows = kind == k
        n = int(np.count_nonzero(rows))
        if not n:
            continue
        col.count(name, n)
        if n == len(lines):
            rows = slice(None)
        xtype = None
        if k == KIND_TRADE and (xcode[rows] == 2).any():
            xc, xs, xe = xcode[rows], x_start[rows].tolist(), x_end[rows].tolist()
            xtype = [None if c == 0 else "MARKET" if c == 1 else text[a:b].decode("ascii")
                     for c, a, b in zip(xc.tolist(), xs, xe, strict=True)]
        parts.append(_Cols(ts[rows], names_arr[sym[rows]], tid[rows], price[rows], qty[rows],
                           side[rows], xtype, line_no[rows]))
    return _build(col, parts, source)
