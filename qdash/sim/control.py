"""``/sim/<action>``: the simulated exchange's test and bench controls (not Binance's API).

``/sim/fault/<name>?arg=value`` calls a fault of :class:`qdash.sim.faults.FaultInjection`
(numbers with a ``.`` pass as floats, others as ints); ``/sim/pause``, ``/sim/resume``;
``/sim/stats`` (counters, open connections, ledger rows); ``/sim/ledger_summary`` (per symbol:
MARKET trade count, first/last id, id sum, total qty). Answers are JSON; GET and POST alike.
"""

from __future__ import annotations

import collections
import json
from typing import Protocol

import tornado.web

from .ledger import Ledger
from .sockets import Connections


class Controlled(Protocol):
    """What the controls reach on the exchange."""

    FAULTS: tuple[str, ...]
    symbols: list[str]
    stats: collections.Counter
    ledger: Ledger
    sockets: Connections

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class ControlHandler(tornado.web.RequestHandler):
    """``/sim/<action>``: faults, pause/resume, stats and a ledger summary (tests, benches)."""

    def initialize(self, sim: Controlled):
        self.sim = sim

    def get(self, action: str):
        sim = self.sim
        args = {k: v[-1].decode() for k, v in self.request.arguments.items()}
        if action == "stats":
            body = dict(sim.stats) | {"connections": len(sim.sockets.open),
                                      "ledger_rows": len(sim.ledger)}
        elif action == "ledger_summary":
            body = sim.ledger.summary(sim.symbols)
        elif action == "pause":
            sim.pause()
            body = {"paused": True}
        elif action == "resume":
            sim.resume()
            body = {"paused": False}
        elif action.startswith("fault/"):
            name = action.split("/", 1)[1]
            method = getattr(sim, name, None)
            if name not in sim.FAULTS or method is None:
                raise tornado.web.HTTPError(404, f"unknown fault {name}")
            kwargs = {k: float(v) if "." in v else int(v) for k, v in args.items()}
            method(**kwargs)
            body = {"fault": name, "args": kwargs}
        else:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    post = get
