"""``qdash sim``: run the simulated Binance USDⓈ-M exchange until Ctrl-C.

``qdash sim --port 9443 --symbols BTCUSDT,ETHUSDT [--rate N] [--seed S] [--replay FILE]
[--api-key KEY --api-secret SECRET --balance USDT]... [--order-latency-ms SPEC]`` prints one
line ``qdash sim listening on ws://HOST:PORT (REST http://HOST:PORT)`` (with the real port when
``--port 0``), then serves until interrupted. Without ``--api-key`` one paper account is opened
and its key and secret printed once.

The same port serves Binance's bulk archive (data.binance.vision) from the simulator's past:
``http://HOST:PORT/data/futures/um/{daily,monthly}/{klines,aggTrades,trades,markPriceKlines,
indexPriceKlines,premiumIndexKlines,fundingRate}/...zip`` and ``.zip.CHECKSUM`` — base URL
``http://HOST:PORT`` in place of ``https://data.binance.vision``, closed days and months before
the start only.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from ..sim.accounts import MAKER_FEE, TAKER_FEE
from ..sim.exchange import SimExchange
from .options import add_listen, add_symbols, symbols_of

ARCHIVE_HELP = ("Bulk archive: http://HOST:PORT stands for https://data.binance.vision, e.g. "
                "http://HOST:PORT/data/futures/um/daily/klines/BTCUSDT/1m/"
                "BTCUSDT-1m-YYYY-MM-DD.zip (+ .CHECKSUM); daily and monthly klines, aggTrades, "
                "trades, mark/index/premium klines, monthly fundingRate, closed periods before "
                "the start.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``qdash sim`` (and the bulk archive's URL base in its help)."""
    parser.epilog = ARCHIVE_HELP
    add_listen(parser, 9443, zero_picks_free=True)
    add_symbols(parser, default_means="BTCUSDT,ETHUSDT; replay: every symbol in the file")
    parser.add_argument("--rate", type=float, default=50.0, help="trades per second, in total")
    parser.add_argument("--universe", type=int, default=0,
                        help="add N synthetic perpetuals SYN001USDT... (long-tailed liquidity, "
                             "a few cointegrated clusters) with their past")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--burst-multiplier", type=float, default=6.0,
                        help="trade rate during bursts / normal rate (1 = steady Poisson)")
    parser.add_argument("--replay", default=None,
                        help="replay a tick file (any format qdash reads) instead of simulating")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="replay speed (1 = real time, 0 = as fast as possible)")
    parser.add_argument("--ping-interval", type=float, default=180.0, help="server pings (s)")
    parser.add_argument("--weight-limit", type=int, default=2400,
                        help="REST request weight per minute and IP before 429 + Retry-After "
                             "(Binance: 2400)")
    parser.add_argument("--retention", type=float, default=3600.0,
                        help="seconds of trade history kept for REST (memory bound)")
    parser.add_argument("--api-key", action="append", default=[], metavar="KEY",
                        help="open a paper account with this API key (repeat for several; "
                             "pair each with --api-secret and --balance). Without it one "
                             "account is opened and its key and secret printed once")
    parser.add_argument("--api-secret", action="append", default=[], metavar="SECRET",
                        help="the secret of the --api-key at the same position (the "
                             "simulator's own accounts: it is the exchange; never logged)")
    parser.add_argument("--balance", action="append", type=float, default=[],
                        metavar="USDT", help="the starting USDT of the --api-key at the same "
                                             "position (default 100000)")
    parser.add_argument("--order-latency-ms", default="0", metavar="SPEC",
                        help="delay before an order is accepted and matched: MS, "
                             "uniform:LO:HI or lognormal:MEDIAN:SIGMA (milliseconds)")
    parser.add_argument("--maker-fee", type=float, default=MAKER_FEE,
                        help="maker commission rate (Binance's base tier: 0.0002)")
    parser.add_argument("--taker-fee", type=float, default=TAKER_FEE,
                        help="taker commission rate (Binance's base tier: 0.0005)")
    parser.add_argument("--warmup", type=float, default=300.0,
                        help="seconds before the start traded by the live model, as if the "
                             "exchange had been running (the recent past as dense as the live "
                             "stream; older history expands 1-minute klines)")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; returns 0."""
    return asyncio.run(_serve(args))


def accounts_of(args: argparse.Namespace) -> list[tuple[str | None, str | None, float]]:
    """(key, secret, balance) of each account the flags open: ``--api-key``,
    ``--api-secret`` and ``--balance`` pair by position; none given: one drawn account."""
    keys, secrets_, balances = args.api_key, args.api_secret, args.balance
    if len(secrets_) != len(keys):
        raise SystemExit(f"qdash sim: {len(keys)} --api-key but {len(secrets_)} --api-secret; "
                         "give one secret per key")
    if len(balances) > max(len(keys), 1):
        raise SystemExit("qdash sim: more --balance than accounts")
    balances = balances + [100_000.0] * (max(len(keys), 1) - len(balances))
    if not keys:
        return [(None, None, balances[0])]
    return list(zip(keys, secrets_, balances))


async def _serve(args: argparse.Namespace) -> int:
    symbols = symbols_of(args.symbols, "--symbols") if args.symbols else None
    accounts = accounts_of(args)
    sim = SimExchange(symbols, rate=args.rate, seed=args.seed, host=args.host, port=args.port,
                      replay=args.replay, speed=args.speed, ping_interval=args.ping_interval,
                      retention_s=args.retention, universe=args.universe,
                      weight_limit=args.weight_limit, warmup_s=args.warmup,
                      market_kwargs={"burst_multiplier": args.burst_multiplier},
                      accounts=accounts, order_latency_ms=args.order_latency_ms,
                      maker_fee=args.maker_fee, taker_fee=args.taker_fee)
    await sim.start()
    print(f"qdash sim listening on {sim.ws_url} (REST {sim.rest_url}, bulk archive "
          f"{sim.archive_url}/data/futures/um/); symbols "
          f"{','.join(sim.symbols)}; Ctrl-C to stop", flush=True)
    if not args.api_key:  # the drawn account: shown once, on the terminal only
        acc = next(iter(sim.accounts))
        print(f"qdash sim paper account: API key {acc.key} secret {acc.secret} "
              f"({acc.wallet:.0f} USDT)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()
    print(f"qdash sim: published {sim.stats['published']} trades "
          f"({sim.stats['published_market']} MARKET)", flush=True)
    return 0

