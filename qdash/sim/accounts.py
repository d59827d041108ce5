"""Paper accounts of the simulated exchange: API keys, balances, orders, trades, positions, and
the checks of a signed request.

An account holds USDT (``wallet``, the wallet balance: deposits + realized PnL − fees ±
funding), its positions (:class:`qdash.sim.margin.Position`), every order it sent and its
trades. The secret is held for signature checks only: it is not in any ``repr``, log line, error
or answer. Signed requests are checked as Binance checks them (``X-MBX-APIKEY``, HMAC-SHA256 of
query string + body, ``timestamp`` within ``recvWindow``), with Binance's codes.
"""

from __future__ import annotations

import collections
import re
import secrets
from dataclasses import dataclass, field

from ..binance.algo_orders import AlgoOrder
from ..binance.orders import Order, Rejected
from ..binance.signing import DEFAULT_RECV_WINDOW_MS, MAX_RECV_WINDOW_MS, signature_ok
from .margin import Position

MAKER_FEE, TAKER_FEE = 0.0002, 0.0005  # Binance's base tier (VIP 0)
_KEY = re.compile(r"^[A-Za-z0-9]{8,128}$")
_SIGNATURE = re.compile(r"(^|&)signature=[^&]*")


@dataclass
class Account:
    """One paper account (see the module doc); ``maker``/``taker`` commission rates."""

    key: str
    secret: str = field(repr=False)
    wallet: float = 0.0
    maker: float = MAKER_FEE
    taker: float = TAKER_FEE
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    live: dict[int, Order] = field(default_factory=dict)  # the open ones
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)  # conditional orders
    trades: list[dict] = field(default_factory=list)
    order_times: collections.deque = field(default_factory=collections.deque, repr=False)
    margin_called: bool = False

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.live.values() if symbol is None or o.symbol == symbol]

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
        if order_id is not None:
            o = self.orders.get(order_id)
            return o if o is not None and o.symbol == symbol else None
        return next((o for o in reversed(self.orders.values()) if o.symbol == symbol and
                     o.client_id == client_id), None)

    def isolated_wallets(self) -> float:
        return sum(p.wallet for p in self.positions.values() if p.margin_type == "ISOLATED")


class Accounts:
    """The exchange's accounts by API key."""

    def __init__(self):
        self.by_key: dict[str, Account] = {}

    def open(self, key: str | None = None, secret: str | None = None,
             balance: float = 100_000.0, maker: float = MAKER_FEE,
             taker: float = TAKER_FEE) -> Account:
        """Open an account funded with ``balance`` USDT; a key or secret not given is drawn
        (64 hex characters)."""
        key = key or secrets.token_hex(32)
        if not _KEY.match(key):
            raise ValueError("an API key is 8 to 128 letters and digits")
        if key in self.by_key:
            raise ValueError("an account with this API key exists already")
        acc = Account(key, secret or secrets.token_hex(32), float(balance), maker, taker)
        self.by_key[key] = acc
        return acc

    def __iter__(self):
        return iter(self.by_key.values())

    def __len__(self) -> int:
        return len(self.by_key)

    def by_api_key(self, key: str | None) -> Account:
        """The account of an ``X-MBX-APIKEY`` header: -2014 when absent or malformed, -2015
        when unknown."""
        if not key or not _KEY.match(key):
            raise Rejected(-2014)
        acc = self.by_key.get(key)
        if acc is None:
            raise Rejected(-2015)
        return acc

    def authenticate(self, key: str | None, query: str, body: str, params: dict,
                     now_ms: int) -> Account:
        """The account a signed request comes from, checked as Binance checks it: the key
        (-2014/-2015), ``timestamp`` present (-1102) and within ``recvWindow`` (-1021; the
        window at most 60,000 ms, -1130), the ``signature`` over query string + body
        (-1022)."""
        acc = self.by_api_key(key)
        for name in ("timestamp", "signature"):
            if not params.get(name):
                raise Rejected(-1102, name=name)
        try:
            ts = int(params["timestamp"])
            window = int(params.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
        except ValueError:
            raise Rejected(-1102, name="timestamp") from None
        if not 0 < window <= MAX_RECV_WINDOW_MS:
            raise Rejected(-1130, name="recvWindow")
        payload = _SIGNATURE.sub("", query).lstrip("&") + _SIGNATURE.sub("", body).lstrip("&")
        if not signature_ok(payload, acc.secret, params["signature"]):
            raise Rejected(-1022)
        if ts >= now_ms + 1000 or now_ms - ts > window:
            raise Rejected(-1021)
        return acc
