"""``qdash trade Y X``: paper trade the pair's signal on both legs, on the simulated exchange by
default, and write what happened (orders, fills, round trips, shortfall against the backtest).

* Live: ``--rest-url``/``--ws-url`` (default: the running simulator of
  ``$QDASH_SIM_REST_URL``/``$QDASH_SIM_WS_URL``, else ``qdash sim``'s default port on this
  machine). The API key and secret come from the environment only (``$QDASH_API_KEY``,
  ``$QDASH_API_SECRET``). An exchange that is not on this machine needs ``--live``, and the
  command prints which account it trades. It runs for ``--duration`` seconds (default: until
  interrupted), then stops; ``--flatten`` closes the position first.
* ``--replay TICKFILE``: the simulator replays the file (in process, its own paper account), the
  trader trades it, and the backtest runs on the same ticks with the same spec and costs
  (:mod:`qdash.trade.replay`).

``--out DIR`` writes ``orders.csv``, ``fills.csv``, ``trades.csv`` and ``shortfall.csv``, and
``shortfall_summary.csv``: the mean and p95 shortfall in bps next to the backtest's assumed
slippage.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import urllib.parse
from pathlib import Path

from ..errors import QdashError
from ..model import pair_legs
from .options import (
    SIM_PORT,
    SIMULATOR,
    add_cost_options,
    add_db,
    add_out,
    add_rest_url,
    add_rule_options,
    add_signal_options,
    add_timeframe,
    add_ws_url,
    signal_spec,
)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("y", metavar="Y", help="the leg held one unit of (e.g. ETHUSDT)")
    p.add_argument("x", metavar="X", help="the hedge leg (e.g. BTCUSDT)")
    add_timeframe(p)
    add_rule_options(p)
    add_signal_options(p)
    add_cost_options(p)
    add_rest_url(p, simulator_first=True)
    add_ws_url(p, simulator_first=True)
    p.add_argument("--live", action="store_true",
                   help="allow an exchange that is not on this machine (real money; its "
                        "orders go to the exchange's store, $QDASH_DB)")
    p.add_argument("--order-type", default="market", choices=("market", "limit"),
                   help="both legs as market orders, or limit orders at the touch (default "
                        "market)")
    p.add_argument("--timeout-ms", type=int, default=1_000,
                   help="a leg unfilled this long is chased with a market order (default 1000)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to trade (default: until interrupted)")
    p.add_argument("--flatten", action="store_true", help="close the position when stopping")
    p.add_argument("--replay", default=None, metavar="TICKFILE",
                   help="replay this tick file on the simulator, trade it, compare with the "
                        "backtest")
    p.add_argument("--speed", type=float, default=20.0,
                   help="--replay pace, × real time between decisions (default 20)")
    add_db(p, store=SIMULATOR)
    add_out(p, "directory for orders.csv, fills.csv, trades.csv, shortfall.csv",
            "trade-Y-X-TIMEFRAME")


def is_local(url: str) -> bool:
    """Whether ``url`` names this machine."""
    return urllib.parse.urlsplit(url).hostname in LOCAL_HOSTS


def _urls(args) -> tuple[str, str]:
    from ..config import Settings

    env = Settings.from_env()
    rest = args.rest_url or env.sim_rest_url or f"http://127.0.0.1:{SIM_PORT}"
    ws = args.ws_url or env.sim_ws_url or f"ws://127.0.0.1:{SIM_PORT}"
    return rest, ws


def write_outputs(result, out: Path) -> list[Path]:
    """The CSVs of a trader and its comparison with the backtest."""
    import pandas as pd

    from ..io.export import write_csv

    out.mkdir(parents=True, exist_ok=True)
    tables = {"orders": result.trader.orders_frame(), "fills": result.trader.fills_frame(),
              "trades": result.trips, "shortfall": result.shortfall,
              "shortfall_summary": pd.DataFrame([result.summary])}
    paths = []
    for name, frame in tables.items():
        path = out / f"{name}.csv"
        write_csv(frame, path, index=False)
        paths.append(path)
    return paths


def print_summary(result) -> None:
    s = result.summary
    print(f"round trips: {s['round_trips']} ({s['differing']} differ from the backtest)")
    mean, p95 = s["mean_shortfall_bps"], s["p95_shortfall_bps"]
    if math.isnan(mean):
        print("shortfall: no round trip made by both the paper trader and the backtest")
    else:
        print(f"shortfall: mean {mean:.2f} bps, p95 {p95:.2f} bps over {s['fills_compared']} "
              f"fills; the backtest assumed {s['assumed_slippage_bps']:g} bps of slippage")
    for row in result.shortfall.itertuples():
        if row.why:
            print(f"  {row.entry_time}: {row.why}")


async def _live(args, spec):
    from ..binance.rest import RestClient
    from ..feeds.binance import BinanceFutures
    from ..live import LiveSession
    from ..store import Store, resolve_db_path
    from ..trade import LeggingPolicy, PaperTrader
    from ..trade.replay import against_backtest

    rest, ws = _urls(args)
    if not (is_local(rest) and is_local(ws)) and not args.live:
        raise QdashError(f"{rest} is not on this machine: trading there needs --live")
    trader = PaperTrader(args.y, args.x, spec, entry=args.entry, exit=args.exit,
                         stop=args.stop, max_hold=args.max_hold, capital=args.capital,
                         leverage=args.leverage, timeframe=args.timeframe, rest_url=rest,
                         ws_url=ws, policy=LeggingPolicy(args.order_type.upper(),
                                                         args.timeout_ms))
    venue = await asyncio.to_thread(RestClient(rest).venue)
    store = Store(resolve_db_path(args.db, simulated=venue == "simulated"))
    trader.records.store = store
    print(f"trading {trader.pair} on {venue} exchange {rest}, account key "
          f"{trader.account.key_hint}")
    feed = BinanceFutures([args.y, args.x], ws_url=ws, rest_url=rest,
                          source="sim" if venue == "simulated" else "binance")
    session = LiveSession(feed, y=args.y, x=args.x, timeframe=args.timeframe, store=store,
                          pair_config=_pair_config(spec))
    trader.attach(session)
    await trader.start()
    session.start()
    try:
        await asyncio.sleep(args.duration if args.duration is not None else math.inf)
    finally:
        if args.flatten:
            await trader.flatten()
        await session.stop()
        await trader.stop()
    bars = {s: session.candles[s].frame() for s in (args.y, args.x)}
    return against_backtest(trader, bars[args.y], bars[args.x], fee_bps=args.fee_bps,
                            slippage_bps=args.slippage_bps)


def _pair_config(spec):
    from ..analytics.pair import PairConfig

    return PairConfig(**spec.to_dict())


def run(args: argparse.Namespace) -> int:
    """Trade (or replay), write the CSVs, print the shortfall summary. Exit code 0, or 1 on
    invalid inputs or an unreachable exchange."""
    from ..trade import LeggingPolicy
    from ..trade.replay import replay_paper

    try:
        args.y, args.x = pair_legs(args.y, args.x)
        spec = signal_spec(args)
        if args.replay:
            result = asyncio.run(replay_paper(
                args.replay, args.y, args.x, spec, timeframe=args.timeframe, entry=args.entry,
                exit=args.exit, stop=args.stop, max_hold=args.max_hold, capital=args.capital,
                leverage=args.leverage, fee_bps=args.fee_bps, slippage_bps=args.slippage_bps,
                speed=args.speed, policy=LeggingPolicy(args.order_type.upper(),
                                                       args.timeout_ms)))
        else:
            result = asyncio.run(_live(args, spec))
    except QdashError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    out = Path(args.out or f"trade-{args.y}-{args.x}-{args.timeframe}")
    paths = write_outputs(result, out)
    print_summary(result)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0
