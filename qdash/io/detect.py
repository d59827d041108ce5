"""Format detection: what a file holds, from its first lines and its name.

Formats (``format=`` accepts these names):

===================  ======  ================================================================
``binance-trades``   ticks   data.binance.vision trades ``id,price,qty,quote_qty,time,
                             is_buyer_maker`` (spot adds ``is_best_match``); header optional
``binance-aggtrades`` ticks  aggTrades ``agg_trade_id,price,quantity,first_trade_id,
                             last_trade_id,transact_time,is_buyer_maker`` (spot adds one column)
``binance-klines``   bars    klines ``open_time,open,high,low,close,volume,close_time,...``
``ws-ndjson``        ticks   raw WebSocket frames, one a line (plain, envelope, ``<ns> `` prefix)
``collector-ndjson`` ticks   browser collector ``{"symbol","ts","price","size"}``
``tick-csv``         ticks   any CSV with a header naming time, price and size columns
``ohlc-csv``         bars    any CSV with a header naming time, open, high, low, close
===================  ======  ================================================================
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

import orjson

from ..binance.schema import ARCHIVE_COLUMNS
from ..errors import DataFormatError
from .source import NameHints, head_lines, name_hints

TICK_FORMATS = ("binance-trades", "binance-aggtrades", "ws-ndjson", "collector-ndjson", "tick-csv")
BAR_FORMATS = ("binance-klines", "ohlc-csv")
FORMATS = TICK_FORMATS + BAR_FORMATS

# the bulk archive's CSV columns
TRADES_COLUMNS = ARCHIVE_COLUMNS["trades"].split(",")
AGGTRADES_COLUMNS = ARCHIVE_COLUMNS["aggTrades"].split(",")
KLINES_COLUMNS = ARCHIVE_COLUMNS["klines"].split(",")

FORMAT_TITLES = {
    "binance-trades": "a Binance trades dump", "binance-aggtrades": "a Binance aggTrades dump",
    "binance-klines": "a Binance klines dump", "ws-ndjson": "Binance WebSocket frames (NDJSON)",
    "collector-ndjson": "the browser collector's NDJSON", "tick-csv": "a tick CSV",
    "ohlc-csv": "an OHLC CSV"}
"""What each format is, in words (errors name the format a file looked like)."""

# Other venues' files, known by their column or field names (lower case): refused, never read as
# Binance trades (a store holds one venue's data).
FOREIGN_CSV = {"a Bybit public-trades CSV": {"tickdirection", "trdmatchid"},
               "an OKX trades CSV": {"instrument_name", "trade_id", "created_time"}}
FOREIGN_JSON = {"OKX WebSocket messages": {"arg", "data"},
                "Bybit WebSocket messages": {"topic", "data", "ts", "type"},
                "OKX trades (NDJSON)": {"instId", "tradeId", "px", "sz"}}

_NUMERIC = re.compile(rb"^\s*-?\d+(\.\d*)?([eE][+-]?\d+)?\s*$")
_BOOL = re.compile(rb"^\s*(true|false|True|False|TRUE|FALSE)\s*$")
_PREFIX = re.compile(rb"^\d+ ")


@dataclass(frozen=True)
class Detected:
    """The result of detection: ``format``, ``kind`` (``ticks``/``bars``), for CSV the
    ``delimiter``, whether a ``header`` row exists and the (lower-cased) column ``names``, and
    the file-name hints (symbol, timeframe)."""

    format: str
    kind: str
    name: str
    hints: NameHints
    delimiter: str = ","
    header: bool = False
    names: tuple[str, ...] = ()


def detect(path: str | os.PathLike, format: str | None = None) -> Detected:
    """Detect the format of ``path`` (``format`` overrides the guess; columns are still read)."""
    if format is not None and format not in FORMATS:
        raise DataFormatError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}",
                              path=str(path))
    lines, name = head_lines(path)
    hints = name_hints(name)
    if not lines:
        fmt = format or ("binance-" + hints.kind.lower() if hints.kind else "tick-csv")
        return Detected(fmt, _kind(fmt), name, hints)
    first = lines[0].lstrip()
    if first.startswith(b"{") or _PREFIX.match(first) and b"{" in first:
        guess = _detect_json(first, str(path))
        fmt = format or guess
        if fmt in ("ws-ndjson", "collector-ndjson"):
            return Detected(fmt, "ticks", name, hints)
        raise DataFormatError(f"the file holds JSON lines, which format {fmt!r} does not read; "
                              "use ws-ndjson or collector-ndjson", path=str(path), line=1)
    det = _detect_csv(lines, name, hints, str(path))
    if format is not None and format != det.format:
        if format in ("ws-ndjson", "collector-ndjson"):
            raise DataFormatError(f"expected JSON lines for format {format!r}, found CSV",
                                  path=str(path), line=1)
        det = replace(det, format=format, kind=_kind(format))
        if not det.header:
            det = replace(det, names=_headerless_names(format, len(det.names), str(path)))
    return det


def _kind(fmt: str) -> str:
    return "bars" if fmt in BAR_FORMATS else "ticks"


def _detect_json(first: bytes, path: str) -> str:
    body = first.split(b" ", 1)[1] if _PREFIX.match(first) else first
    try:
        d = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "ws-ndjson"  # let the decoder report the bad line
    if isinstance(d, dict) and {"symbol", "ts", "price"} <= d.keys():
        return "collector-ndjson"
    if isinstance(d, dict):
        _refuse_foreign(FOREIGN_JSON, set(d), path)
    return "ws-ndjson"


def _refuse_foreign(signatures: dict[str, set[str]], names: set[str], path: str) -> None:
    """Raise :class:`DataFormatError` when ``names`` (a header's columns, a first JSON object's
    keys) are another venue's (``signatures``: what it is → names it always has)."""
    for what, marks in signatures.items():
        if marks <= names:
            raise DataFormatError(
                f"this looks like {what} (it has {', '.join(sorted(marks))}), not Binance "
                "USDⓈ-M data: qdash stores one venue's trades, and reads Binance dumps, Binance "
                "WebSocket frames, the collector's NDJSON and tick/OHLC CSVs; nothing stored",
                path=path, line=1)


