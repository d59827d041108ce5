"""Binance USDⓈ-M rows and events <-> qdash frames, for the clients and the simulator alike.

* Kline rows ``[openTime, open, high, low, close, volume, closeTime, quoteVolume, count,
  takerBuyBase, takerBuyQuote, ignore]`` (:data:`KLINE_FIELDS`, also the bulk archive's kline CSV
  columns): :func:`kline_rows` writes them (the simulator), :func:`kline_frame` reads them into
  candles.
* Kline stream events (``{"e":"kline",...,"k":{...}}``, raw or in a combined-stream envelope):
  :func:`closed_kline` reads a closed one.
* aggTrades rows ``{"a","p","q","f","l","T","m"}``: :func:`agg_ticks`, one tick per underlying
  trade id through :func:`expand_agg_trades`, THE expansion (REST rows and bulk files alike).
* fundingRate rows ``{"symbol","fundingTime","fundingRate","markPrice"}``: :func:`funding_frame`;
  premiumIndex entries: :func:`premium_index`.
* Bulk archive (data.binance.vision) paths: :func:`archive_path`, :data:`ARCHIVE_COLUMNS`.
* Depth: ``depthUpdate`` stream events (``{"e":"depthUpdate","E","T","s","U","u","pu","b","a"}``,
  raw or in a combined-stream envelope) → :class:`DepthUpdate` (:func:`depth_update`); REST
  ``/fapi/v1/depth`` answers (``{"lastUpdateId","E","T","bids","asks"}``) →
  :class:`DepthSnapshot` (:func:`depth_snapshot`). Levels are ``(price, qty)`` floats; a qty of 0
  removes the level.

Trade and aggTrade stream events are decoded by :mod:`qdash.binance.decode`. Times are int ms UTC;
prices and sizes parse from strings to float64.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import orjson
import pandas as pd

from ..model import BAR_COLUMNS, EXCHANGE_VENUE, SIDE_UNKNOWN, SIM_VENUE, tick_frame

KLINE_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore")


# --- klines ------------------------------------------------------------------------------------
def kline_rows(bars: dict[str, np.ndarray], close_time: np.ndarray, pdec: int, qdec: int,
               volumes: bool = True) -> list:
    """Kline rows (:data:`KLINE_FIELDS`) of ``bars`` (arrays ``open_time``, ``open``, ``high``,
    ``low``, ``close``, ``volume``, ``quote_volume``, ``trades``, ``taker_buy_volume``,
    ``taker_buy_quote_volume``) closing at ``close_time``: prices with ``pdec`` decimals, base
    volumes with ``qdec``, quote volumes with ``pdec + qdec`` (as Binance prints them); without
    ``volumes`` (mark, index, premium klines) every volume is ``"0"``."""
    qq = pdec + qdec
    if not volumes:
        return [[int(t), f"{o:.{pdec}f}", f"{h:.{pdec}f}", f"{lo:.{pdec}f}", f"{c:.{pdec}f}",
                 "0", int(ct), "0", int(n), "0", "0", "0"]
                for t, o, h, lo, c, ct, n in zip(
                    bars["open_time"].tolist(), bars["open"].tolist(), bars["high"].tolist(),
                    bars["low"].tolist(), bars["close"].tolist(), close_time.tolist(),
                    bars["trades"].tolist())]
    return [[int(t), f"{o:.{pdec}f}", f"{h:.{pdec}f}", f"{lo:.{pdec}f}", f"{c:.{pdec}f}",
             f"{v:.{qdec}f}", int(ct), f"{q:.{qq}f}", int(n), f"{b:.{qdec}f}", f"{bq:.{qq}f}",
             "0"]
            for t, o, h, lo, c, v, ct, q, n, b, bq in zip(
                bars["open_time"].tolist(), bars["open"].tolist(), bars["high"].tolist(),
                bars["low"].tolist(), bars["close"].tolist(), bars["volume"].tolist(),
                close_time.tolist(), bars["quote_volume"].tolist(), bars["trades"].tolist(),
                bars["taker_buy_volume"].tolist(), bars["taker_buy_quote_volume"].tolist())]


def kline_frame(rows: list, mark: bool = False) -> pd.DataFrame:
    """Binance kline rows → candles (index open time, int ms; :data:`qdash.model.BAR_COLUMNS`).

    Mark-price klines (``mark``) carry no volume: volumes and trades are 0 and vwap NaN."""
    if not rows:
        return pd.DataFrame({c: np.empty(0) for c in BAR_COLUMNS},
                            index=pd.Index(np.empty(0, dtype=np.int64), name="open_time"))
    a = np.array(rows, dtype=object)
    col = {name: a[:, KLINE_FIELDS.index(name)].astype(np.float64)
           for name in ("open", "high", "low", "close")}
    n = len(rows)
    if mark:
        volume = quote = buy = np.zeros(n)
        trades = np.zeros(n, dtype=np.int64)
    else:
        volume = a[:, KLINE_FIELDS.index("volume")].astype(np.float64)
        quote = a[:, KLINE_FIELDS.index("quote_volume")].astype(np.float64)
        trades = a[:, KLINE_FIELDS.index("count")].astype(np.int64)
        buy = a[:, KLINE_FIELDS.index("taker_buy_volume")].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, quote / volume, np.nan)
    df = pd.DataFrame(col | {"volume": volume, "trades": trades, "buy_volume": buy,
                             "quote_volume": quote, "vwap": vwap},
                      index=pd.Index(a[:, 0].astype(np.int64), name="open_time"))
    return df[BAR_COLUMNS]


class ClosedKline(NamedTuple):
    """A closed kline of a kline stream event (``x`` true): symbol (upper case), interval, open
    time (ms), close price and quote volume."""

    symbol: str
    interval: str
    open_time: int
    close: float
    quote_volume: float


def closed_kline(message: str | bytes) -> ClosedKline | None:
    """The closed kline of a ``<symbol>@kline_<interval>`` frame (raw or in a combined-stream
    envelope); None for a kline still forming or a frame that is not a kline event."""
    msg = orjson.loads(message)
    k = (msg.get("data") or msg).get("k")
    if not k or not k.get("x"):
        return None
    return ClosedKline(str(k["s"]).upper(), k.get("i"), int(k["t"]), float(k["c"]),
                       float(k["q"]))


# --- aggregate trades ----------------------------------------------------------------------------
def expand_agg_trades(symbol, ts, first_id, last_id, price, qty, is_buyer_maker=SIDE_UNKNOWN,
                      source: str = "") -> pd.DataFrame:
    """Aggregate trades (Binance aggTrades: time, first and last trade id ``f``/``l``, price, total
    qty, side) → a tick batch with one tick per underlying trade id ``f..l``, in input order.

    Each trade of an aggregate gets its time, price and side and an equal share of its qty, so ids,
    prices, counts (``l − f + 1``, what Binance klines count) and volumes are exact; per-trade sizes
    are approximate. Rows with ``l < f`` raise ``ValueError``.
    """
    first = np.asarray(first_id, dtype=np.int64)
    n = np.asarray(last_id, dtype=np.int64) - first + 1
    if (n < 1).any():
        i = int(np.flatnonzero(n < 1)[0])
        raise ValueError(f"aggregate trade {i}: last trade id {first[i] + n[i] - 1} < first "
                         f"trade id {first[i]}")
    rep = np.repeat(np.arange(len(n)), n)
    starts = np.cumsum(n) - n
    ids = first[rep] + (np.arange(len(rep), dtype=np.int64) - starts[rep])

    def spread(v, dtype):
        return v if np.ndim(v) == 0 else np.asarray(v, dtype=dtype)[rep]

    return tick_frame(spread(symbol, object), np.asarray(ts, dtype=np.int64)[rep], ids,
                      spread(price, np.float64), (np.asarray(qty, dtype=np.float64) / n)[rep],
                      spread(is_buyer_maker, np.int8), source)


def agg_ticks(rows: list[dict], symbol: str, source: str) -> pd.DataFrame:
    """aggTrades REST rows → one tick per underlying trade (:func:`expand_agg_trades`)."""
    if not rows:
        return expand_agg_trades(symbol, [], [], [], [], [], [], source)
    return expand_agg_trades(
        symbol, [r["T"] for r in rows], [r["f"] for r in rows], [r["l"] for r in rows],
        np.array([r["p"] for r in rows], dtype=np.float64),
        np.array([r["q"] for r in rows], dtype=np.float64),
        np.array([r["m"] for r in rows], dtype=np.int8), source)


# --- funding -------------------------------------------------------------------------------------
def funding_frame(rows: list[dict]) -> pd.DataFrame:
    """fundingRate REST rows → ``funding_time`` (int ms), ``rate``, ``mark_price`` (NaN when the
    exchange left it empty, as for old events)."""
    return pd.DataFrame({
        "funding_time": np.array([r["fundingTime"] for r in rows], dtype=np.int64),
        "rate": np.array([r["fundingRate"] for r in rows], dtype=np.float64),
        "mark_price": np.array([r.get("markPrice") or "nan" for r in rows], dtype=np.float64)})


class PremiumIndex(NamedTuple):
    """One ``premiumIndex`` entry: mark and index price, the last funding rate (a fraction per
    funding interval; positive: longs pay shorts), the next funding time and the entry's time
    (int ms; 0 when absent)."""

    symbol: str
    mark_price: float
    index_price: float
    last_funding_rate: float
    next_funding_time: int
    time: int


def premium_index(entry: dict) -> PremiumIndex:
    """A ``premiumIndex`` REST entry (numbers as strings) parsed."""
    return PremiumIndex(str(entry["symbol"]), float(entry["markPrice"]),
                        float(entry["indexPrice"]), float(entry["lastFundingRate"]),
                        int(entry.get("nextFundingTime") or 0), int(entry.get("time") or 0))


# --- bulk archive (data.binance.vision) -----------------------------------------------------------
ARCHIVE_PREFIX = "data/futures/um/"
ARCHIVE_KLINE_DATASETS = ("klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines")
# CSV columns of each dataset (files from about mid-2022 on start with them as a header row)
ARCHIVE_COLUMNS = {"klines": ",".join(KLINE_FIELDS),
                   "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
                                "transact_time,is_buyer_maker",
                   "trades": "id,price,qty,quote_qty,time,is_buyer_maker",
                   "fundingRate": "calc_time,funding_interval_hours,last_funding_rate"}


def archive_file(dataset: str, symbol: str, interval: str | None, period: str) -> str:
    """File name of one archive file: ``BTCUSDT-1m-2024-07-19.zip`` (kline datasets),
    ``BTCUSDT-aggTrades-2024-07.zip`` (others); ``period`` is ``YYYY-MM-DD`` or ``YYYY-MM``."""
    what = interval if dataset in ARCHIVE_KLINE_DATASETS else dataset
    return f"{symbol}-{what}-{period}.zip"


def archive_path(dataset: str, symbol: str, interval: str | None, period: str) -> str:
    """Path of one archive file under the archive's base URL: daily files for ``YYYY-MM-DD``
    periods, monthly for ``YYYY-MM``; kline datasets have an interval folder."""
    freq = "monthly" if len(period) == 7 else "daily"
    folder = f"{symbol}/{interval}" if dataset in ARCHIVE_KLINE_DATASETS else symbol
    return (f"{ARCHIVE_PREFIX}{freq}/{dataset}/{folder}/"
            f"{archive_file(dataset, symbol, interval, period)}")


# --- whose exchange ----------------------------------------------------------------------------
SIMULATOR_FIELD = "qdashSimulator"
"""The exchangeInfo field by which qdash's simulator says what it serves (``true``); Binance's
exchangeInfo has no such field."""


def venue_of(exchange_info: dict) -> str:
    """Whose market an exchangeInfo answer describes: :data:`~qdash.model.SIM_VENUE` when it
    carries :data:`SIMULATOR_FIELD`, else :data:`~qdash.model.EXCHANGE_VENUE` (whatever the URL
    it came from)."""
    return SIM_VENUE if exchange_info.get(SIMULATOR_FIELD) is True else EXCHANGE_VENUE


# --- depth ---------------------------------------------------------------------------------------
class DepthUpdate(NamedTuple):
    """One ``depthUpdate`` event: ``U`` first and ``u`` final update id, ``pu`` the previous
    event's ``u``; ``event_ms`` (``E``) exchange time; ``bids``/``asks`` changed levels
    ``(price, qty)`` (qty absolute, 0 = removed)."""

    symbol: str
    event_ms: int
    first_id: int
    last_id: int
    prev_id: int
    bids: list
    asks: list


class DepthSnapshot(NamedTuple):
    """A REST depth answer: ``last_update_id``, exchange time ``event_ms`` (``E``, 0 when
    absent), levels ``(price, qty)`` best first."""

    last_update_id: int
    event_ms: int
    bids: list
    asks: list


def _levels(rows) -> list:
    return [(float(p), float(q)) for p, q, *_ in rows]


def depth_update(message: str | bytes | dict) -> DepthUpdate | None:
    """The :class:`DepthUpdate` of a diff-depth frame (raw or in a combined-stream envelope);
    None for a frame of another kind. A depth event missing a field raises ``KeyError``."""
    msg = orjson.loads(message) if isinstance(message, (str, bytes)) else message
    d = msg.get("data", msg) if isinstance(msg, dict) else None
    if not isinstance(d, dict) or d.get("e") != "depthUpdate":
        return None
    return DepthUpdate(str(d["s"]).upper(), int(d["E"]), int(d["U"]), int(d["u"]), int(d["pu"]),
                       _levels(d["b"]), _levels(d["a"]))


def depth_snapshot(body: dict) -> DepthSnapshot:
    """The :class:`DepthSnapshot` of a ``/fapi/v1/depth`` answer."""
    return DepthSnapshot(int(body["lastUpdateId"]), int(body.get("E", 0)), _levels(body["bids"]),
                         _levels(body["asks"]))
