"""The command line's shared options: each declared once (qdash/cli/options.py), every command's
help stating the real default, every command parsing its options; symbol lists parsed by one
function."""

import ast
import collections
import functools
import re

import platformdirs
import pytest
from conftest import REPO

from qdash.cli import COMMANDS, build_parser, main
from qdash.config import ConfigError, Settings
from qdash.model import ALL_SYMBOLS, parse_symbols
from qdash.store import default_db_path

SHARED = ("--db", "--symbols", "--timeframe", "--rest-url", "--ws-url", "--workers", "--out",
          "--scheduler", "--token", "--start", "--end", "--host", "--port", "--no-progress")


@functools.cache
def _declarations() -> dict[str, list[str]]:
    """{option: ``file:line`` of every ``add_argument(option, ...)`` in qdash/}."""
    found = collections.defaultdict(list)
    for path in sorted((REPO / "qdash").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add_argument" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                found[node.args[0].value].append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


@pytest.mark.parametrize("option", SHARED)
def test_each_shared_option_is_declared_once_in_the_options_module(option):
    found = _declarations()[option]
    assert len(found) == 1 and found[0].startswith("qdash/cli/options.py"), found


def _help(command: str, capsys, monkeypatch) -> dict[str, str]:
    """``qdash COMMAND --help`` as {option: its help on one line}."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: one line per option
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    options = {}
    lines = capsys.readouterr().out.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  (-[^\s,]+)", line)
        if m:  # the help follows the option's usage on its line, or on the next one
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            options[m.group(1)] = parts[1] if len(parts) == 2 else lines[i + 1].strip()
    return options


def _default_of_db_help(text: str, source: str | None = None) -> str:
    """The default a ``--db`` help states (for ``source``, where it depends on --source)."""
    default = re.search(r"\(default: (.*)\)$", text).group(1)
    if default.startswith("--source sim: "):
        sim, other = default.removeprefix("--source sim: ").split("; other sources: ")
        default = sim if source == "sim" else other
    return default


def _real_default(stated: str) -> str:
    """What a stated default means, as the path it names with no variable set."""
    if stated.startswith("$QDASH_DB, else qdash.db in the user data directory"):
        return str(platformdirs.user_data_path("qdash") / "qdash.db")
    if stated.startswith("$QDASH_SIM_DB, else qdash-sim.db beside the default store"):
        return str(platformdirs.user_data_path("qdash") / "qdash-sim.db")
    raise AssertionError(f"unknown default {stated!r}")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_commands_help_states_the_real_default_store(command, capsys, monkeypatch):
    options = _help(command, capsys, monkeypatch)
    if "--db" not in options:
        assert command in ("sim",), f"{command} opens a store but has no --db"
        return
    text = options["--db"]
    assert "./qdash.db" not in text
    monkeypatch.delenv("QDASH_DB", raising=False)
    monkeypatch.delenv("QDASH_SIM_DB", raising=False)
    simulated = {"demo": [True], "dashboard": [True, False], "trade": [True]}.get(command,
                                                                                 [False])
    for sim in simulated:
        stated = _default_of_db_help(text, "sim" if sim else "binance")
        assert _real_default(stated) == default_db_path(simulated=sim), (command, stated)
        variable = "QDASH_SIM_DB" if sim else "QDASH_DB"
        assert stated.startswith(f"${variable}, else")
        monkeypatch.setenv(variable, "/tmp/elsewhere.db")
        assert default_db_path(simulated=sim) == "/tmp/elsewhere.db"  # the variable first
        monkeypatch.delenv(variable)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_commands_help_states_its_shared_option_defaults(command, capsys, monkeypatch):
    options = _help(command, capsys, monkeypatch)
    parser = build_parser([command])
    args = parser.parse_args([command, *_REQUIRED.get(command, [])])
    for option in ("--timeframe", "--rest-url", "--ws-url", "--workers", "--symbols", "--port"):
        dest = option[2:].replace("-", "_")
        if option in options or (hasattr(args, dest) and command not in ("record", "fetch")):
            default = getattr(args, dest)
            assert default is None or f"default {default}" in options[option] or \
                f"default: {default}" in options[option], (command, option, options[option])


_REQUIRED = {"load": ["a.csv"], "bars": ["ETHUSDT"], "record": ["BTCUSDT"],
             "backtest": ["ETHUSDT", "BTCUSDT"], "fetch": ["BTCUSDT", "--start", "2024-01-01"],
             "trade": ["ETHUSDT", "BTCUSDT"]}

# command line -> the values it must parse to
PARSED = [
    (["load", "a.csv", "b.zip", "--db", "x.db", "--symbol", "BTCUSDT", "--skip-bad",
      "--no-progress"],
     {"paths": ["a.csv", "b.zip"], "db": "x.db", "symbol": "BTCUSDT", "skip_bad": True,
      "no_progress": True}),
    (["bars", "ETHUSDT", "-t", "5m", "--db", "x.db", "--start", "2024-07-19", "--end",
      "2024-07-20", "--fill", "--out", "e.csv"],
     {"symbol": "ETHUSDT", "timeframe": "5m", "db": "x.db", "start": "2024-07-19",
      "end": "2024-07-20", "fill": True, "out": "e.csv"}),
    (["info", "--db", "x.db"], {"db": "x.db"}),
    (["record", "BTCUSDT,ethusdt", "SOLUSDT", "--db", "x.db", "--stream", "aggTrade", "--ws-url",
      "ws://h:1", "--rest-url", "http://h:1", "--duration", "2", "--resume-horizon", "0"],
     {"symbols": ["BTCUSDT,ethusdt", "SOLUSDT"], "db": "x.db", "stream": "aggTrade",
      "ws_url": "ws://h:1", "rest_url": "http://h:1", "duration": 2.0, "resume_horizon": 0.0}),
    (["sim", "--port", "0", "--symbols", "btcusdt,ethusdt", "--rate", "10", "--seed", "3"],
     {"port": 0, "host": "127.0.0.1", "symbols": "btcusdt,ethusdt", "rate": 10.0, "seed": 3}),
    (["serve", "--port", "5002", "--db", "x.db", "--token", "t", "--loopback-subscribe"],
     {"port": 5002, "db": "x.db", "token": "t", "loopback_subscribe": True}),
    (["backtest", "ETHUSDT", "BTCUSDT", "-t", "1h", "--db", "x.db", "--window", "50", "--out",
      "d"], {"y": "ETHUSDT", "x": "BTCUSDT", "timeframe": "1h", "db": "x.db", "window": 50,
             "out": "d"}),
    (["scan", "--symbols", "A1USDT,B1USDT", "--db", "x.db", "--workers", "2", "--scheduler",
      "none", "--out", "o.csv"],
     {"symbols": "A1USDT,B1USDT", "db": "x.db", "workers": 2, "scheduler": "none",
      "out": "o.csv", "timeframe": "5m"}),
    (["book", "--bars", "b.parquet", "--symbols", "all", "--train", "20d", "--trade", "5d",
      "--fdr", "0.1", "--max-pairs", "8", "--allocation", "risk-parity", "--leverage", "2",
      "--max-symbol-weight", "0.3", "--fee-bps", "4", "--no-funding", "--scheduler", "none",
      "--workers", "2", "--out", "d"],
     {"bars": "b.parquet", "symbols": "all", "train": "20d", "trade": "5d", "fdr": 0.1,
      "max_pairs": 8, "allocation": "risk-parity", "leverage": 2.0, "max_symbol_weight": 0.3,
      "fee_bps": 4.0, "no_funding": True, "scheduler": "none", "workers": 2, "out": "d",
      "timeframe": "5m", "entry": 2.0, "exit": 0.0, "stop": 4.0, "capital": 100_000.0,
      "slippage_bps": None, "hedge": "rolling-ols", "window": None, "start": None}),
    (["dashboard", "--source", "sim", "--symbols", "BTCUSDT,ETHUSDT", "--pair", "ETHUSDT,BTCUSDT",
      "--timeframe", "1m", "--db", "x.db", "--port", "0", "--no-browser"],
     {"source": "sim", "symbols": "BTCUSDT,ETHUSDT", "pair": "ETHUSDT,BTCUSDT",
      "timeframe": "1m", "db": "x.db", "port": 0, "no_browser": True}),
    (["demo", "--rate", "5", "--seed", "1", "--window", "30"],
     {"rate": 5.0, "seed": 1, "window": 30, "timeframe": "5m",
      "symbols": "BTCUSDT,ETHUSDT,SOLUSDT"}),
    (["fetch", "BTCUSDT,ETHUSDT", "--start", "2024-01-01", "--kind", "funding", "--workers", "2",
      "--rest-url", "http://h:1", "--db", "x.db"],
     {"symbols": ["BTCUSDT,ETHUSDT"], "start": "2024-01-01", "end": None, "kind": "funding",
      "workers": 2, "rest_url": "http://h:1", "db": "x.db", "timeframe": "5m"}),
    (["archive", "--db", "x.db", "--dir", "arch", "--before", "2024-01-01"],
     {"db": "x.db", "dir": "arch", "before": "2024-01-01"}),
    (["trade", "ETHUSDT", "BTCUSDT", "-t", "1s", "--window", "30", "--entry", "1.5",
      "--replay", "t.ndjson", "--speed", "5", "--order-type", "limit", "--out", "o"],
     {"y": "ETHUSDT", "x": "BTCUSDT", "timeframe": "1s", "window": 30, "entry": 1.5,
      "replay": "t.ndjson", "speed": 5.0, "order_type": "limit", "out": "o", "rest_url": None,
      "live": False}),
]


def test_every_command_is_exercised_below():
    assert {argv[0] for argv, _ in PARSED} == set(COMMANDS)


@pytest.mark.parametrize("argv,expected", PARSED, ids=[argv[0] for argv, _ in PARSED])
def test_each_command_parses_its_options(argv, expected):
    args = build_parser(argv).parse_args(argv)
    assert args.command == argv[0] and callable(args.run)
    assert {k: getattr(args, k) for k in expected} == expected


def test_only_the_named_commands_options_are_built():
    parser = build_parser(["info"])
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--port", "0"])  # sim's options were not added


def test_symbol_lists_parse_one_way():
    assert parse_symbols(" btcusdt, ETHUSDT  solusdt,,btcusdt ") == ["BTCUSDT", "ETHUSDT",
                                                                       "SOLUSDT"]
    assert parse_symbols(["BTCUSDT,ethusdt", "SOLUSDT"]) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert parse_symbols("all") == [ALL_SYMBOLS]
    assert parse_symbols(" , ") == []
    with pytest.raises(ValueError, match="bad symbol"):
        parse_symbols("BTCUSDT,B$D")
    assert Settings.from_env({"QDASH_SYMBOLS": "btcusdt ethusdt"}).symbols == ("BTCUSDT",
                                                                                "ETHUSDT")
    with pytest.raises(ConfigError, match="QDASH_SYMBOLS"):
        Settings.from_env({"QDASH_SYMBOLS": "BTCUSDT,B$D"})


def test_qdash_settings_are_named_only_in_the_config_module():
    """Every ``QDASH_*`` variable is read and written through :class:`qdash.config.Settings`."""
    hits = sorted(str(p.relative_to(REPO)) for p in (REPO / "qdash").rglob("*.py")
                  if '"QDASH_' in p.read_text())
    assert hits == ["qdash/config.py"]