def _split(line: bytes, delimiter: str) -> list[bytes]:
    return [f.strip().strip(b'"') for f in line.split(delimiter.encode())]


def _detect_csv(lines: list[bytes], name: str, hints: NameHints, path: str) -> Detected:
    head = lines[0].lstrip(b"\xef\xbb\xbf")  # UTF-8 BOM
    delimiter = max((",", ";", "\t"), key=lambda d: head.count(d.encode()))
    fields = _split(head, delimiter)
    header = not all(_NUMERIC.match(f) or _BOOL.match(f) for f in fields)
    if header:
        names = tuple(f.decode("utf-8", "replace").strip().lower() for f in fields)
        _refuse_foreign(FOREIGN_CSV, set(names), path)
        fmt = _format_from_header(names, hints)
        return Detected(fmt, _kind(fmt), name, hints, delimiter, True, names)
    n = len(fields)
    if hints.kind == "klines" or n == 12:
        fmt = "binance-klines"
    elif hints.kind == "aggTrades" or n == 8:
        fmt = "binance-aggtrades"
    elif hints.kind == "trades" or n == 6:
        fmt = "binance-trades"
    elif n == 7:  # spot trades (…, is_buyer_maker, is_best_match) or futures aggTrades (…, time, m)
        fmt = "binance-trades" if _BOOL.match(fields[5]) else "binance-aggtrades"
    else:
        raise DataFormatError(
            f"headerless CSV with {n} columns is not a Binance trades (6/7), aggTrades (7/8) or "
            "klines (12) dump; add a header row naming the columns (time, price, qty, ...)",
            path=path, line=1)
    return Detected(fmt, _kind(fmt), name, hints, delimiter, False,
                    _headerless_names(fmt, n, path))


def _headerless_names(fmt: str, n: int, path: str) -> tuple[str, ...]:
    base = {"binance-trades": TRADES_COLUMNS, "binance-aggtrades": AGGTRADES_COLUMNS,
            "binance-klines": KLINES_COLUMNS}.get(fmt)
    if base is None:
        raise DataFormatError(f"format {fmt!r} needs a header row naming the columns", path=path,
                              line=1)
    if n < len(base) - (1 if fmt == "binance-klines" else 0):
        raise DataFormatError(f"{n} columns, expected {len(base)} for {fmt} ({','.join(base)})",
                              path=path, line=1)
    extra = [f"extra_{i}" for i in range(n - len(base))]  # spot files: is_best_match
    return tuple(base[:n] + extra)


def _format_from_header(names: tuple[str, ...], hints: NameHints) -> str:
    s = set(names)
    if {"open", "high", "low", "close"} <= s:
        return "binance-klines" if list(names[:6]) == KLINES_COLUMNS[:6] else "ohlc-csv"
    if list(names[:6]) == TRADES_COLUMNS:
        return "binance-trades"
    if list(names[:7]) == AGGTRADES_COLUMNS:
        return "binance-aggtrades"
    return "tick-csv"
