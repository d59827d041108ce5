"""Request bodies → validated canonical tick batches, all or nothing.

A body is a JSON array of items, one JSON object, or NDJSON (one item, or one array of items, per
line). An item is one of

* canonical: ``{"symbol", "ts", "price", "qty", "trade_id"?, "is_buyer_maker"?}``;
* browser collector: ``{"symbol", "ts" (ISO-8601), "price", "size"}`` (``size`` is ``qty``);
* a raw Binance ``trade``/``aggTrade`` payload or combined-stream envelope (decoded by
  :func:`qdash.binance.decode.decode_payloads`; non-``MARKET`` trades are skipped and counted).

Rules: ``symbol`` matches the exchange pattern (normalised to upper case); ``price`` and ``qty``
are finite and > 0 (numbers or decimal strings); ``ts`` is epoch s/ms/µs/ns (by magnitude) or an
ISO-8601 string, and must fall in 2009..2100; ``trade_id`` is an int64 when present;
``is_buyer_maker`` is true/false/1/0/-1/null. Items without ``trade_id`` get the deterministic ids
of :func:`qdash.model.synthetic_trade_ids` (computed over the id-less items of the batch), so a
retried batch is stored once. Caveat: identical id-less fills (same symbol, ts, price, qty) sent
in *different* batches get the same id and the later one counts as a duplicate; send whole files
in one batch, or send trade ids (the collector page does). Any invalid item rejects the whole
batch with an :class:`~qdash.errors.IngestError` whose ``rows`` are the bad items as
:class:`~qdash.errors.RowError` (item index, line, field, problem; ``.problem()`` is the JSON the
server answers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import repeat
from operator import contains, itemgetter

import numpy as np
import orjson
import pandas as pd

from ..binance.decode import decode_payloads
from ..errors import IngestError, RowError
from ..model import (
    MAX_TS_MS,
    MIN_TS_MS,
    SIDE_UNKNOWN,
    iso_to_epoch_ms,
    normalize_symbol,
    synthetic_trade_ids,
    tick_frame,
    to_epoch_ms,
)

MAX_PROBLEMS = 20
_INT64_MIN, _INT64_MAX = -2**63, 2**63 - 1
# true/1 → 1, false/0 → 0, -1/null → unknown (True == 1 and False == 0 as dict keys)
_SIDES = {None: SIDE_UNKNOWN, True: 1, False: 0, -1: -1}
_TRADE_EVENTS = ("trade", "aggTrade")


@dataclass
class Batch:
    """A validated batch: canonical ``ticks`` in item order, and skipped-item counts
    (``filtered:X=NA`` ... for non-MARKET Binance trades)."""

    ticks: pd.DataFrame
    skipped: dict[str, int] = field(default_factory=dict)


def parse_body(body: bytes) -> tuple[list, list[int] | None]:
    """Parse a request body into items; also the 1-based line of each item for NDJSON bodies.

    Raises :class:`IngestError` (400, kind ``malformed-json``) with the line and column of the
    first syntax error.
    """
    head = body.lstrip()[:1]
    if not head:
        raise IngestError("empty body: send a JSON array, an object or NDJSON lines",
                          kind="empty")
    if head in (b"[", b"{"):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            if head == b"[" or b"\n" not in body.strip():
                raise _json_error(e, e.lineno, e.colno) from None
        else:
            return (value if isinstance(value, list) else [value]), None
    return _parse_ndjson(body)


def _parse_ndjson(body: bytes) -> tuple[list, list[int]]:
    lines = body.split(b"\n")
    numbered = [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip()]
    try:  # one parse of the whole body is much faster than one per line
        values = orjson.loads(b"[" + b",".join(ln for _, ln in numbered) + b"]")
        if len(values) != len(numbered):  # a line held "1,2": not NDJSON
            raise ValueError
    except (orjson.JSONDecodeError, ValueError):
        values = []
        for lineno, ln in numbered:
            try:
                values.append(orjson.loads(ln))
            except orjson.JSONDecodeError as e:
                raise _json_error(e, lineno, e.colno) from None
    items: list = []
    item_lines: list[int] = []
    for (lineno, _), v in zip(numbered, values):
        if isinstance(v, list):
            items.extend(v)
            item_lines.extend([lineno] * len(v))
        else:
            items.append(v)
            item_lines.append(lineno)
    return items, item_lines


def _json_error(e: orjson.JSONDecodeError, line: int, column: int) -> IngestError:
    return IngestError(f"malformed JSON at line {line}, column {column}: {e.msg}; nothing stored",
                       kind="malformed-json", line=line, column=column)


def validate_items(items: list, source: str = "ingest",
                   lines: list[int] | None = None) -> Batch:
    """Validate parsed items and build one canonical tick batch (see the module docstring)."""
    if not isinstance(items, list):
        raise IngestError("expected a JSON array of ticks or NDJSON", kind="invalid")
    problems: list[RowError] = []
    canon_idx, binance_idx = [], []
    if set(map(type, items)) <= {dict} and not any(map(contains, items, repeat("e"))) \
            and not any(map(contains, items, repeat("data"))):
        canon_idx = range(len(items))  # the common case, checked at C speed
    else:
        for i, d in enumerate(items):
            if type(d) is not dict:
                _problem(problems, i, None, f"expected a JSON object, got {_short(d)}")
            elif "e" in d or "data" in d:
                binance_idx.append(i)
            else:
                canon_idx.append(i)
    frames, skipped = [], {}
    if canon_idx and not problems:
        rows = items if len(canon_idx) == len(items) else [items[i] for i in canon_idx]
        frames.append((canon_idx, _canonical(rows, canon_idx, source, problems)))
    if binance_idx and not problems:
        frame, keep = _binance([items[i] for i in binance_idx], binance_idx, source, problems,
                               skipped)
        frames.append((keep, frame))
    if problems:
        _raise(problems, lines)
    if not frames:
        return Batch(tick_frame([], [], [], [], [], [], source), skipped)
    if len(frames) == 1:
        return Batch(frames[0][1], skipped)
    order = np.argsort(np.concatenate([np.asarray(ix, dtype=np.int64) for ix, _ in frames]),
                       kind="stable")
    ticks = pd.concat([f for _, f in frames], ignore_index=True).iloc[order]
    return Batch(ticks.reset_index(drop=True), skipped)


def _raise(problems: list[RowError], lines: list[int] | None) -> None:
    if lines is not None:
        problems = [p.replace(line=lines[p.index]) if p.index is not None and
                    p.index < len(lines) else p for p in problems]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    raise IngestError(f"{problems[0]}{more}; nothing from this batch was stored",
                      kind="invalid-tick", rows=problems)


def _problem(problems: list[RowError], index: int | None, fld: str | None, text: str) -> None:
    if len(problems) < MAX_PROBLEMS:
        problems.append(RowError(text, index=index, field=fld))


def _short(v) -> str:
    s = orjson.dumps(v, default=str).decode() if not isinstance(v, bytes) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


# --- canonical and collector items --------------------------------------------------------------
class _Fallback(Exception):
    """The vectorised path met something unusual: redo the batch item by item."""


def _canonical(rows: list[dict], index: list[int], source: str,
               problems: list[RowError]) -> pd.DataFrame | None:
    try:
        cols = _canonical_fast(rows)
    except (_Fallback, KeyError, TypeError, ValueError, OverflowError):
        cols = _canonical_slow(rows, index, problems)
        if cols is None:
            return None
    sym, ts, tid, has_id, price, qty, side = cols
    if not has_id.all():
        missing = ~has_id
        tid[missing] = synthetic_trade_ids(sym[missing], ts[missing], price[missing], qty[missing])
    return tick_frame(sym, ts, tid, price, qty, side, source)


def _canonical_fast(rows: list[dict]):
    n = len(rows)
    sym_raw = list(map(itemgetter("symbol"), rows))
    ts = _ts_fast(list(map(itemgetter("ts"), rows)))
    price = _positive_fast(list(map(itemgetter("price"), rows)))
    try:
        qty_raw = list(map(itemgetter("qty"), rows))
    except KeyError:  # collector items say "size"
        qty_raw = [d["qty"] if "qty" in d else d["size"] for d in rows]
    qty = _positive_fast(qty_raw)
    norm = {}
    for s in set(sym_raw):
        if type(s) is not str:
            raise _Fallback
        norm[s] = normalize_symbol(s)
    sym = np.array([norm[s] for s in sym_raw] if any(k != v for k, v in norm.items())
                   else sym_raw, dtype=object)
    ids = list(map(dict.get, rows, repeat("trade_id")))
    id_types = set(map(type, ids))
    if not id_types <= {int, type(None)}:
        raise _Fallback
    if type(None) in id_types:
        has_id = np.array([t is not None for t in ids])
        tid = np.array([0 if t is None else t for t in ids], dtype=np.int64)
    else:
        has_id = np.ones(n, dtype=bool)
        tid = np.array(ids, dtype=np.int64)  # OverflowError beyond int64 → slow path
    sides = list(map(dict.get, rows, repeat("is_buyer_maker")))
    uniq = set(sides)
    if not all(type(v) in (bool, int, type(None)) and v in _SIDES for v in uniq):
        raise _Fallback
    if uniq == {None}:
        side = np.full(n, SIDE_UNKNOWN, dtype=np.int8)
    elif None in uniq:
        side = np.array([_SIDES[v] for v in sides], dtype=np.int8)
    else:  # true/false/1/0/-1 convert as they are
        side = np.array(sides, dtype=np.int8)
    return sym, ts, tid, has_id, price, qty, side


def _positive_fast(values: list) -> np.ndarray:
    if not set(map(type, values)) <= {int, float}:  # bools, strings, None: item by item
        raise _Fallback
    a = np.array(values, dtype=np.float64)
    if not (np.isfinite(a) & (a > 0)).all():
        raise _Fallback
    return a


def _ts_fast(values: list) -> np.ndarray:
    types = set(map(type, values))
    if not (types <= {int, float} or types == {str}):
        raise _Fallback
    a = np.array(values)
    if a.ndim != 1:
        raise _Fallback
    if a.dtype.kind in "if":
        if a.dtype.kind == "f" and not (np.abs(a) < 2.0**63).all():  # also NaN, inf
            raise _Fallback
        ms = to_epoch_ms(a)
    elif a.dtype.kind == "U":
        ms = iso_to_epoch_ms(values)
    else:
        raise _Fallback
    if not ((ms >= MIN_TS_MS) & (ms < MAX_TS_MS)).all():
        raise _Fallback
    return ms


def _canonical_slow(rows: list[dict], index: list[int], problems: list[RowError]):
    n = len(rows)
    sym = np.empty(n, dtype=object)
    ts = np.zeros(n, dtype=np.int64)
    tid = np.zeros(n, dtype=np.int64)
    has_id = np.zeros(n, dtype=bool)
    price = np.zeros(n)
    qty = np.zeros(n)
    side = np.full(n, SIDE_UNKNOWN, dtype=np.int8)
    ok = True
    for j, d in enumerate(rows):
        i = index[j]

        def bad(fld, text, i=i):
            nonlocal ok
            ok = False
            _problem(problems, i, fld, text)

        s = d.get("symbol")
        if s is None:
            bad("symbol", "missing (expected an exchange symbol such as 'BTCUSDT')")
        elif type(s) is not str:
            bad("symbol", f"expected a string such as 'BTCUSDT', got {_short(s)}")
        else:
            try:
                sym[j] = normalize_symbol(s)
            except ValueError:
                bad("symbol", f"bad symbol {_short(s)}: expected letters and digits such as "
                    "'BTCUSDT'")
        t = _ts_one(d.get("ts"), "ts" in d)
        if isinstance(t, str):
            bad("ts", t)
        else:
            ts[j] = t
        p = _positive_one(d.get("price"), "price" in d)
        if isinstance(p, str):
            bad("price", p)
        else:
            price[j] = p
        qname = "qty" if "qty" in d or "size" not in d else "size"
        q = _positive_one(d.get(qname), qname in d)
        if isinstance(q, str):
            bad(qname, q + (" (expected 'qty' or 'size')" if qname not in d else ""))
        else:
            qty[j] = q
        t_id = d.get("trade_id")
        if t_id is not None:
            if type(t_id) is not int or not _INT64_MIN <= t_id <= _INT64_MAX:
                bad("trade_id", f"expected a 64-bit integer, got {_short(t_id)}")
            else:
                tid[j], has_id[j] = t_id, True
        m = d.get("is_buyer_maker")
        if type(m) not in (bool, int, type(None)) or m not in _SIDES:
            bad("is_buyer_maker", f"expected true, false, 1, 0, -1 or null, got {_short(m)}")
        else:
            side[j] = _SIDES[m]
    return (sym, ts, tid, has_id, price, qty, side) if ok else None


def _positive_one(v, present: bool) -> float | str:
    """The value as float, or a string describing the problem."""
    if not present or v is None:
        return "missing"
    if type(v) is str:
        try:
            f = float(v)
        except ValueError:
            return f"expected a number or decimal string, got {_short(v)}"
    elif type(v) in (int, float):
        f = float(v)
    else:
        return f"expected a number, got {_short(v)}"
    if not math.isfinite(f):
        return f"must be finite, got {_short(v)}"
    if f <= 0:
        return f"must be > 0, got {_short(v)}"
    return f


def _ts_one(v, present: bool) -> int | str:
    """Epoch ms, or a string describing the problem."""
    if not present or v is None:
        return "missing (expected epoch ms/µs or an ISO-8601 time)"
    if type(v) in (int, float):
        if not math.isfinite(v) or abs(v) >= 2**63:
            return f"expected a finite epoch time, got {_short(v)}"
        ms = int(to_epoch_ms([v])[0])
    elif type(v) is str:
        try:
            ms = int(iso_to_epoch_ms([v])[0])
        except (ValueError, TypeError, OverflowError):
            return f"expected an ISO-8601 time such as '2024-07-18T23:57:02.707Z', got {_short(v)}"
    else:
        return f"expected epoch ms/µs or an ISO-8601 string, got {_short(v)}"
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        when = pd.Timestamp(ms, unit="ms", tz="UTC") if abs(ms) < 9e15 else f"{ms} ms"
        return f"out of range: {_short(v)} is {when}, outside 2009-01-01..2100-01-01"
    return ms


# --- raw Binance payloads -----------------------------------------------------------------------
def _binance(payloads: list[dict], index: list[int], source: str, problems: list[RowError],
             skipped: dict[str, int]) -> tuple[pd.DataFrame | None, list[int]]:
    """Decode with the shared decoder; anything it drops other than a non-MARKET trade is an
    error naming the item."""
    res = decode_payloads(payloads, source, first_line=0)
    for err in res.errors:
        _problem(problems, index[err.line], err.field, err.message)
    kept = set(res.lines.tolist())
    for j, d in enumerate(payloads):
        if j in kept or any(p.index == index[j] for p in problems):
            continue
        data = d.get("data") if isinstance(d.get("data"), dict) else d
        event = data.get("e")
        if event not in _TRADE_EVENTS:
            _problem(problems, index[j], "e",
                     f"event type {_short(event)} is not a trade (expected 'trade' or 'aggTrade')")
        elif event == "trade" and data.get("X") not in (None, "MARKET"):
            key = f"filtered:X={data.get('X')}"
            skipped[key] = skipped.get(key, 0) + 1
        else:
            for fld in ("p", "q"):
                msg = _positive_one(data.get(fld), fld in data)
                if isinstance(msg, str):
                    _problem(problems, index[j], fld, msg)
                    break
    ticks = res.ticks
    keep_index = [index[j] for j in res.lines.tolist()]
    ts = ticks["ts"].to_numpy()
    for j in np.flatnonzero((ts < MIN_TS_MS) | (ts >= MAX_TS_MS)).tolist():
        _problem(problems, keep_index[j], "T", _ts_one(int(ts[j]), True))
    return ticks, keep_index
