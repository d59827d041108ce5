"""qdash.binance: THE Binance USDⓈ-M wire protocol, no policy.

* :mod:`.limits`: URLs, endpoint paths, request weights, page sizes, the aggTrades window, kline
  intervals, stream routes and caps (the venue declared as data);
* :mod:`.schema`: kline / aggTrade / funding / premiumIndex rows and kline events <-> frames, and
  bulk-archive paths, for the clients and the simulator alike;
* :mod:`.decode` (+ the numba byte scanner, :mod:`.scanner`): trade and aggTrade stream frames ->
  tick batches;
* :mod:`.rest`: the only REST client (weights, 429/418 and their waits, retries, signing);
* :mod:`.pages`: every pager (``query_*`` one request, ``request_*`` a pager);
* :mod:`.book`: a local order book by Binance's rules (REST snapshot + diff events, the ``pu``
  chain, resyncs), pure state.

Every package that speaks Binance (feeds, history, io, server, scan, sim) imports this one; it
imports nothing of theirs.
"""
