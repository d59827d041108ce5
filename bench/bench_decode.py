"""Frame decode + normalise: qdash.binance.decode vs cryptofeed's Binance futures trade handler,
on the live path (batches of 2,000 frames: orjson) and the file path (chunks of 60,000: the numba
scanner), and the scanner against the orjson path by batch size (where the scanner pays).

Frames: the real Binance USDⓈ-M ``@trade`` payloads of ../shared/data (July + August captures,
recorded by nkaz001/hftbacktest), wrapped in the combined-stream envelope the consumer receives,
cycled to 200,000 frames.

cryptofeed 2.4 only has an ``@aggTrade`` handler for Binance futures (``_trade`` reads ``a``), so
both sides are also timed on the same trades rewritten as ``aggTrade`` frames (``a = f = l = t``)
— the like-for-like comparison the ratio is computed on. cryptofeed is installed for this
benchmark only (not a qdash dependency); without it, the reference is
a plain ``json.loads`` + dict-building loop. cryptofeed is installed by the ``bench`` extra
(``pip install -e '.[bench]'``). The ratios are qdash's frames/s / the reference's on the same
frames. The last line is ``RESULT {json}`` of the figures.

Run: python bench/bench_decode.py [--frames N] [--quick]   (--quick: 10,000 frames, a smoke run)
"""

import argparse
import asyncio
import gzip
import json
import time
from pathlib import Path

import orjson

from qdash.binance import decode as _dec
from qdash.binance.decode import decode_frames
from qdash.binance.scanner import warm_up

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILES = [DATA / "binance-usdm-2024-07-18" /
         "usdm_trades_BTCUSDT_ETHUSDT_2024-07-18_2357-2024-07-19_0005.raw.ndjson.gz",
         DATA / "binance-usdm-2024-08-08" /
         "usdm_trades_BTCUSDT_ETHUSDT_2024-08-08_2354-2400.raw.ndjson.gz"]
BATCH = 2000  # frames per decode call: what the consumer decodes per 100 ms flush at 20k/s
FILE_CHUNK = 60_000  # frames per decode call of a file load
SCANNER_SIZES = (50, 2000, 8192, 60_000)  # where does the numba scanner pay?


def load_frames(n: int) -> tuple[list[str], list[str]]:
    payloads = []
    for f in FILES:
        with gzip.open(f, "rt") as fh:
            payloads += [json.loads(line) for line in fh if line.strip()]
    trade, agg = [], []
    for p in payloads:
        stream = p["s"].lower()
        trade.append(json.dumps({"stream": f"{stream}@trade", "data": p},
                                separators=(",", ":")))
        a = {"e": "aggTrade", "E": p["E"], "a": p["t"], "s": p["s"], "p": p["p"], "q": p["q"],
             "f": p["t"], "l": p["t"], "T": p["T"], "m": p["m"]}
        agg.append(json.dumps({"stream": f"{stream}@aggTrade", "data": a},
                              separators=(",", ":")))
    reps = -(-n // len(trade))
    return (trade * reps)[:n], (agg * reps)[:n]


def bench_qdash(frames: list[str], batch: int = BATCH) -> float:
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(frames), batch):
        n += len(decode_frames(frames[i:i + batch]).ticks)
    dt = time.perf_counter() - t0
    assert n == len(frames), n
    return len(frames) / dt


def bench_loads_only(frames: list[str]) -> float:
    """The floor of any decoder that parses each frame: ``orjson.loads`` of every frame, nothing
    else (the ratio to the reference cannot exceed this rate / the reference's)."""
    loads = orjson.loads
    t0 = time.perf_counter()
    for i in range(0, len(frames), BATCH):
        list(map(loads, frames[i:i + BATCH]))
    return len(frames) / (time.perf_counter() - t0)


def cryptofeed_handler():
    from cryptofeed.defines import TRADES
    from cryptofeed.exchanges import BinanceFutures
    from cryptofeed.symbols import Symbols
    Symbols.set(BinanceFutures.id, {"BTC-USDT-PERP": "BTCUSDT", "ETH-USDT-PERP": "ETHUSDT"},
                {"tick_size": {}, "instrument_type": {"BTC-USDT-PERP": "perpetual",
                                                      "ETH-USDT-PERP": "perpetual"}})
    count = [0]

    async def on_trade(trade, receipt_ts):
        count[0] += 1
    feed = BinanceFutures(symbols=["BTC-USDT-PERP", "ETH-USDT-PERP"], channels=[TRADES],
                          callbacks={TRADES: on_trade})
    return feed, count


