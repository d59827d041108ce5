"""Every ``QDASH_*`` setting, read and written in one place.

The environment is how a command line hands its choices to the processes it starts (Voila's
kernels, the simulator, Jupyter's server extension): :meth:`Settings.export` writes them and
:meth:`Settings.from_env` reads them back, typed. Nothing else in qdash names a ``QDASH_*``
variable. A value that does not parse is a :class:`ConfigError` naming the variable.

| variable | field | meaning |
|---|---|---|
| ``QDASH_DB`` | ``db`` | the SQLite store (default: ``qdash.db`` in the user data directory) |
| ``QDASH_SIM_DB`` | ``sim_db`` | the simulated exchange's own store (``qdash-sim.db`` beside it) |
| ``QDASH_TOKEN`` | ``token`` | bearer secret for tick writes and subscriptions (never logged) |
| ``QDASH_SERVER_URL`` | ``server_url`` | the qdash server's HTTP base URL, for the hub feed |
| ``QDASH_DEBUG`` | ``debug`` | tracebacks on command-line errors (any value but ``""``/``0``) |
| ``QDASH_PAGE_BOKEHJS`` | ``page_bokehjs`` | BokehJS version the app's page loads itself |
| ``QDASH_SNAPSHOT_DIR`` | ``snapshot_dir`` | where the app's kernels write their page snapshots |
| ``QDASH_SOURCE`` | ``source`` | the dashboard's data source: binance, sim, hub or store |
| ``QDASH_SYMBOLS`` | ``symbols`` | the dashboard's symbols, comma-separated |
| ``QDASH_PAIR`` | ``pair`` | the dashboard's pair, ``Y,X`` |
| ``QDASH_TIMEFRAME`` | ``timeframe`` | the dashboard's bar length (``1s``, ``1m``, ``1h`` ...) |
| ``QDASH_WINDOW`` | ``window`` | the dashboard's rolling window, in bars |
| ``QDASH_SIM_WS_URL`` | ``sim_ws_url`` | a running simulated exchange's WebSocket base URL |
| ``QDASH_SIM_REST_URL`` | ``sim_rest_url`` | the same exchange's REST base URL |
| ``QDASH_DEPTH_INTERVAL`` | ``depth_interval`` | seconds between recorded order book snapshots \
(top 20 levels a side, per symbol; default 10; 0: record none) |
| ``QDASH_API_KEY`` | ``api_key`` | the trading account's API key (never logged or printed) |
| ``QDASH_API_SECRET`` | ``api_secret`` | its secret (never logged, printed or stored) |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from .errors import QdashError

DEFAULT_DEPTH_INTERVAL_S = 10.0
"""Seconds between recorded order book snapshots when ``QDASH_DEPTH_INTERVAL`` is unset: a
snapshot is 640 bytes of levels, so 10 s keep a symbol's day at about 6 MB in the store and
still give a 1-minute bar six books to choose its slippage from."""


class ConfigError(QdashError, ValueError):
    """A ``QDASH_*`` variable holds a value that does not parse."""


def _var(name: str, default=None, **kw):
    return field(default=default, metadata={"env": name}, **kw)


@dataclass(frozen=True)
class Settings:
    """The ``QDASH_*`` settings, typed. ``None`` is "not set" (the reader's default applies)."""

    db: str | None = _var("QDASH_DB")
    sim_db: str | None = _var("QDASH_SIM_DB")
    token: str | None = _var("QDASH_TOKEN")
    server_url: str | None = _var("QDASH_SERVER_URL")
    debug: bool = _var("QDASH_DEBUG", False)
    page_bokehjs: str | None = _var("QDASH_PAGE_BOKEHJS")
    snapshot_dir: str | None = _var("QDASH_SNAPSHOT_DIR")
    source: str | None = _var("QDASH_SOURCE")
    symbols: tuple[str, ...] | None = _var("QDASH_SYMBOLS")
    pair: tuple[str, str] | None = _var("QDASH_PAIR")
    timeframe: str | None = _var("QDASH_TIMEFRAME")
    window: int | None = _var("QDASH_WINDOW")
    sim_ws_url: str | None = _var("QDASH_SIM_WS_URL")
    sim_rest_url: str | None = _var("QDASH_SIM_REST_URL")
    depth_interval: float | None = _var("QDASH_DEPTH_INTERVAL")
    api_key: str | None = _var("QDASH_API_KEY", repr=False)
    api_secret: str | None = _var("QDASH_API_SECRET", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``env`` (default ``os.environ``); empty variables count as unset."""
        env = os.environ if env is None else env
        values = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"], "")
            if raw != "":
                values[f.name] = _parse(f.name, f.metadata["env"], raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The set fields as ``{variable: text}``, in the form :meth:`from_env` reads back."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value is False:
                continue
            if isinstance(value, tuple):
                value = ",".join(value)
            elif value is True:
                value = "1"
            out[f.metadata["env"]] = str(value)
        return out

    def export(self, env: MutableMapping[str, str] | None = None) -> None:
        """Write the set fields to ``env`` (default ``os.environ``): processes started after
        this (Voila's kernels, the simulator) read them with :meth:`from_env`."""
        (os.environ if env is None else env).update(self.to_env())

    @property
    def depth_record_every(self) -> float | None:
        """Seconds between recorded depth snapshots (None: record none)."""
        value = DEFAULT_DEPTH_INTERVAL_S if self.depth_interval is None else self.depth_interval
        return value or None

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def var_name(field_name: str) -> str:
    """The environment variable of a :class:`Settings` field (``"db"`` -> ``"QDASH_DB"``)."""
    for f in dataclasses.fields(Settings):
        if f.name == field_name:
            return f.metadata["env"]
    raise KeyError(field_name)


def _parse(name: str, var: str, raw: str):
    if name == "debug":
        return raw != "0"
    if name == "window":
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise ConfigError(f"${var}={raw!r}: expected a whole number of bars > 0")
        return value
    if name == "depth_interval":
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds < float("inf"):
            raise ConfigError(f"${var}={raw!r}: expected seconds >= 0 between recorded order "
                              "book snapshots (0: record none)")
        return seconds
    if name == "symbols":
        from .model import parse_symbols  # numpy and pandas, for this variable only

        try:
            symbols = tuple(parse_symbols(raw))
        except ValueError as e:
            raise ConfigError(f"${var}={raw!r}: {e}") from None
        if not symbols:
            raise ConfigError(f"${var}={raw!r}: expected symbols separated by commas")
        return symbols
    if name == "pair":
        legs = tuple(s.strip().upper() for s in raw.split(","))
        if len(legs) != 2 or not all(legs) or legs[0] == legs[1]:
            raise ConfigError(f"${var}={raw!r}: expected two different symbols, Y,X "
                              "(e.g. ETHUSDT,BTCUSDT)")
        return legs
    return raw
