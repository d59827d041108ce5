"""``RestClient``: THE Binance USDⓈ-M REST client of qdash (history fetch, live backfill, pollers).

The only client-side code that handles HTTP 429/418 and ``Retry-After``; everything that speaks
Binance REST goes through it.

* ``get(path, params, weight=...)`` returns the decoded JSON of a GET. Connections are kept alive
  (one per thread); the client is thread-safe, so a pool of threads can share one client and its
  budget. ``await aget(...)`` runs the same call in a worker thread for event-loop callers.
* Request weight: every request reserves its weight (Binance's per-endpoint figure,
  :func:`qdash.binance.limits.request_weight`) in a per-minute budget before it is sent, and
  waits for the next UTC minute when the budget is spent. The budget's limit is ``weight_limit``
  (Binance: 2,400 a minute; :meth:`RestClient.exchange_info` adopts the ``REQUEST_WEIGHT`` limit
  the exchange announces); each response's ``X-MBX-USED-WEIGHT-1M`` corrects the count when other
  clients on the same IP spend weight too. ``fundingRate``/``fundingInfo`` also share a budget of
  500 requests per 5 minutes.
* HTTP 429 / 418: no further request of this client is sent before ``Retry-After`` seconds have
  passed (without the header: the next minute for 429, 120 s for 418); the request is then
  retried. A wait longer than ``max_wait`` seconds raises :class:`RestRateLimited` instead.
* Transient failures (HTTP 5xx and 408, connection refused/reset, timeouts) are retried up to
  ``retries`` times with :class:`qdash.retry.Backoff` (``backoff_initial`` doubling up to
  ``backoff_max`` seconds, each wait drawn from [½, 1] of the step), then raise
  :class:`RestUnavailable`.
* Any other 4xx raises :class:`RestError` with Binance's ``{"code", "msg"}`` in the message (e.g.
  ``-1121 Invalid symbol.``); its ``status``, ``code`` and ``msg`` attributes hold them.
* Signing: ``sign(query) -> (query, headers)`` (optional) turns each request's query string into
  the one sent (e.g. with ``timestamp`` and ``signature`` appended) plus headers such as
  ``X-MBX-APIKEY``.

Times are seconds unless named ``_ms`` (Binance times: int ms UTC).
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import logging
import math
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import QdashError
from ..retry import Backoff
from .limits import (
    BAN_DEFAULT_S,
    DEFAULT_REST_URL,
    DEFAULT_WEIGHT_LIMIT,
    EXCHANGE_INFO,
    FUNDING_BUDGET_PATHS,
    FUNDING_REQUESTS_PER_5MIN,
    request_weight,
)
from .schema import venue_of

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({408, 500, 502, 503, 504})
TRANSIENT_ERRORS = (OSError, http.client.HTTPException)  # refused, reset, timeouts, TLS


class RestError(QdashError):
    """Binance answered a request with an error (4xx other than 429/418, or a malformed body).

    ``status`` (HTTP), ``code`` and ``msg`` (Binance's ``{"code", "msg"}``, None when absent),
    ``path`` and ``params`` of the request.
    """

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 msg: str | None = None, path: str = "", params: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.msg = status, code, msg
        self.path, self.params = path, dict(params or {})


class RestUnavailable(RestError):
    """Transient failures (5xx, connection errors, timeouts) persisted after every retry."""


class RestRateLimited(RestError):
    """Binance asked to wait (429/418 ``Retry-After``) longer than the client's ``max_wait``."""


# --- budgets -----------------------------------------------------------------------------------

class _Budget:
    """A fixed-window budget (``limit`` units per ``window_s`` seconds of wall time, windows
    aligned to the epoch like Binance's minutes), shared by threads."""

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = int(limit), float(window_s)
        self.window = -1
        self.used = 0

    def _roll(self, now: float) -> None:
        w = int(now // self.window_s)
        if w != self.window:
            self.window, self.used = w, 0

    def wait_needed(self, now: float, units: int) -> float:
        """Seconds to wait before ``units`` fit (0: they fit now)."""
        self._roll(now)
        if self.used + units <= self.limit or self.used == 0:
            return 0.0
        return (self.window + 1) * self.window_s - now

    def take(self, now: float, units: int) -> int:
        """Reserve ``units`` in the current window; returns the window index."""
        self._roll(now)
        self.used += units
        return self.window

    def observe(self, window: int, used: int) -> None:
        """The server reported ``used`` units spent in ``window`` (counting this request)."""
        if window == self.window and used > self.used:
            self.used = used


class RestClient:
    """Binance REST GETs under the weight limit, with retries (see the module docstring).

    ``base_url``: ``https://fapi.binance.com`` by default, or the simulator/a proxy. ``clock``
    (wall seconds) and ``sleep`` may be replaced, e.g. by tests that record the waits.
    """

    def __init__(self, base_url: str = DEFAULT_REST_URL, *,
                 weight_limit: int = DEFAULT_WEIGHT_LIMIT, timeout: float = 15.0,
                 retries: int = 5, backoff_initial: float = 0.25, backoff_max: float = 8.0,
                 max_wait: float = 600.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 sign: Callable[[str], tuple[str, dict]] | None = None):
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise QdashError(f"REST base URL {base_url!r} is not an http(s) URL such as "
                             f"{DEFAULT_REST_URL}")
        self.base_url = base_url.rstrip("/")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path
        self.timeout, self.retries = float(timeout), int(retries)
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_wait = float(max_wait)
        self._clock, self._sleep, self._sign = clock, sleep, sign
        self._cond = threading.Condition()
        self._weight = _Budget(weight_limit, 60.0)
        self._funding = _Budget(FUNDING_REQUESTS_PER_5MIN, 300.0)
        self._blocked_until = 0.0
        self._local = threading.local()
        self._exchange_info: dict | None = None
        self.counters: collections.Counter = collections.Counter()
        self.last_used_weight: int | None = None

    @property
    def weight_limit(self) -> int:
        """REQUEST_WEIGHT allowed per minute."""
        return self._weight.limit

    @weight_limit.setter
    def weight_limit(self, limit: int) -> None:
        with self._cond:
            self._weight.limit = int(limit)
            self._cond.notify_all()

    # --- public calls ------------------------------------------------------------------------
    def get(self, path: str, params: dict | None = None, *, weight: int | None = None) -> Any:
        """Decoded JSON of ``GET base_url + path?params`` (see the module docstring).

        ``weight`` defaults to :func:`request_weight`. Raises :class:`RestError` (4xx),
        :class:`RestUnavailable` (transient failures after retries) or :class:`RestRateLimited`.
        """
        return self.request("GET", path, params, weight=weight)

    def request(self, method: str, path: str, params: dict | None = None, *,
                weight: int | None = None) -> Any:
        """Decoded JSON of ``method base_url + path?params`` (``GET``, ``POST``, ``PUT``,
        ``DELETE``; parameters in the query string, as Binance accepts for every method).

        As :meth:`get`, except that a ``POST``/``PUT``/``DELETE`` that fails in transit is not
        sent again (an order may have reached the exchange; the caller reconciles by its client
        order id): it raises :class:`RestUnavailable` at once. Rate-limit answers (429/418) are
        still waited out and retried: Binance processed nothing then."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        w = request_weight(path, params) if weight is None else int(weight)
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        failures = 0
        retries = self.retries if method == "GET" else 0
        while True:
            window = self._acquire(path, w, params)
            try:
                status, headers, body = self._request(*self._target(path, params), method)
            except TRANSIENT_ERRORS as e:
                failures += 1
                self._retry(backoff, failures, path, params, f"{type(e).__name__}: {e}",
                            retries)
                continue
            used = headers.get("x-mbx-used-weight-1m")
            if used is not None and used.isdigit():
                with self._cond:
                    self.last_used_weight = int(used)
                    self._weight.observe(window, int(used))
            if status == 200:
                self.counters["requests"] += 1
                self.counters["weight"] += w
                try:
                    return orjson.loads(body)
                except orjson.JSONDecodeError as e:
                    raise RestError(f"GET {path} {params}: HTTP 200 with a body that is not "
                                    f"JSON ({e}): {body[:200]!r}", status=200, path=path,
                                    params=params) from e
            if status in (429, 418):
                self._rate_limited(status, headers, body, path, params)
                continue
            if status in TRANSIENT_STATUS:
                failures += 1
                self._retry(backoff, failures, path, params, f"HTTP {status} {body[:200]!r}",
                            retries)
                continue
            raise _api_error(status, body, path, params, method)

    async def aget(self, path: str, params: dict | None = None, *,
                   weight: int | None = None) -> Any:
        """:meth:`get` in a worker thread (for callers on an event loop)."""
        return await asyncio.to_thread(self.get, path, params, weight=weight)

    def exchange_info(self, refresh: bool = False) -> dict:
        """``exchangeInfo`` (cached); adopts its per-minute REQUEST_WEIGHT limit."""
        if self._exchange_info is None or refresh:
            info = self.get(EXCHANGE_INFO)
            for rl in info.get("rateLimits", []):
                if rl.get("rateLimitType") == "REQUEST_WEIGHT":
                    per_s = rl["limit"] / (_INTERVAL_S[rl["interval"]] * rl.get("intervalNum", 1))
                    self.weight_limit = int(per_s * 60)
            self._exchange_info = info
        return self._exchange_info

    def venue(self) -> str:
        """Whose market this URL serves, as its exchangeInfo says (:func:`venue_of
        <qdash.binance.schema.venue_of>`): ``"exchange"`` or ``"simulated"``."""
        return venue_of(self.exchange_info())

    def perpetuals(self) -> list[str]:
        """Every ``TRADING`` ``PERPETUAL`` symbol of exchangeInfo, sorted."""
        return sorted(s["symbol"] for s in self.exchange_info()["symbols"]
                      if s.get("status") == "TRADING"
                      and s.get("contractType", "PERPETUAL") == "PERPETUAL")

    def stats(self) -> dict:
        """Requests sent, weight spent, retries, 429/418 answers, seconds waited for budget."""
        return dict(self.counters) | {"weight_limit": self.weight_limit,
                                      "last_used_weight": self.last_used_weight}

    def close(self) -> None:
        """Close this thread's kept-alive connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- budget and waits --------------------------------------------------------------------
    def _acquire(self, path: str, weight: int, params: dict) -> int:
        """Block until no ban is pending and ``weight`` fits the minute; reserve it. Returns
        the minute (window index) the request is counted in."""
        budgets = [(self._weight, weight)]
        if path in FUNDING_BUDGET_PATHS:
            budgets.append((self._funding, 1))
        with self._cond:
            while True:
                now = self._clock()
                wait = max([self._blocked_until - now]
                           + [b.wait_needed(now, u) for b, u in budgets])
                if wait <= 0:
                    return [b.take(now, u) for b, u in budgets][0]
                if wait > self.max_wait:
                    raise RestRateLimited(
                        f"GET {path} {params}: the rate limit asks for a wait of {wait:.0f} s, "
                        f"more than max_wait={self.max_wait:.0f} s; try again later",
                        path=path, params=params)
                self.counters["budget_waits"] += 1
                self.counters["waited_s"] += wait
                self._wait(wait)

    def _wait(self, seconds: float) -> None:
        """Wait ``seconds`` with the condition's lock released (called holding it)."""
        if self._sleep is time.sleep:
            self._cond.wait(seconds)
        else:  # an injected sleep (tests): release the lock around it
            self._cond.release()
            try:
                self._sleep(seconds)
            finally:
                self._cond.acquire()

    def _rate_limited(self, status: int, headers: dict, body: bytes, path: str,
                      params: dict) -> None:
        """Block every request of this client for Retry-After seconds."""
        self.counters[f"http_{status}"] += 1
        now = self._clock()
        retry = headers.get("retry-after", "")
        try:
            seconds = float(retry)
        except ValueError:
            seconds = math.floor(now / 60 + 1) * 60 - now if status == 429 else BAN_DEFAULT_S
        with self._cond:
            self._blocked_until = max(self._blocked_until, now + seconds)
        _, msg = _code_msg(body)
        log.warning("GET %s answered %d (%s); no request for %.0f s", path, status, msg, seconds)
        if seconds > self.max_wait:
            raise RestRateLimited(f"GET {path} {params}: HTTP {status}, Binance asks to wait "
                                  f"{seconds:.0f} s (more than max_wait={self.max_wait:.0f} s): "
                                  f"{msg}", status=status, path=path, params=params)

    def _retry(self, backoff: Backoff, failures: int, path: str, params: dict,
               what: str, retries: int) -> None:
        """Wait the next backoff step before retry ``failures`` (or raise past ``retries``)."""
        self.counters["retries"] += 1
        self.close()  # a failed connection is not reused
        if failures > retries:
            raise RestUnavailable(f"GET {path} {params} to {self.base_url} failed {failures} "
                                  f"times, last: {what}; check the URL and the network, or "
                                  "try again later", path=path, params=params)
        wait = backoff.next()
        log.info("GET %s failed (%s); retry %d in %.2f s", path, what, failures, wait)
        self._sleep(wait)

    # --- HTTP ----------------------------------------------------------------------------------
    def _target(self, path: str, params: dict) -> tuple[str, dict]:
        """The request target (path and query, signed when the client signs) and its extra
        headers."""
        query, headers = urllib.parse.urlencode(params), {}
        if self._sign is not None:
            query, headers = self._sign(query)
        return self._prefix + path + ("?" + query if query else ""), headers

    def _request(self, target: str, headers: dict, method: str = "GET"
                 ) -> tuple[int, dict, bytes]:
        """One request on this thread's kept-alive connection: status, lower-case headers,
        body."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                return self._exchange(conn, target, headers, method)
            except _STALE_CONNECTION:  # the server closed the idle connection: one fresh try
                self.counters["reconnects"] += 1
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        return self._exchange(conn, target, headers, method)

    def _exchange(self, conn: http.client.HTTPConnection, target: str, headers: dict,
                  method: str) -> tuple[int, dict, bytes]:
        try:
            conn.request(method, target, headers={"User-Agent": "qdash",
                                                  "Accept-Encoding": "identity"} | headers)
            resp = conn.getresponse()
            body = resp.read()
        except BaseException:
            self.close()
            raise
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        return resp.status, headers, body


_STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def _code_msg(body: bytes) -> tuple[int | None, str]:
    """Binance's ``{"code", "msg"}`` of an error body (code None and the raw text otherwise)."""
    try:
        d = orjson.loads(body)
        if isinstance(d, dict) and "msg" in d:
            return d.get("code"), str(d["msg"])
    except orjson.JSONDecodeError:
        pass
    return None, body[:200].decode("utf-8", "replace").strip()


def _api_error(status: int, body: bytes, path: str, params: dict,
               method: str = "GET") -> RestError:
    code, msg = _code_msg(body)
    what = f"Binance error {code}: {msg}" if code is not None else msg
    return RestError(f"{method} {path} {params}: HTTP {status}, {what}", status=status,
                     code=code, msg=msg, path=path, params=params)
