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


def add_rest_url(p) -> None:
    """``--rest-url``: the Binance USDⓈ-M REST base URL."""
    from ..binance.limits import DEFAULT_REST_URL

    p.add_argument("--rest-url", default=DEFAULT_REST_URL,
                   help=f"Binance USDⓈ-M REST base URL (default {DEFAULT_REST_URL}; a running "
                        "`qdash sim`'s http://HOST:PORT for the simulated exchange)")


def add_ws_url(p) -> None:
    """``--ws-url``: the Binance USDⓈ-M WebSocket base URL."""
    from ..binance.limits import DEFAULT_WS_URL

    p.add_argument("--ws-url", default=DEFAULT_WS_URL,
                   help=f"Binance USDⓈ-M WebSocket base URL (default {DEFAULT_WS_URL}; a running "
                        "`qdash sim`'s ws://HOST:PORT for the simulated exchange)")


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

