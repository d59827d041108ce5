"""The trader's client order ids: who sent an order, for which signal bar, which leg.

``<prefix><bar>-<kind><leg><attempt>``, e.g. ``qd3fa9c1-lzx8k2a0-ey0``:

* ``prefix``: ``qd`` + 6 hex digits of the pair (:func:`pair_prefix`), so a restarted trader
  recognises its own orders among an account's;
* ``bar``: the open time (ms UTC, base 36) of the signal bar that caused the order;
* ``kind``: ``e`` entry, ``x`` exit, ``k`` kill switch, ``u`` unwind of a failed entry;
* ``leg``: ``y`` or ``x``; ``attempt``: 0 for the first order, 1, 2... for chases.

Binance allows 36 characters of ``[.A-Z:/a-z0-9_-]``; these stay under 30.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

KINDS = {"e": "entry", "x": "exit", "k": "kill", "u": "unwind"}
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def pair_prefix(y: str, x: str) -> str:
    """The client-id prefix of the pair ``y``/``x`` (stable across restarts)."""
    return "qd" + hashlib.sha1(f"{y.upper()}/{x.upper()}".encode()).hexdigest()[:6] + "-"


def _b36(n: int) -> str:
    out = ""
    n = int(n)
    while True:
        n, r = divmod(n, 36)
        out = _DIGITS[r] + out
        if not n:
            return out


@dataclass(frozen=True)
class ClientId:
    """A parsed client order id of this trader."""

    bar_ms: int
    kind: str
    leg: str
    attempt: int

    def text(self, prefix: str) -> str:
        return f"{prefix}{_b36(self.bar_ms)}-{self.kind}{self.leg}{self.attempt}"


def parse_client_id(text: str, prefix: str) -> ClientId | None:
    """The :class:`ClientId` of ``text`` if this trader (``prefix``) sent it, else None."""
    if not text.startswith(prefix):
        return None
    try:
        bar, tail = text[len(prefix):].split("-")
        kind, leg, attempt = tail[0], tail[1], int(tail[2:])
        if kind not in KINDS or leg not in "yx":
            return None
        return ClientId(int(bar, 36), kind, leg, attempt)
    except (ValueError, IndexError):
        return None
