"""The options several ``qdash`` commands share, each declared here once with one help text.

A command passes what differs (its default, what a count counts); the help states the real
default. Values stay as the user typed them: a command reads symbol lists with
:func:`qdash.model.parse_symbols` when it runs. Only light modules are imported here, so
building the parser costs nothing (the default URLs are imported by the options that show them).
"""

from __future__ import annotations

import argparse

from ..defaults import DEFAULT_TIMEFRAME, TABLE
from ..errors import QdashError

# what qdash.store.default_db_path does with no path (tests/test_cli_options.py checks it)
DB_DEFAULT = "$QDASH_DB, else qdash.db in the user data directory"
SIM_DB_DEFAULT = ("$QDASH_SIM_DB, else qdash-sim.db beside the default store (simulated trades "
                  "never mix with the exchange's)")

SIM_PORT = 9443  # `qdash sim`'s default port
SIM_URL_DEFAULT = ("$QDASH_SIM_{var}_URL, else {scheme}://127.0.0.1:" + str(SIM_PORT)
                   + " (a running `qdash sim`)")

# the kinds of store a command opens by default: the exchange's, the simulator's, or the one
# of its --source (the simulator's for --source sim)
EXCHANGE, SIMULATOR, BY_SOURCE = "exchange", "simulator", "by-source"


def add_db(p, *, readonly: bool = False, store: str = EXCHANGE) -> None:
    """``--db PATH``: the SQLite store (``None`` when not given: the store resolves its default).

    ``p``: a parser or an argument group. ``store``: whose store is the default, one of
    :data:`EXCHANGE`, :data:`SIMULATOR`, :data:`BY_SOURCE`."""
    default = {EXCHANGE: DB_DEFAULT, SIMULATOR: SIM_DB_DEFAULT,
               BY_SOURCE: f"--source sim: {SIM_DB_DEFAULT}; other sources: {DB_DEFAULT}"}[store]
    p.add_argument("--db", default=None, metavar="PATH",
                   help=f"SQLite store{', opened read-only' if readonly else ''} "
                        f"(default: {default})")


def add_symbols(p, default: str | None = None, *, positional: bool = False,
                all_means: str | None = None, default_means: str | None = None) -> None:
    """The symbols a command works on, separated by commas and/or spaces (text, as typed).

    ``positional``: required words (``qdash record BTCUSDT ETHUSDT``), else ``--symbols``.
    ``all_means``: what the word ``all`` selects, where the command accepts it.
    ``default_means``: the default in words, where ``default`` does not say it."""
    text = "symbols separated by commas or spaces, e.g. BTCUSDT,ETHUSDT"
    if all_means:
        text += f", or all ({all_means})"
    if positional:
        p.add_argument("symbols", nargs="+", metavar="SYMBOLS", help=text)
    else:
        p.add_argument("--symbols", default=default,
                       help=f"{text} (default: {default_means or default})")


def symbols_of(value, option: str = "symbols") -> list[str]:
    """The symbols of an :func:`add_symbols` option, by :func:`qdash.model.parse_symbols`; a bad
    symbol is a :class:`~qdash.errors.QdashError` naming the option."""
    from ..model import parse_symbols  # numpy and pandas: when a command runs, not to parse

    try:
        return parse_symbols(value)
    except ValueError as e:
        raise QdashError(f"{option}: {e}") from None


def add_timeframe(p, default: str = DEFAULT_TIMEFRAME, *,
                  allowed: tuple[str, ...] | None = None) -> None:
    """``--timeframe/-t``: the bar length, a number and a unit (``1s``, ``5m``, ``1h``, ``1d``);
    by default :data:`qdash.defaults.DEFAULT_TIMEFRAME`, the bars every entry point opens on.

    ``allowed``: the only values the command takes (Binance's kline intervals), listed in the
    help; the command checks them."""
    values = ", ".join(allowed) if allowed else "a number and s, m, h, d or w: 1s, 5m, 1h, 1d ..."
    p.add_argument("--timeframe", "-t", default=default,
                   help=f"bar length: {values} (default {default})")


def add_window(p, what: str) -> None:
    """``--window N``: bars of the rolling ``what`` (None when not given: the timeframe's, from
    :mod:`qdash.defaults`, which the help lists)."""
    table = ", ".join(f"{r.timeframe}: {r.beta_window:,}" for r in TABLE.values())
    p.add_argument("--window", type=int, default=None,
                   help=f"{what}, in bars (default: the timeframe's; {table})")


def iso_time(text: str) -> str:
    """An argparse ``type``: ``text`` unchanged when it is a time (ISO 8601 or epoch), else a
    usage error naming it (exit 2)."""
    from ..model import parse_time

    try:
        parse_time(text)
    except (ValueError, TypeError, OverflowError) as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO 8601, e.g. 2024-07-18 or 2024-07-18T23:57:00Z "
            f"({e})") from None
    return text


def add_time_range(p, *, start_required: bool = False, end_means: str | None = None) -> None:
    """``--start``/``--end``: ISO times, UTC unless an offset is given (checked as parsed);
    ``end_means``: what no ``--end`` means (else the end of the data). A command that reads a
    range checks its order with :func:`check_time_range`."""
    p.add_argument("--start", required=start_required, type=iso_time,
                   help="ISO time, inclusive (UTC unless an offset is given)")
    p.add_argument("--end", default=None, type=iso_time,
                   help=f"ISO time, exclusive (default: {end_means or 'the end of the data'})")