def bench_cryptofeed(frames: list[str]) -> float:
    feed, count = cryptofeed_handler()

    async def main():
        handler = feed.message_handler
        t0 = time.perf_counter()
        for f in frames:
            await handler(f, None, 0.0)
        return time.perf_counter() - t0
    dt = asyncio.run(main())
    assert count[0] == len(frames), count
    return len(frames) / dt


def bench_plain_json(frames: list[str]) -> float:
    t0 = time.perf_counter()
    rows = []
    for f in frames:
        d = json.loads(f)["data"]
        if d.get("X", "MARKET") == "MARKET":
            rows.append({"symbol": d["s"], "ts": d["T"], "trade_id": d["a"],
                         "price": float(d["p"]), "qty": float(d["q"]),
                         "is_buyer_maker": int(d["m"])})
    return len(frames) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true",
                    help="10,000 frames: above the scanner's sub-batch (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.frames = 10_000
    trade, agg = load_frames(args.frames)
    t0 = time.perf_counter()
    warm_up()  # compile the byte scanner (or load it from numba's cache): not timed below
    print(f"decode warm_up (numba compile or cache load): {time.perf_counter() - t0:.1f} s")
    print(f"{len(trade):,} real frames, decode batches of {BATCH}")
    q_trade = max(bench_qdash(trade) for _ in range(3))
    q_agg = max(bench_qdash(agg) for _ in range(3))
    print(f"qdash decode_frames, @trade frames:    {q_trade:12,.0f} frames/s")
    print(f"qdash decode_frames, @aggTrade frames: {q_agg:12,.0f} frames/s")
    try:
        ref = max(bench_cryptofeed(agg) for _ in range(2))
        name = "cryptofeed 2.4 BinanceFutures.message_handler"
    except ImportError:
        print("cryptofeed is not installed: reference is json.loads + dict building")
        ref = max(bench_plain_json(agg) for _ in range(2))
        name = "plain json.loads + dict"
    print(f"{name}, @aggTrade frames: {ref:12,.0f} frames/s")
    floor = max(bench_loads_only(agg) for _ in range(3))
    print(f"orjson.loads alone (per-frame parse floor), @aggTrade: {floor:12,.0f} frames/s "
          f"= {floor / ref:.1f}x the reference")
    print(f"live path (orjson, batches of {BATCH:,}) vs {name.split()[0]}: {q_agg / ref:.1f}x on "
          f"the same frames, {q_trade:,.0f} frames/s on @trade")
    q_file = max(bench_qdash(trade, FILE_CHUNK) for _ in range(3))
    print(f"file path (numba scanner, chunks of {FILE_CHUNK:,}): {q_file:,.0f} @trade frames/s "
          f"= {q_file / ref:.1f}x the reference (target >= 3x and >= 300k frames/s)")
    print("numba scanner vs orjson path, @trade frames (decode_frames uses the scanner only "
          f"from {_dec._SUB_BATCH:,} frames):")
    scanner = {}
    for size in SCANNER_SIZES:
        scan = max(bench_path(lambda f: _dec._scanned_batch(f, "binance", 1, 10), trade, size)
                   for _ in range(3))
        plain = max(bench_path(lambda f: _dec._decode_orjson(f, "binance", 1, 10, None), trade,
                               size) for _ in range(3))
        print(f"  batches of {size:6,}: scanner {scan:12,.0f}/s, orjson {plain:12,.0f}/s, "
              f"ratio {scan / plain:.1f}x")
        scanner[f"scanner_ratio_{size}"] = scan / plain
    print("RESULT " + json.dumps({"frames": len(trade), "reference": name,
                                  "trade_per_s": q_trade, "agg_per_s": q_agg,
                                  "reference_per_s": ref, "file_per_s": q_file,
                                  "ratio": q_agg / ref, "file_ratio": q_file / ref} | scanner))


def bench_path(decode, frames: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(frames), batch):
        decode(frames[i:i + batch])
    return len(frames) / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
