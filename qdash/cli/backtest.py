"""``qdash backtest Y X``: one backtest of pair mean reversion over stored bars, with both legs'
stored funding settled on the position (``--no-funding`` to leave it out); prints the metrics,
writes the CSVs."""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

from ..analytics.signal import HEDGE_METHODS, SignalSpec
from ..backtest.engine import InSampleWarning, Params
from ..backtest.engine import run as run_backtest
from ..backtest.funding import funding_note, stored_funding
from ..backtest.metrics import sharpe_text
from ..bars import stored_candles
from ..errors import QdashError
from ..model import pair_legs, timeframe_ms
from .options import (
    add_db,
    add_out,
    add_time_range,
    add_timeframe,
    add_window,
    check_time_range,
)

LISTED = 8  # symbols named in an unknown-symbol error


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("y", metavar="Y", help="the leg held one unit of (e.g. ETHUSDT)")
    p.add_argument("x", metavar="X", help="the hedge leg (e.g. BTCUSDT)")
    add_timeframe(p)
    add_db(p, readonly=True)
    add_time_range(p)
    p.add_argument("--entry", type=float, default=2.0, help="|z| to enter (default 2)")
    p.add_argument("--exit", type=float, default=0.0, help="z level to exit at (default 0)")
    p.add_argument("--stop", type=float, default=None, help="|z| stop (default none)")
    p.add_argument("--max-hold", type=int, default=None, help="time exit after N bars")
    p.add_argument("--hedge", default="rolling-ols", choices=HEDGE_METHODS,
                   help="hedge ratio method (default rolling-ols)")
    add_window(p, "β window, also the z window unless --z-window")
    p.add_argument("--z-window", type=int, default=None, help="z-score window (default: window)")
    p.add_argument("--refit-every", type=int, default=10,
                   help="bars between refits of huber / theil-sen (default 10)")
    p.add_argument("--beta", type=float, default=None,
                   help="hedge ratio for --hedge fixed (log-price β unless --prices)")
    p.add_argument("--prices", action="store_true",
                   help="signal on prices instead of log prices (β then in price units)")
    p.add_argument("--fee-bps", type=float, default=4.0, help="taker fee per leg per fill")
    p.add_argument("--slippage-bps", type=float, default=0.0, help="slippage per leg per fill")
    p.add_argument("--capital", type=float, default=10_000.0, help="initial capital (quote)")
    p.add_argument("--leverage", type=float, default=1.0)
    p.add_argument("--fill", default="auto", choices=("auto", "open", "close"),
                   help="fill at the next bar's open or close (auto: open)")
    p.add_argument("--no-funding", action="store_true",
                   help="ignore stored funding (by default both legs' stored funding settles "
                        "on the position held; fetch it with qdash fetch --kind funding)")
    add_out(p, "directory for trades.csv, equity.csv, metrics.csv, signals.csv",
            "backtest-Y-X-TIMEFRAME")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:,.6g}"
    return str(v)


def _listing(symbols: list[str]) -> str:
    if not symbols:
        return "nothing"
    more = len(symbols) - LISTED
    return ", ".join(symbols[:LISTED]) + (f" and {more} more" if more > 0 else "")


def signal_spec(args: argparse.Namespace) -> SignalSpec:
    """The signal the options ask for: the timeframe's windows (:mod:`qdash.defaults`) unless
    ``--window``/``--z-window`` say otherwise."""
    windows = {"beta_window": args.window, "z_window": args.z_window or args.window}
    return SignalSpec.for_timeframe(args.timeframe, hedge=args.hedge, log=not args.prices,
                                    refit_every=args.refit_every, beta=args.beta,
                                    **{k: v for k, v in windows.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    """Run one backtest over stored bars, write the CSVs, print the metrics table.

    Returns the exit code: 0 on success, 1 when a leg has no bars in the range (as ``qdash
    bars``). Usage errors (an option's value, the same symbol twice, a symbol the store does not
    hold) raise :class:`~qdash.errors.QdashError`: exit 2 with its message, as every command.
    """
    from ..store import Store

    args.y, args.x = pair_legs(args.y, args.x)
    timeframe_ms(args.timeframe)  # a malformed timeframe is named before the store is read
    check_time_range(args)
    spec = signal_spec(args)
    spec.validate()
    Params(entry=args.entry, exit=args.exit, stop=args.stop, max_hold=args.max_hold,
           capital=args.capital, leverage=args.leverage, fee_bps=args.fee_bps,
           slippage_bps=args.slippage_bps).check()  # every value checked before the store is read
    store = Store(args.db, readonly=True)
    held = set(store.stats()["symbol"])
    for sym in (args.y, args.x):
        if sym not in held:
            raise QdashError(f"unknown symbol {sym}: {store.path} holds no data for it "
                             f"(it holds {_listing(sorted(held))}; see `qdash info`)")
    legs = {}
    for sym in (args.y, args.x):
        bars = stored_candles(store, sym, args.timeframe, args.start, args.end)
        if not len(bars):
            print(f"no {args.timeframe} candles or ticks stored for {sym} in that range (see "
                  "`qdash info`)", file=sys.stderr)
            return 1
        legs[sym] = bars
    tf = timeframe_ms(args.timeframe)
    funding = {sym: None if args.no_funding else stored_funding(store, sym, bars, tf)
               for sym, bars in legs.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InSampleWarning)
        result = run_backtest(legs[args.y], legs[args.x], spec, entry=args.entry,
                              exit=args.exit, stop=args.stop, max_hold=args.max_hold,
                              capital=args.capital, leverage=args.leverage,
                              fee_bps=args.fee_bps, slippage_bps=args.slippage_bps,
                              fill=args.fill, funding_y=funding[args.y],
                              funding_x=funding[args.x])
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    y, x = args.y, args.x
    # the files first: a reader that stops early (`| head`) must not cost the CSVs
    out = Path(args.out or f"backtest-{y}-{x}-{args.timeframe}")
    paths = result.to_csv(out)
    print(f"backtest {y} vs {x} {args.timeframe}: {len(result.equity)} bars "
          f"{result.equity.index[0]} .. {result.equity.index[-1]}; signal: {spec.describe()}"
          f"{' (IN-SAMPLE)' if result.in_sample else ''}")
    width = max(len(k) for k in result.metrics)
    for k, v in result.metrics.items():
        print(f"  {k:<{width}}  {sharpe_text(result.metrics) if k == 'sharpe' else _fmt(v)}")
    for note in result.notes:
        print(f"note: {note}")
    print("funding: off (--no-funding)" if args.no_funding else
          funding_note(result, funding[args.y], funding[args.x], (y, x)))
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