def check_time_range(args: argparse.Namespace) -> None:
    """A :class:`~qdash.errors.QdashError` (exit 2) when ``--start`` is not before ``--end``."""
    from ..model import parse_time

    if args.start is not None and args.end is not None and \
            parse_time(args.start) >= parse_time(args.end):
        raise QdashError(f"--start {args.start} is not before --end {args.end}")


def add_rest_url(p, *, simulator_first: bool = False) -> None:
    """``--rest-url``: the Binance USDⓈ-M REST base URL (``simulator_first``: default None, the
    command then trades on a running simulator, :data:`SIM_URL_DEFAULT`)."""
    from ..binance.limits import DEFAULT_REST_URL

    p.add_argument("--rest-url", default=None if simulator_first else DEFAULT_REST_URL,
                   help=_url_help("REST", "http", DEFAULT_REST_URL, simulator_first))


def add_ws_url(p, *, simulator_first: bool = False) -> None:
    """``--ws-url``: the Binance USDⓈ-M WebSocket base URL (``simulator_first``: as
    :func:`add_rest_url`)."""
    from ..binance.limits import DEFAULT_WS_URL

    p.add_argument("--ws-url", default=None if simulator_first else DEFAULT_WS_URL,
                   help=_url_help("WS", "ws", DEFAULT_WS_URL, simulator_first))


def _url_help(var: str, scheme: str, exchange_url: str, simulator_first: bool) -> str:
    what = "REST" if var == "REST" else "WebSocket"
    if simulator_first:
        return (f"the exchange's {what} base URL (default: "
                f"{SIM_URL_DEFAULT.format(var=var, scheme=scheme)})")
    return (f"Binance USDⓈ-M {what} base URL (default {exchange_url}; a running `qdash sim`'s "
            f"{scheme}://HOST:PORT for the simulated exchange)")


def add_workers(p, what: str, default: int | None = None, default_means: str | None = None
                ) -> None:
    """``--workers N``: how many of ``what`` run at once (``what`` says it)."""
    p.add_argument("--workers", type=int, default=default,
                   help=f"{what} (default: {default_means or default})")


def add_scheduler(p) -> None:
    """``--scheduler``: where Dask runs the work."""
    p.add_argument("--scheduler", default="local",
                   help="local (a Dask cluster started here, default), tcp://HOST:PORT (a "
                        "running one), or none (no Dask)")


def add_out(p, what: str, default_means: str) -> None:
    """``--out PATH``: where the command writes ``what``."""
    p.add_argument("--out", default=None, metavar="PATH",
                   help=f"{what} (default: {default_means})")


def add_listen(p, port: int, *, zero_picks_free: bool = False) -> None:
    """``--host``/``--port``: where a server listens (``zero_picks_free``: port 0 takes any free
    port, and the server prints it)."""
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    free = "; 0: any free port" if zero_picks_free else ""
    p.add_argument("--port", type=int, default=port, help=f"TCP port (default {port}{free})")


def add_token(p) -> None:
    """``--token``: the bearer secret of tick writes and subscriptions."""
    p.add_argument("--token", default=None,
                   help="bearer token for tick writes and subscriptions (default: $QDASH_TOKEN, "
                        "else generated and printed)")


def add_no_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")



def add_rule_options(p) -> None:
    """The pair rule's levels: ``--entry``, ``--exit``, ``--stop``, ``--max-hold``."""
    p.add_argument("--entry", type=float, default=2.0, help="|z| to enter (default 2)")
    p.add_argument("--exit", type=float, default=0.0, help="z level to exit at (default 0)")
    p.add_argument("--stop", type=float, default=None, help="|z| stop (default none)")
    p.add_argument("--max-hold", type=int, default=None, help="time exit after N bars")


def add_signal_options(p) -> None:
    """The signal (:class:`~qdash.analytics.signal.SignalSpec`): ``--hedge``, ``--window``,
    ``--z-window``, ``--refit-every``, ``--beta``, ``--prices`` (read by :func:`signal_spec`)."""
    from ..analytics.estimators import SIGNAL_METHODS

    p.add_argument("--hedge", default="rolling-ols", choices=SIGNAL_METHODS,
                   help="hedge ratio method (default rolling-ols)")
    add_window(p, "β window, also the z window unless --z-window")
    p.add_argument("--z-window", type=int, default=None, help="z-score window (default: window)")
    p.add_argument("--refit-every", type=int, default=10,
                   help="bars between refits of huber / theil-sen (default 10)")
    p.add_argument("--beta", type=float, default=None,
                   help="hedge ratio for --hedge fixed (log-price β unless --prices)")
    p.add_argument("--prices", action="store_true",
                   help="signal on prices instead of log prices (β then in price units)")


def add_cost_options(p) -> None:
    """Costs and sizing: ``--fee-bps``, ``--slippage-bps``, ``--capital``, ``--leverage``."""
    p.add_argument("--fee-bps", type=float, default=4.0, help="taker fee per leg per fill")
    p.add_argument("--slippage-bps", type=float, default=0.0, help="slippage per leg per fill")
    p.add_argument("--capital", type=float, default=10_000.0, help="initial capital (quote)")
    p.add_argument("--leverage", type=float, default=1.0)


def signal_spec(args):
    """The :class:`~qdash.analytics.signal.SignalSpec` the options of
    :func:`add_signal_options` ask for: the timeframe's windows (:mod:`qdash.defaults`) unless
    ``--window``/``--z-window`` say otherwise."""
    from ..analytics.signal import SignalSpec

    windows = {"beta_window": args.window, "z_window": args.z_window or args.window}
    return SignalSpec.for_timeframe(args.timeframe, hedge=args.hedge, log=not args.prices,
                                    refit_every=args.refit_every, beta=args.beta,
                                    **{k: v for k, v in windows.items() if v is not None})
